package config_test

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/signer"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Real-looking values. None of the secrets may ever appear in an error or in
// a formatted Config.
const (
	appKey  = "196087a1-e815-4bc4-8984-60d8d8a43f1d"
	appKey2 = "5f0c2a9e-3b7d-4c1e-9a8f-2d6b4e1c7a90"

	secretA     = "htYk6jZ46A9F7izxgsfkZg==" // 16 bytes
	secretB     = "pDvxLbT29j44/OkzTiWNwg==" // 16 bytes
	shortSecret = "QmMwQ+OhGAM="             // 8 bytes
	notBase64   = "htYk6jZ46A9F7izx-gsfkZg"  // '-' is not standard Base64
	hsShort     = "mSPF1+p6juLrGePQucqn26+FXpo="
	hsLong      = "4qrTz5SgWK9kQyctEVZbLBGTenkSGxLmwtqy3gLZsIE="

	// keyHash is sha256("backend-api-key-1").
	keyHash = "a703469d11a863c4ef82b74ad4f19218a6e397a5d5f96c6aee747b9cd1561046"
)

var allSecrets = []string{secretA, secretB, shortSecret, notBase64, hsShort, hsLong}

// Snippets of a valid file; $CERT, $KEY, $SECRET_FILE and $DIR are replaced
// by files in the test's temporary directory.
const (
	tlsYAML    = "tls: {cert_file: $CERT, key_file: $KEY}\n"
	appYAML    = "applications:\n  - key: " + appKey + "\n    secret_file: $SECRET_FILE\n"
	apiKeyYAML = "api_keys:\n  - name: backend\n    sha256: " + keyHash + "\n    applications: [\"*\"]\n"
	validYAML  = tlsYAML + appYAML + apiKeyYAML
)

// designYAML follows DESIGN.md's example, leaving out the keys that have
// defaults (token_ttl, max_token_ttl, default, user_id_claim, leeway) so the
// test sees them applied.
const designYAML = `listen: ":8443"
admin_listen: "127.0.0.1:9090"
tls: {cert_file: $CERT, key_file: $KEY}
database_url: postgres://authserver@db.internal:5432/authserver
data_dir: ./data
applications:
  - key: 196087a1-e815-4bc4-8984-60d8d8a43f1d
    secret_file: $SECRET_FILE
    instance_ttl: 0                        # default sinch:rtc:instance:exp lifetime; 0 = none
    legacy_signatures: true
identity_providers:
  - issuer: https://idp.example.com/
    audience: my-app
    applications: ["*"]
api_keys:
  - name: backend
    sha256: a703469d11a863c4ef82b74ad4f19218a6e397a5d5f96c6aee747b9cd1561046
    applications: ["*"]
rate_limits: {per_user: "10/m", per_ip: "300/m"}   # N/s, N/m or N/h
cors: {allowed_origins: ["https://app.example.com"]}
`

// mustWrite writes content to dir/name and returns the path.
func mustWrite(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// fixture is a temporary directory with an empty certificate and key (Resolve
// only stats them) and a secret file holding secretA.
type fixture struct {
	dir, cert, key, secretFile string
}

func newFixture(tb testing.TB) fixture {
	tb.Helper()
	dir := tb.TempDir()
	return fixture{
		dir:        dir,
		cert:       mustWrite(tb, dir, "tls/cert.pem", ""),
		key:        mustWrite(tb, dir, "tls/key.pem", ""),
		secretFile: mustWrite(tb, dir, "secrets/app", secretA+"\n"),
	}
}

func (f fixture) expand(s string) string {
	return strings.NewReplacer("$CERT", f.cert, "$KEY", f.key, "$SECRET_FILE", f.secretFile, "$DIR", f.dir).Replace(s)
}

// mustLoad writes yamlText (expanded) as the config file and loads it.
func (f fixture) load(tb testing.TB, yamlText string, env map[string]string) (*config.Config, error) {
	tb.Helper()
	path := mustWrite(tb, f.dir, "authserver.yaml", f.expand(yamlText))
	expanded := map[string]string{}
	for k, v := range env {
		expanded[k] = f.expand(v)
	}
	return config.Load(path, mapEnv(expanded))
}

func (f fixture) mustLoad(tb testing.TB, yamlText string, env map[string]string) *config.Config {
	tb.Helper()
	cfg, err := f.load(tb, yamlText, env)
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return cfg
}

func mapEnv(m map[string]string) config.Env { return config.Env(m) }

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string            // "-" means no file at all
		env   map[string]string // values are expanded like yaml
		files map[string]string // extra files in the fixture directory
		key   string
		want  string // a substring of the problem
	}{
		// The file itself.
		{name: "file missing", yaml: "-", key: "file", want: "no such file"},
		{name: "unknown key", yaml: validYAML + "listen_addr: \":9\"\n", key: "listen_addr", want: "unknown key, line 9"},
		{name: "misspelt top-level key", yaml: validYAML + "listn: \":9\"\n", key: "listn", want: `did you mean "listen"?`},
		{name: "unknown nested key", yaml: tlsYAML + appYAML + "    secret_fiel: x\n" + apiKeyYAML, key: "applications[0]", want: `unknown key "secret_fiel" (did you mean "secret_file"?), line 5`},
		{name: "misspelt secret_file", yaml: tlsYAML + "applications:\n  - key: " + appKey + "\n    secrt_file: $SECRET_FILE\n" + apiKeyYAML,
			key: "applications[0]", want: `unknown key "secrt_file" (did you mean "secret_file"?)`},
		{name: "unknown key in a mapping", yaml: appYAML + apiKeyYAML + "tls: {cert_file: $CERT, key_file: $KEY, ca_file: x}\n", key: "tls", want: `unknown key "ca_file"`},
		{name: "key given twice", yaml: validYAML + "log: {level: info, level: debug}\n", key: "log.level", want: "given twice"},
		{name: "bad YAML", yaml: validYAML + "cors: {allowed_origins: [\n", key: "file"},
		{name: "tab indentation", yaml: "applications:\n\t- key: x\n", key: "file"},
		{name: "wrong type", yaml: validYAML + "listen: [\":8443\"]\n", key: "listen", want: "line 9"},
		{name: "list where a mapping goes", yaml: appYAML + apiKeyYAML + "tls: [$CERT, $KEY]\n", key: "tls", want: "must be a mapping"},
		{name: "mapping where a list goes", yaml: tlsYAML + "applications: {key: " + appKey + "}\n" + apiKeyYAML, key: "applications", want: "must be a list"},
		{name: "string where a list goes", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: a, sha256: " + keyHash + ", applications: [\"*\"]}\n  - {name: b, sha256: " + keyHash + ", applications: \"*\"}\n",
			key: "api_keys[1].applications", want: "must be a list"},
		{name: "several mistakes one line each", yaml: validYAML + "pprof: maybe\nsequence: {max_batch: lots}\n", key: "pprof", want: "line 9"},
		{name: "duration without unit", yaml: tlsYAML + appYAML + "    token_ttl: 600\n" + apiKeyYAML, key: "applications[0].token_ttl", want: "no unit"},
		{name: "bad duration", yaml: tlsYAML + appYAML + "    token_ttl: ten minutes\n" + apiKeyYAML, key: "applications[0].token_ttl", want: "not a duration"},
		{name: "bool as a number", yaml: validYAML + "insecure_http: 1\n", key: "insecure_http", want: "true or false"},

		// Listeners, TLS, storage.
		{name: "empty listen", yaml: validYAML + "listen: \"\"\n", key: "listen"},
		{name: "empty admin_listen", yaml: validYAML + "admin_listen: \"\"\n", key: "admin_listen"},
		{name: "missing tls", yaml: appYAML + apiKeyYAML, key: "tls", want: "insecure_http"},
		{name: "tls without key_file", yaml: "tls: {cert_file: $CERT}\n" + appYAML + apiKeyYAML, key: "tls"},
		{name: "insecure_http with tls", yaml: validYAML + "insecure_http: true\n", key: "insecure_http"},
		{name: "insecure_http from env with tls in file", yaml: validYAML, env: map[string]string{"AUTHSERVER_INSECURE_HTTP": "true"}, key: "insecure_http"},
		{name: "cert file missing", yaml: "tls: {cert_file: $DIR/nope.pem, key_file: $KEY}\n" + appYAML + apiKeyYAML, key: "tls.cert_file", want: "no such file"},
		{name: "key file missing", yaml: "tls: {cert_file: $CERT, key_file: $DIR/nope.key}\n" + appYAML + apiKeyYAML, key: "tls.key_file"},
		{name: "no data_dir and no database", yaml: validYAML + "data_dir: \"\"\n", key: "data_dir"},
		{name: "database_url not postgres", yaml: validYAML + "database_url: mysql://db/authserver\n", key: "database_url"},

		// Applications.
		{name: "no applications", yaml: tlsYAML + apiKeyYAML, key: "applications", want: "AUTHSERVER_APP_KEY"},
		{name: "empty applications", yaml: tlsYAML + "applications: []\n" + apiKeyYAML, key: "applications"},
		{name: "two defaults", yaml: tlsYAML + apiKeyYAML + "applications:\n" +
			"  - {key: " + appKey + ", secret_file: $SECRET_FILE, default: true}\n" +
			"  - {key: " + appKey2 + ", secret_file: $SECRET_FILE, default: true}\n",
			key: "applications", want: "default"},
		{name: "bad application key", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: \"my app\", secret_file: $SECRET_FILE}\n", key: "applications[0].key"},
		{name: "empty application key", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {secret_file: $SECRET_FILE}\n", key: "applications[0].key"},
		{name: "duplicate application key", yaml: tlsYAML + apiKeyYAML + "applications:\n" +
			"  - {key: " + appKey + ", secret_file: $SECRET_FILE}\n" +
			"  - {key: " + appKey + ", secret_file: $SECRET_FILE}\n",
			key: "applications[1].key", want: "twice"},
		{name: "secret file path with a newline", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: \"$DIR/secrets/app\\n\"}\n", key: "applications[0].secret_file", want: `app\n`},
		{name: "cert path from env with a newline", yaml: appYAML + apiKeyYAML,
			env: map[string]string{"AUTHSERVER_TLS_CERT_FILE": "$CERT\r\n", "AUTHSERVER_TLS_KEY_FILE": "$KEY"},
			key: "tls.cert_file", want: `cert.pem\r\n`},
		{name: "secret file missing", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: $DIR/secrets/nope}\n", key: "applications[0].secret_file", want: "no such file"},
		{name: "secret not base64", files: map[string]string{"bad": notBase64 + "\n"},
			yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: $DIR/bad}\n",
			key:  "applications[0].secret_file", want: "Base64"},
		{name: "secret too short", files: map[string]string{"short": shortSecret + "\n"},
			yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: $DIR/short}\n",
			key:  "applications[0].secret_file", want: "8 bytes"},
		{name: "second secret line bad", files: map[string]string{"two": secretA + "\n" + shortSecret + "\n"},
			yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: $DIR/two}\n",
			key:  "applications[0].secret_file", want: "line 2"},
		{name: "secret file without a secret", files: map[string]string{"empty": "# rotated out\n\n"},
			yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: $DIR/empty}\n",
			key:  "applications[0].secret_file", want: "no secret"},
		{name: "inline secret outside dev", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret: \"" + secretA + "\"}\n", key: "applications[0].secret", want: "authserver dev"},
		{name: "two secret sources", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: $SECRET_FILE, secret_env: APP_SECRET}\n",
			env: map[string]string{"APP_SECRET": secretB}, key: "applications[0]", want: "exactly one"},
		{name: "no secret source", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + "}\n", key: "applications[0]", want: "exactly one"},
		{name: "secret_env not set", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_env: APP_SECRET}\n", key: "applications[0].secret_env", want: "APP_SECRET"},
		{name: "secret_env not base64", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_env: APP_SECRET}\n",
			env: map[string]string{"APP_SECRET": notBase64}, key: "applications[0].secret_env", want: "Base64"},
		{name: "token_ttl below 60s", yaml: tlsYAML + appYAML + "    token_ttl: 30s\n" + apiKeyYAML, key: "applications[0].token_ttl"},
		{name: "token_ttl above max", yaml: tlsYAML + appYAML + "    token_ttl: 2h\n" + apiKeyYAML, key: "applications[0].token_ttl", want: "1h0m0s"},
		{name: "token_ttl above explicit max", yaml: tlsYAML + appYAML + "    token_ttl: 20m\n    max_token_ttl: 15m\n" + apiKeyYAML, key: "applications[0].token_ttl"},
		{name: "max_token_ttl below 60s", yaml: tlsYAML + appYAML + "    max_token_ttl: 59s\n" + apiKeyYAML, key: "applications[0].max_token_ttl"},
		{name: "instance_ttl below 48h", yaml: tlsYAML + appYAML + "    instance_ttl: 47h\n" + apiKeyYAML, key: "applications[0].instance_ttl", want: "48h"},
		{name: "instance_ttl negative", yaml: tlsYAML + appYAML + "    instance_ttl: -72h\n" + apiKeyYAML, key: "applications[0].instance_ttl"},

		// Single-application shortcut.
		{name: "shortcut secret without key", yaml: validYAML, env: map[string]string{"AUTHSERVER_APP_SECRET": secretA}, key: "AUTHSERVER_APP_KEY"},
		{name: "shortcut secret file without key", yaml: validYAML, env: map[string]string{"AUTHSERVER_APP_SECRET_FILE": "$SECRET_FILE"}, key: "AUTHSERVER_APP_KEY"},
		{name: "shortcut key without secret", yaml: validYAML, env: map[string]string{"AUTHSERVER_APP_KEY": appKey2}, key: "AUTHSERVER_APP_SECRET"},
		{name: "shortcut secret and secret file", yaml: validYAML,
			env: map[string]string{"AUTHSERVER_APP_KEY": appKey2, "AUTHSERVER_APP_SECRET": secretB, "AUTHSERVER_APP_SECRET_FILE": "$SECRET_FILE"},
			key: "AUTHSERVER_APP_SECRET"},
		{name: "shortcut secret not base64", yaml: tlsYAML + apiKeyYAML,
			env: map[string]string{"AUTHSERVER_APP_KEY": appKey2, "AUTHSERVER_APP_SECRET": notBase64},
			key: "applications[0].secret_env", want: "Base64"},
		{name: "shortcut secret too short", yaml: tlsYAML + apiKeyYAML,
			env: map[string]string{"AUTHSERVER_APP_KEY": appKey2, "AUTHSERVER_APP_SECRET": shortSecret},
			key: "applications[0].secret_env", want: "8 bytes"},
		{name: "shortcut secret file missing", yaml: tlsYAML + apiKeyYAML,
			env: map[string]string{"AUTHSERVER_APP_KEY": appKey2, "AUTHSERVER_APP_SECRET_FILE": "$DIR/nope"},
			key: "applications[0].secret_file"},
		{name: "shortcut drops the applications api keys name", yaml: tlsYAML + appYAML +
			"api_keys:\n  - {name: backend, sha256: " + keyHash + ", applications: [" + appKey + "]}\n",
			env: map[string]string{"AUTHSERVER_APP_KEY": appKey2, "AUTHSERVER_APP_SECRET": secretB},
			key: "api_keys[0].applications", want: appKey},

		// API keys.
		{name: "no api keys and no identity providers", yaml: tlsYAML + appYAML, key: "api_keys", want: "nobody"},
		{name: "api key without name", yaml: tlsYAML + appYAML + "api_keys:\n  - {sha256: " + keyHash + ", applications: [\"*\"]}\n", key: "api_keys[0].name"},
		{name: "api key name twice", yaml: tlsYAML + appYAML + "api_keys:\n" +
			"  - {name: backend, sha256: " + keyHash + ", applications: [\"*\"]}\n" +
			"  - {name: backend, sha256: " + keyHash + ", applications: [\"*\"]}\n",
			key: "api_keys[1].name"},
		{name: "api key sha256 twice", yaml: tlsYAML + appYAML + "api_keys:\n" +
			"  - {name: backend, sha256: " + keyHash + ", applications: [\"*\"]}\n" +
			"  - {name: ops, sha256: " + strings.ToUpper(keyHash) + ", applications: [\"*\"]}\n",
			key: "api_keys[1].sha256", want: `"backend"`},
		{name: "api key empty application", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: " + keyHash + ", applications: [\"*\", \"\"]}\n", key: "api_keys[0].applications", want: "empty"},
		{name: "api key sha256 too short", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: " + keyHash[:63] + ", applications: [\"*\"]}\n", key: "api_keys[0].sha256", want: "sha256sum"},
		{name: "api key sha256 not hex", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: " + keyHash[:63] + "g, applications: [\"*\"]}\n", key: "api_keys[0].sha256"},
		{name: "api key in clear", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: backend-api-key-1, applications: [\"*\"]}\n", key: "api_keys[0].sha256"},
		{name: "api key without applications", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: " + keyHash + "}\n", key: "api_keys[0].applications"},
		{name: "api key unknown application", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: " + keyHash + ", applications: [" + appKey2 + "]}\n", key: "api_keys[0].applications", want: appKey2},

		// Identity providers.
		{name: "provider without issuer", yaml: validYAML + "identity_providers:\n  - {audience: my-app}\n", key: "identity_providers[0].issuer"},
		{name: "provider without audience", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/}\n", key: "identity_providers[0].audience"},
		{name: "provider issuer not a URL", yaml: validYAML + "identity_providers:\n  - {issuer: idp.example.com, audience: my-app}\n", key: "identity_providers[0].issuer", want: "jwks_url"},
		{name: "second provider bad", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app}\n  - {issuer: https://other.example.com/}\n", key: "identity_providers[1].audience"},
		{name: "HS256 secret too short", yaml: validYAML + "identity_providers:\n  - {issuer: my-backend, audience: my-app, hs256_secret_env: IDP_SECRET}\n",
			env: map[string]string{"IDP_SECRET": hsShort}, key: "identity_providers[0]", want: "32 bytes"},
		{name: "HS256 secret env unset", yaml: validYAML + "identity_providers:\n  - {issuer: my-backend, audience: my-app, hs256_secret_env: IDP_SECRET}\n",
			key: "identity_providers[0]", want: "32 bytes"},
		{name: "HS256 secret file too short", files: map[string]string{"idp": hsShort + "\n"},
			yaml: validYAML + "identity_providers:\n  - {issuer: my-backend, audience: my-app, hs256_secret_file: $DIR/idp}\n",
			key:  "identity_providers[0]", want: "32 bytes"},
		{name: "HS256 secret file missing", yaml: validYAML + "identity_providers:\n  - {issuer: my-backend, audience: my-app, hs256_secret_file: $DIR/nope}\n", key: "identity_providers[0].hs256_secret_file"},
		{name: "HS256 env and file", files: map[string]string{"idp": hsLong},
			yaml: validYAML + "identity_providers:\n  - {issuer: my-backend, audience: my-app, hs256_secret_env: IDP_SECRET, hs256_secret_file: $DIR/idp}\n",
			env:  map[string]string{"IDP_SECRET": hsLong}, key: "identity_providers[0]", want: "only one"},
		{name: "HS256 and jwks_url", yaml: validYAML + "identity_providers:\n  - {issuer: my-backend, audience: my-app, hs256_secret_env: IDP_SECRET, jwks_url: https://idp.example.com/jwks}\n",
			env: map[string]string{"IDP_SECRET": hsLong}, key: "identity_providers[0]", want: "jwks_url"},
		{name: "unknown user id transform", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, user_id_transform: md5}\n", key: "identity_providers[0].user_id_transform", want: "base64url"},
		{name: "issuer template without jwks_url or discovery_url", yaml: validYAML + "identity_providers:\n  - {issuer: \"https://login.microsoftonline.com/{tenantid}/v2.0\", audience: my-app}\n", key: "identity_providers[0].issuer", want: "{tenantid}"},
		{name: "issuer template with aliases", yaml: validYAML + "identity_providers:\n  - {issuer: \"https://login.microsoftonline.com/{tenantid}/v2.0\", audience: my-app, discovery_url: https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration, issuer_aliases: [\"https://sts.windows.net/{tenantid}/\"]}\n", key: "identity_providers[0].issuer_aliases", want: "template"},
		{name: "discovery_url with jwks_url", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, jwks_url: https://idp.example.com/k, discovery_url: https://idp.example.com/d}\n", key: "identity_providers[0].discovery_url"},
		{name: "issuer alias same as issuer", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, issuer_aliases: [\"https://idp.example.com/\"]}\n", key: "identity_providers[0].issuer_aliases[0]"},
		{name: "required claim without value", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, required_claims: {token_use: \"\"}}\n", key: "identity_providers[0].required_claims"},
		{name: "leeway too long", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, leeway: 6m}\n", key: "identity_providers[0].leeway"},
		{name: "leeway negative", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, leeway: -1s}\n", key: "identity_providers[0].leeway"},
		{name: "max token age too long", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, max_token_age: 1000h}\n", key: "identity_providers[0].max_token_age"},
		{name: "unknown kid interval too short", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, unknown_kid_refresh_interval: 100ms}\n", key: "identity_providers[0].unknown_kid_refresh_interval"},
		{name: "unknown kid interval too long", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, unknown_kid_refresh_interval: 10m}\n", key: "identity_providers[0].unknown_kid_refresh_interval"},
		{name: "issuer over plain http", yaml: validYAML + "identity_providers:\n  - {issuer: http://idp.example.com/, audience: my-app}\n", key: "identity_providers[0].issuer", want: "allow_insecure_http"},
		{name: "jwks_url over plain http", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, jwks_url: \"http://10.1.2.3/jwks\"}\n", key: "identity_providers[0].jwks_url", want: "allow_insecure_http"},
		{name: "provider unknown application", yaml: validYAML + "identity_providers:\n  - {issuer: https://idp.example.com/, audience: my-app, applications: [" + appKey2 + "]}\n", key: "identity_providers[0].applications", want: appKey2},

		// Rate limits, CORS, proxies, logs, sequence.
		{name: "per_user rate unit", yaml: validYAML + "rate_limits: {per_user: 10/d}\n", key: "rate_limits.per_user", want: "10/d"},
		{name: "per_user rate from env", yaml: validYAML, env: map[string]string{"AUTHSERVER_RATE_LIMITS_PER_USER": "fast"}, key: "rate_limits.per_user"},
		{name: "per_ip rate", yaml: validYAML + "rate_limits: {per_ip: -5/m}\n", key: "rate_limits.per_ip"},
		{name: "per_api_key rate", yaml: validYAML + "rate_limits: {per_api_key: 100}\n", key: "rate_limits.per_api_key"},
		{name: "per_ip_failed_auth rate", yaml: validYAML + "rate_limits: {per_ip_failed_auth: 3/d}\n", key: "rate_limits.per_ip_failed_auth"},
		{name: "cors origin without scheme", yaml: validYAML + "cors: {allowed_origins: [app.example.com]}\n", key: "cors.allowed_origins[0]"},
		{name: "cors origin with trailing slash", yaml: validYAML + "cors: {allowed_origins: [\"https://app.example.com/\"]}\n", key: "cors.allowed_origins[0]"},
		{name: "cors origin from env", yaml: validYAML, env: map[string]string{"AUTHSERVER_CORS_ALLOWED_ORIGINS": "https://a.example.com, ftp://b.example.com"}, key: "cors.allowed_origins[1]"},
		{name: "trusted proxy", yaml: validYAML + "trusted_proxies: [\"10.0.0.0/33\"]\n", key: "trusted_proxies[0]"},
		{name: "trusted proxy hostname", yaml: validYAML + "trusted_proxies: [lb.internal]\n", key: "trusted_proxies[0]"},
		{name: "trusted proxy from env", yaml: validYAML, env: map[string]string{"AUTHSERVER_TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip"}, key: "trusted_proxies[1]"},
		{name: "log format", yaml: validYAML + "log: {format: xml}\n", key: "log.format", want: "xml"},
		{name: "log format from env", yaml: validYAML, env: map[string]string{"AUTHSERVER_LOG_FORMAT": "logfmt"}, key: "log.format"},
		{name: "log level", yaml: validYAML + "log: {level: verbose}\n", key: "log.level"},
		{name: "batch window too long", yaml: validYAML + "sequence: {batch_window: 1s}\n", key: "sequence.batch_window"},
		{name: "batch window negative", yaml: validYAML + "sequence: {batch_window: -1ms}\n", key: "sequence.batch_window"},
		{name: "max batch too large", yaml: validYAML + "sequence: {max_batch: 10001}\n", key: "sequence.max_batch"},
		{name: "max batch negative", yaml: validYAML + "sequence: {max_batch: -1}\n", key: "sequence.max_batch"},

		// Environment values.
		{name: "bad env boolean", yaml: validYAML, env: map[string]string{"AUTHSERVER_INSECURE_HTTP": "yes please"}, key: "insecure_http", want: "AUTHSERVER_INSECURE_HTTP"},
		{name: "bad env boolean pprof", yaml: validYAML, env: map[string]string{"AUTHSERVER_PPROF": "enabled"}, key: "pprof"},
		{name: "bad env duration", yaml: validYAML, env: map[string]string{"AUTHSERVER_SEQUENCE_BATCH_WINDOW": "500"}, key: "sequence.batch_window", want: "AUTHSERVER_SEQUENCE_BATCH_WINDOW"},
		{name: "env database url", yaml: validYAML, env: map[string]string{"AUTHSERVER_DATABASE_URL": "sqlite:///tmp/x.db"}, key: "database_url"},
		{name: "unknown env variable", yaml: validYAML, env: map[string]string{"AUTHSERVER_LISTN": ":1"}, key: "AUTHSERVER_LISTN", want: "did you mean AUTHSERVER_LISTEN?"},
		{name: "empty env variable", yaml: validYAML, env: map[string]string{"AUTHSERVER_LISTEN": ""}, key: "AUTHSERVER_LISTEN", want: "empty"},
		{name: "file and env mistakes together", yaml: validYAML + "listn: x\n", env: map[string]string{"AUTHSERVER_LOG_LEVL": "debug"}, key: "listn"},
		{name: "env api keys malformed", yaml: tlsYAML + appYAML, env: map[string]string{"AUTHSERVER_API_KEYS": "backend:" + keyHash}, key: "AUTHSERVER_API_KEYS", want: "entry 1"},
		{name: "env api key unknown application", yaml: tlsYAML + appYAML, env: map[string]string{"AUTHSERVER_API_KEYS": "backend:" + keyHash + ":" + appKey2}, key: "api_keys[0].applications", want: appKey2},
		{name: "env provider without audience", yaml: validYAML, env: map[string]string{"AUTHSERVER_IDP_ISSUER": "https://idp.example.com/"}, key: "AUTHSERVER_IDP_AUDIENCE"},

		// Placeholders of deploy/ and the README.
		{name: "placeholder application key", yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: REPLACE-WITH-YOUR-SINCH-APPLICATION-KEY, secret_file: $SECRET_FILE}\n",
			key: "applications[0].key", want: "placeholder"},
		{name: "placeholder api key sha256", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: \"" + strings.Repeat("0", 64) + "\", applications: [\"*\"]}\n",
			key: "api_keys[0].sha256", want: "all-zero"},
		{name: "README api key sha256", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, applications: [\"*\"]}\n",
			key: "api_keys[0].sha256", want: "README"},
		{name: "sha256 of an empty key", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855, applications: [\"*\"]}\n",
			key: "api_keys[0].sha256", want: "empty key"},
		{name: "placeholder api key sha256 text", yaml: tlsYAML + appYAML + "api_keys:\n  - {name: backend, sha256: REPLACE-WITH-THE-SHA256, applications: [\"*\"]}\n",
			key: "api_keys[0].sha256", want: "placeholder"},
		{name: "placeholder secret", files: map[string]string{"sinch": "# the application secret\nYOUR-SINCH-APP-SECRET\n"},
			yaml: tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: $DIR/sinch}\n",
			key:  "applications[0].secret_file", want: "line 2: is a placeholder"},
	}

	var golden strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			for name, content := range tt.files {
				mustWrite(t, f.dir, name, content)
			}
			var cfg *config.Config
			var err error
			if tt.yaml == "-" {
				cfg, err = config.Load(filepath.Join(f.dir, "missing.yaml"), mapEnv(nil))
			} else {
				cfg, err = f.load(t, tt.yaml, tt.env)
			}
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Load returned a config with its error")
			}
			var cerr *config.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("error %T %q is not a *config.Error", err, err)
			}
			if cerr.Key != tt.key {
				t.Errorf("Key = %q, want %q (error: %v)", cerr.Key, tt.key, err)
			}
			msg := err.Error()
			// Several problems are one line each, each a *config.Error.
			problems := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				problems = j.Unwrap()
			}
			if len(problems) != strings.Count(msg, "\n")+1 {
				t.Errorf("%d problems on %d lines: %q", len(problems), strings.Count(msg, "\n")+1, msg)
			}
			for _, p := range problems {
				var pe *config.Error
				if !errors.As(p, &pe) {
					t.Errorf("problem %T %q is not a *config.Error", p, p)
					continue
				}
				if want := "config: " + pe.Key + ": " + pe.Problem; p.Error() != want || strings.Contains(p.Error(), "\n") {
					t.Errorf("Error() = %q, want %q on one line", p.Error(), want)
				}
				if strings.Contains(p.Error(), "config.") || strings.Contains(p.Error(), "time.Duration") || strings.Contains(p.Error(), "!!") {
					t.Errorf("problem names a Go or YAML type: %q", p.Error())
				}
			}
			if !strings.Contains(cerr.Problem, tt.want) {
				t.Errorf("Problem = %q, want it to contain %q", cerr.Problem, tt.want)
			}
			for _, s := range allSecrets {
				if strings.Contains(msg, s) {
					t.Errorf("error reveals the secret %q: %s", s, msg)
				}
			}
			fmt.Fprintf(&golden, "%s\n\t%s\n", tt.name, strings.ReplaceAll(strings.ReplaceAll(msg, f.dir, "$DIR"), "\n", "\n\t"))
		})
	}
	if !t.Failed() {
		checkGolden(t, "testdata/load_errors.golden", golden.String())
	}
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run go test -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}

func TestLoadDesignExample(t *testing.T) {
	f := newFixture(t)
	cfg := f.mustLoad(t, designYAML, nil)

	if cfg.Listen != ":8443" || cfg.AdminListen != "127.0.0.1:9090" {
		t.Errorf("listeners = %q, %q", cfg.Listen, cfg.AdminListen)
	}
	if cfg.TLS.CertFile != f.cert || cfg.TLS.KeyFile != f.key || cfg.InsecureHTTP {
		t.Errorf("TLS = %+v, InsecureHTTP = %v", cfg.TLS, cfg.InsecureHTTP)
	}
	if cfg.DatabaseURL != "postgres://authserver@db.internal:5432/authserver" || cfg.DataDir != "./data" {
		t.Errorf("DatabaseURL = %q, DataDir = %q", cfg.DatabaseURL, cfg.DataDir)
	}

	if len(cfg.Applications) != 1 {
		t.Fatalf("%d applications, want 1", len(cfg.Applications))
	}
	app := cfg.Applications[0]
	if app.Key != appKey || app.SecretFile != f.secretFile {
		t.Errorf("application = %q from %q", app.Key, app.SecretFile)
	}
	if app.TokenTTL != 10*time.Minute || app.MaxTokenTTL != time.Hour || app.InstanceTTL != 0 {
		t.Errorf("TTLs = %v, %v, %v; want 10m, 1h, 0", app.TokenTTL, app.MaxTokenTTL, app.InstanceTTL)
	}
	if !app.Default || cfg.DefaultApplication() == nil || cfg.DefaultApplication().Key != appKey {
		t.Errorf("the only application did not become the default")
	}
	if !app.SignaturesEnabled() {
		t.Errorf("legacy signatures disabled")
	}
	if len(app.Secrets) != 1 || app.Secrets[0].Reveal() != secretA {
		t.Errorf("Secrets = %d, want the one in the secret file", len(app.Secrets))
	}
	if got := cfg.Application(appKey); got == nil || got.Key != appKey {
		t.Errorf("Application(%q) = %v", appKey, got)
	}
	if got := cfg.Application(appKey2); got != nil {
		t.Errorf("Application(unknown) = %v, want nil", got)
	}

	if len(cfg.IdentityProviders) != 1 {
		t.Fatalf("%d identity providers, want 1", len(cfg.IdentityProviders))
	}
	p := cfg.IdentityProviders[0]
	if p.Issuer != "https://idp.example.com/" || p.Audience != "my-app" || p.UserIDClaim != "sub" || p.Leeway != 60*time.Second {
		t.Errorf("provider = %+v; want user_id_claim sub, leeway 60s", p)
	}
	if !slices.Equal(p.Applications, []string{"*"}) || p.HS256Secret != nil {
		t.Errorf("provider applications %q, HS256Secret set %v", p.Applications, p.HS256Secret != nil)
	}

	if len(cfg.APIKeys) != 1 || cfg.APIKeys[0].Name != "backend" || cfg.APIKeys[0].SHA256 != keyHash {
		t.Errorf("APIKeys = %+v", cfg.APIKeys)
	}

	rl := cfg.RateLimits
	if rl.User != (config.Rate{N: 10, Period: time.Minute}) {
		t.Errorf("User rate = %+v, want 10/m", rl.User)
	}
	if rl.IP != (config.Rate{N: 300, Period: time.Minute}) {
		t.Errorf("IP rate = %+v, want 300/m", rl.IP)
	}
	if rl.PerAPIKey != "6000/m" || rl.APIKey != (config.Rate{N: 6000, Period: time.Minute}) {
		t.Errorf("API key rate = %q %+v, want the 6000/m default", rl.PerAPIKey, rl.APIKey)
	}
	if !slices.Equal(cfg.CORS.AllowedOrigins, []string{"https://app.example.com"}) {
		t.Errorf("AllowedOrigins = %q", cfg.CORS.AllowedOrigins)
	}
	if cfg.Log != (config.Log{Format: "json", Level: "info"}) {
		t.Errorf("Log = %+v, want the json/info default", cfg.Log)
	}
	if cfg.Dev || cfg.Pprof || len(cfg.Proxies) != 0 {
		t.Errorf("Dev %v, Pprof %v, Proxies %v", cfg.Dev, cfg.Pprof, cfg.Proxies)
	}
}

func TestLoadEnvOverridesFile(t *testing.T) {
	f := newFixture(t)
	yamlText := appYAML + apiKeyYAML + `listen: ":8443"
insecure_http: false
cors: {allowed_origins: ["https://file.example.com"]}
trusted_proxies: ["192.168.0.1"]
rate_limits: {per_user: "10/m"}
log: {format: json, level: info}
`
	env := map[string]string{
		"AUTHSERVER_LISTEN":               ":9443",
		"AUTHSERVER_ADMIN_LISTEN":         "127.0.0.1:9191",
		"AUTHSERVER_INSECURE_HTTP":        "true",
		"AUTHSERVER_CORS_ALLOWED_ORIGINS": " https://a.example.com,https://b.example.com ,, ",
		"AUTHSERVER_TRUSTED_PROXIES":      "10.0.0.0/8, 10.1.2.3/16,2001:db8::1",
		"AUTHSERVER_RATE_LIMITS_PER_USER": "2/s",
		"AUTHSERVER_LOG_FORMAT":           "text",
		"AUTHSERVER_LOG_LEVEL":            "DEBUG",
		"AUTHSERVER_DATA_DIR":             "$DIR/data",
	}
	cfg := f.mustLoad(t, yamlText, env)

	if cfg.Listen != ":9443" || cfg.AdminListen != "127.0.0.1:9191" {
		t.Errorf("listeners = %q, %q", cfg.Listen, cfg.AdminListen)
	}
	if !cfg.InsecureHTTP {
		t.Errorf("AUTHSERVER_INSECURE_HTTP=true did not override insecure_http: false")
	}
	if want := []string{"https://a.example.com", "https://b.example.com"}; !slices.Equal(cfg.CORS.AllowedOrigins, want) {
		t.Errorf("AllowedOrigins = %q, want %q", cfg.CORS.AllowedOrigins, want)
	}
	wantProxies := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("2001:db8::1/128"),
	}
	if !slices.Equal(cfg.Proxies, wantProxies) {
		t.Errorf("Proxies = %v, want %v", cfg.Proxies, wantProxies)
	}
	if cfg.RateLimits.User != (config.Rate{N: 2, Period: time.Second}) {
		t.Errorf("User rate = %+v, want 2/s", cfg.RateLimits.User)
	}
	if cfg.Log.Format != "text" || cfg.Log.Level != "DEBUG" {
		t.Errorf("Log = %+v", cfg.Log)
	}
	if cfg.DataDir != filepath.Join(f.dir, "data") {
		t.Errorf("DataDir = %q", cfg.DataDir)
	}
}

func TestLoadSingleApplicationShortcut(t *testing.T) {
	t.Run("secret", func(t *testing.T) {
		f := newFixture(t)
		cfg := f.mustLoad(t, tlsYAML+apiKeyYAML, map[string]string{
			"AUTHSERVER_APP_KEY":    appKey2,
			"AUTHSERVER_APP_SECRET": secretB,
		})
		app := cfg.DefaultApplication()
		if len(cfg.Applications) != 1 || app == nil || app.Key != appKey2 {
			t.Fatalf("Applications = %+v", cfg.Applications)
		}
		if app.SecretEnv != "AUTHSERVER_APP_SECRET" || app.SecretFile != "" || app.Secret != "" {
			t.Errorf("secret source = file %q env %q", app.SecretFile, app.SecretEnv)
		}
		if len(app.Secrets) != 1 || app.Secrets[0].Reveal() != secretB {
			t.Errorf("Secrets do not hold AUTHSERVER_APP_SECRET")
		}
		if app.TokenTTL != 10*time.Minute || app.MaxTokenTTL != time.Hour {
			t.Errorf("TTLs = %v, %v", app.TokenTTL, app.MaxTokenTTL)
		}
	})
	t.Run("secret file", func(t *testing.T) {
		f := newFixture(t)
		cfg := f.mustLoad(t, tlsYAML+apiKeyYAML, map[string]string{
			"AUTHSERVER_APP_KEY":         appKey2,
			"AUTHSERVER_APP_SECRET_FILE": "$SECRET_FILE",
		})
		app := cfg.DefaultApplication()
		if len(cfg.Applications) != 1 || app == nil || app.Key != appKey2 || app.SecretFile != f.secretFile {
			t.Fatalf("Applications = %+v", cfg.Applications)
		}
		if len(app.Secrets) != 1 || app.Secrets[0].Reveal() != secretA {
			t.Errorf("Secrets do not hold the secret file's secret")
		}
	})
	t.Run("replaces the file's applications", func(t *testing.T) {
		f := newFixture(t)
		yamlText := tlsYAML + apiKeyYAML + "applications:\n" +
			"  - {key: " + appKey + ", secret_file: $SECRET_FILE}\n" +
			"  - {key: other, secret_file: $SECRET_FILE}\n"
		cfg := f.mustLoad(t, yamlText, map[string]string{
			"AUTHSERVER_APP_KEY":    appKey2,
			"AUTHSERVER_APP_SECRET": secretB,
		})
		if len(cfg.Applications) != 1 || cfg.Applications[0].Key != appKey2 || cfg.Application(appKey) != nil {
			t.Errorf("Applications = %+v", cfg.Applications)
		}
	})
	t.Run("without a file", func(t *testing.T) {
		// Nobody could authenticate without api_keys or identity_providers,
		// which only a file can give; the shortcut itself is accepted.
		f := newFixture(t)
		_, err := config.Load("", mapEnv(map[string]string{
			"AUTHSERVER_APP_KEY":       appKey2,
			"AUTHSERVER_APP_SECRET":    secretB,
			"AUTHSERVER_TLS_CERT_FILE": f.cert,
			"AUTHSERVER_TLS_KEY_FILE":  f.key,
		}))
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Key != "api_keys" {
			t.Errorf("Load = %v, want the api_keys error", err)
		}
	})
}

func TestLoadSecretRotation(t *testing.T) {
	for _, tt := range []struct{ name, content string }{
		{"two lines", secretB + "\n" + secretA + "\n"},
		{"no final newline", secretB + "\n" + secretA},
		{"CRLF comments and blank lines", "# current\r\n" + secretB + "\r\n\r\n  # previous, until 2026-12-01\r\n  " + secretA + "  \r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			path := mustWrite(t, f.dir, "secrets/rotating", tt.content)
			yamlText := tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_file: " + path + "}\n"
			app := f.mustLoad(t, yamlText, nil).Applications[0]
			if len(app.Secrets) != 2 {
				t.Fatalf("%d secrets, want 2", len(app.Secrets))
			}
			if app.Secrets[0].Reveal() != secretB || app.Secrets[1].Reveal() != secretA {
				t.Errorf("secrets out of order: the first line must sign")
			}
		})
	}
	t.Run("secret_env", func(t *testing.T) {
		f := newFixture(t)
		yamlText := tlsYAML + apiKeyYAML + "applications:\n  - {key: " + appKey + ", secret_env: SINCH_SECRET}\n"
		app := f.mustLoad(t, yamlText, map[string]string{"SINCH_SECRET": secretB + "\n" + secretA}).Applications[0]
		if len(app.Secrets) != 2 || app.Secrets[0].Reveal() != secretB || app.Secrets[1].Reveal() != secretA {
			t.Errorf("secret_env with two lines: %d secrets", len(app.Secrets))
		}
	})
}

func TestLoadDurations(t *testing.T) {
	f := newFixture(t)
	yamlText := tlsYAML + apiKeyYAML + `applications:
  - key: ` + appKey + `
    secret_file: $SECRET_FILE
    token_ttl: 10m
    max_token_ttl: 1h30m
    instance_ttl: 72h
    legacy_signatures: false
  - {key: ` + appKey2 + `, secret_file: $SECRET_FILE, token_ttl: 90s, max_token_ttl: 2m, instance_ttl: 0}
identity_providers:
  - {issuer: https://idp.example.com/, audience: my-app, leeway: 2m30s, user_id_claim: email}
  - {issuer: https://other.example.com/, audience: other, leeway: 0}
sequence:
  batch_window: 500us
  max_batch: 256
`
	cfg := f.mustLoad(t, yamlText, nil)

	a, b := cfg.Applications[0], cfg.Applications[1]
	if a.TokenTTL != 10*time.Minute || a.MaxTokenTTL != 90*time.Minute || a.InstanceTTL != 72*time.Hour {
		t.Errorf("app 0 TTLs = %v, %v, %v", a.TokenTTL, a.MaxTokenTTL, a.InstanceTTL)
	}
	if a.SignaturesEnabled() {
		t.Errorf("legacy_signatures: false ignored")
	}
	if b.TokenTTL != 90*time.Second || b.MaxTokenTTL != 2*time.Minute || b.InstanceTTL != 0 || !b.SignaturesEnabled() {
		t.Errorf("app 1 = %v, %v, %v, signatures %v", b.TokenTTL, b.MaxTokenTTL, b.InstanceTTL, b.SignaturesEnabled())
	}
	if a.Default || b.Default || cfg.DefaultApplication() != nil {
		t.Errorf("with two applications and no default: true, none must become the default")
	}
	if p := cfg.IdentityProviders[0]; p.Leeway != 150*time.Second || p.UserIDClaim != "email" {
		t.Errorf("provider 0 leeway %v, claim %q", p.Leeway, p.UserIDClaim)
	}
	// leeway: 0 means "not set": the 60s default.
	if p := cfg.IdentityProviders[1]; p.Leeway != 60*time.Second {
		t.Errorf("provider 1 leeway %v, want the 60s default", p.Leeway)
	}
	if cfg.Sequence.BatchWindow != 500*time.Microsecond || cfg.Sequence.MaxBatch != 256 {
		t.Errorf("Sequence = %+v", cfg.Sequence)
	}
}

func TestDecode(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		check      func(t *testing.T, c config.Config)
	}{
		{"empty file keeps the defaults", "", func(t *testing.T, c config.Config) {
			if d := config.Defaults(); c.Listen != d.Listen || c.RateLimits != d.RateLimits || c.Log != d.Log {
				t.Errorf("got %+v", c)
			}
		}},
		{"the clock floor is on unless turned off", "sequence: {batch_window: 1ms}\n", func(t *testing.T, c config.Config) {
			if !c.Sequence.ClockFloor {
				t.Errorf("sequence.clock_floor off although not set")
			}
		}},
		{"the clock floor turned off", "sequence: {clock_floor: false}\n", func(t *testing.T, c config.Config) {
			if c.Sequence.ClockFloor {
				t.Errorf("sequence.clock_floor: false ignored")
			}
		}},
		{"comments only", "# nothing yet\n", func(t *testing.T, c config.Config) {
			if c.Listen != ":8443" {
				t.Errorf("Listen = %q", c.Listen)
			}
		}},
		{"a partial mapping keeps the other defaults", "rate_limits: {per_user: 5/m}\nlog: {level: warn}\n", func(t *testing.T, c config.Config) {
			if c.RateLimits.PerUser != "5/m" || c.RateLimits.PerIP != "300/m" || c.RateLimits.PerAPIKey != "6000/m" {
				t.Errorf("RateLimits = %+v", c.RateLimits)
			}
			if c.Log != (config.Log{Format: "json", Level: "warn"}) {
				t.Errorf("Log = %+v", c.Log)
			}
		}},
		{"zero durations", "applications:\n  - key: a\n    instance_ttl: 0 # none\n    token_ttl: 0\nsequence: {batch_window: 0, max_batch: 0}\n" +
			"identity_providers: [{issuer: x, leeway: 0x0}]\n", func(t *testing.T, c config.Config) {
			if a := c.Applications[0]; a.InstanceTTL != 0 || a.TokenTTL != 0 {
				t.Errorf("application = %+v", a)
			}
			if c.IdentityProviders[0].Leeway != 0 || c.Sequence.BatchWindow != 0 {
				t.Errorf("leeway %v, batch window %v", c.IdentityProviders[0].Leeway, c.Sequence.BatchWindow)
			}
		}},
		{"zero duration after non-ASCII text", "applications: [{key: a, secret_file: /run/sécrets/é, instance_ttl: 0}]\n", func(t *testing.T, c config.Config) {
			if a := c.Applications[0]; a.InstanceTTL != 0 || a.SecretFile != "/run/sécrets/é" {
				t.Errorf("application = %+v", a)
			}
		}},
		{"YAML 1.1 booleans and merge keys, as yaml.v3 takes them", "pprof: yes\ninsecure_http: off\n" +
			"applications:\n  - &app {key: a, secret_file: /s, token_ttl: 0}\n  - {<<: [*app], key: b, token_ttl: 2m}\n", func(t *testing.T, c config.Config) {
			if !c.Pprof || c.InsecureHTTP {
				t.Errorf("pprof %v, insecure_http %v", c.Pprof, c.InsecureHTTP)
			}
			if a := c.Applications; len(a) != 2 || a[0].Key != "a" || a[0].SecretFile != "/s" || a[1].Key != "b" || a[1].TokenTTL != 2*time.Minute {
				t.Errorf("applications %+v", a)
			}
		}},
		{"strings that look like zero stay strings", "listen: 0\ndata_dir: 0\napplications: [{key: 0, instance_ttl: 0s}]\n", func(t *testing.T, c config.Config) {
			if c.Listen != "0" || c.DataDir != "0" || c.Applications[0].Key != "0" {
				t.Errorf("got %+v", c)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Defaults()
			if err := config.Decode(strings.NewReader(tt.yaml), &c); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tt.check(t, c)
		})
	}

	t.Run("other integers for a duration are refused with their line", func(t *testing.T) {
		c := config.Defaults()
		err := config.Decode(strings.NewReader("log: {level: info}\napplications:\n  - key: a\n    token_ttl: 600\n"), &c)
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Key != "applications[0].token_ttl" || !strings.HasSuffix(cerr.Problem, ", line 4") {
			t.Errorf("Decode = %v, want an applications[0].token_ttl error at line 4", err)
		}
	})
	t.Run("an anchored zero is a zero", func(t *testing.T) {
		c := config.Defaults()
		err := config.Decode(strings.NewReader("applications:\n  - key: a\n    instance_ttl: &z 0\n    token_ttl: *z\n"), &c)
		if err != nil || c.Applications[0].InstanceTTL != 0 || c.Applications[0].TokenTTL != 0 {
			t.Errorf("Decode = %v, %+v", err, c.Applications)
		}
	})
}

func TestResolveTwice(t *testing.T) {
	f := newFixture(t)
	cfg := f.mustLoad(t, validYAML+"trusted_proxies: [10.0.0.0/8, 192.168.1.1]\n", nil)
	if err := cfg.Resolve(mapEnv(nil).Get); err != nil {
		t.Fatalf("second Resolve: %v", err)
	}
	if len(cfg.Proxies) != 2 || len(cfg.Applications[0].Secrets) != 1 {
		t.Errorf("after a second Resolve: %d proxies, %d secrets", len(cfg.Proxies), len(cfg.Applications[0].Secrets))
	}
}

func TestResolveDev(t *testing.T) {
	// `authserver dev` builds its Config in code: no TLS required, inline
	// secrets allowed.
	cfg := config.Defaults()
	cfg.Dev = true
	cfg.Applications = []config.Application{{Key: appKey, Secret: secretA}}
	cfg.APIKeys = []config.APIKey{{Name: "dev", SHA256: keyHash, Applications: []string{"*"}}}
	if err := cfg.Resolve(mapEnv(nil).Get); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	app := cfg.DefaultApplication()
	if app == nil || len(app.Secrets) != 1 || app.Secrets[0].Reveal() != secretA {
		t.Errorf("inline secret not resolved: %d secrets", len(cfg.Applications[0].Secrets))
	}
}

func TestConfigFormattingRedactsSecrets(t *testing.T) {
	f := newFixture(t)
	path := mustWrite(t, f.dir, "secrets/rotating", secretA+"\n"+secretB+"\n")
	hsFile := mustWrite(t, f.dir, "secrets/idp", hsLong+"\n")
	yamlText := tlsYAML + apiKeyYAML + "applications:\n" +
		"  - {key: " + appKey + ", secret_file: " + path + ", default: true}\n" +
		"  - {key: " + appKey2 + ", secret_env: SECOND_SECRET}\n" +
		"identity_providers:\n" +
		"  - {issuer: backend-a, audience: my-app, hs256_secret_env: IDP_SECRET}\n" +
		"  - {issuer: backend-b, audience: my-app, hs256_secret_file: " + hsFile + "}\n"
	cfg := f.mustLoad(t, yamlText, map[string]string{"SECOND_SECRET": secretB, "IDP_SECRET": hsLong})
	if n := len(cfg.Applications[0].Secrets) + len(cfg.Applications[1].Secrets); n != 3 {
		t.Fatalf("%d secrets resolved, want 3", n)
	}
	if string(cfg.IdentityProviders[0].HS256Secret) != hsLong || string(cfg.IdentityProviders[1].HS256Secret) != hsLong {
		t.Fatalf("HS256 secrets not resolved")
	}

	for _, verb := range []string{"%v", "%+v", "%#v"} {
		for _, v := range []any{cfg, *cfg, cfg.Applications, cfg.Applications[0].Secrets} {
			out := fmt.Sprintf(verb, v)
			for _, s := range allSecrets {
				if strings.Contains(out, s) {
					t.Errorf("Sprintf(%q, %T) reveals %q", verb, v, s)
				}
			}
			if !strings.Contains(out, "[redacted]") {
				t.Errorf("Sprintf(%q, %T) has no [redacted]: %s", verb, v, out)
			}
		}
	}
	// signer.Secret is the reason: check the property itself too.
	if got := fmt.Sprintf("%v %+v %#v %s", cfg.Applications[0].Secrets[0], cfg.Applications[0].Secrets[0], cfg.Applications[0].Secrets[0], cfg.Applications[0].Secrets[0]); strings.Contains(got, secretA) {
		t.Errorf("signer.Secret formats as %q", got)
	}
	var _ signer.Secret = cfg.Applications[0].Secrets[0]
}

func TestEnvNames(t *testing.T) {
	names := config.EnvNames()
	if len(names) == 0 {
		t.Fatal("no environment overrides")
	}
	seenName, seenKey := map[string]bool{}, map[string]bool{}
	for _, nk := range names {
		name, key := nk[0], nk[1]
		if !strings.HasPrefix(name, "AUTHSERVER_") {
			t.Errorf("%s does not start with AUTHSERVER_", name)
		}
		// The DESIGN rule: every key is settable by AUTHSERVER_<KEY>.
		if want := "AUTHSERVER_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key)); name != want {
			t.Errorf("%s sets %s; want the name %s", name, key, want)
		}
		if seenName[name] || seenKey[key] {
			t.Errorf("%s / %s listed twice", name, key)
		}
		seenName[name], seenKey[key] = true, true
	}
}

func TestProviderKeyFetching(t *testing.T) {
	f := newFixture(t)
	cfg := f.mustLoad(t, validYAML+`identity_providers:
  - {issuer: https://idp.example.com/, audience: my-app}
  - {issuer: "http://127.0.0.1:8080/realms/x", audience: my-app}
  - {issuer: https://b.example.com/, jwks_url: "http://localhost:8080/jwks", audience: my-app}
  - {issuer: http://idp.internal/, audience: my-app, allow_insecure_http: true, max_token_age: 1h, unknown_kid_refresh_interval: 30s}
`, nil)
	p := cfg.IdentityProviders
	if p[0].MaxTokenAge != 24*time.Hour || p[0].UnknownKIDRefreshInterval != 15*time.Second {
		t.Errorf("defaults: max_token_age %v, unknown_kid_refresh_interval %v", p[0].MaxTokenAge, p[0].UnknownKIDRefreshInterval)
	}
	for i, want := range []string{"", "", "", "http://idp.internal/"} {
		if got, _ := p[i].InsecureURL(); got != want {
			t.Errorf("provider %d: InsecureURL %q, want %q", i, got, want)
		}
	}
	if p[3].MaxTokenAge != time.Hour || p[3].UnknownKIDRefreshInterval != 30*time.Second || !p[3].AllowInsecureHTTP {
		t.Errorf("provider 3 = %+v", p[3])
	}
}
