package config_test

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
)

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name, value string
		check       func(c *config.Config) bool
	}{
		{"AUTHSERVER_LISTEN", ":9443", func(c *config.Config) bool { return c.Listen == ":9443" }},
		{"AUTHSERVER_ADMIN_LISTEN", "0.0.0.0:9191", func(c *config.Config) bool { return c.AdminListen == "0.0.0.0:9191" }},
		{"AUTHSERVER_TLS_CERT_FILE", "/etc/tls/cert.pem", func(c *config.Config) bool { return c.TLS.CertFile == "/etc/tls/cert.pem" }},
		{"AUTHSERVER_TLS_KEY_FILE", "/etc/tls/key.pem", func(c *config.Config) bool { return c.TLS.KeyFile == "/etc/tls/key.pem" }},
		{"AUTHSERVER_INSECURE_HTTP", "true", func(c *config.Config) bool { return c.InsecureHTTP }},
		{"AUTHSERVER_DATABASE_URL", "postgres://db/authserver", func(c *config.Config) bool { return c.DatabaseURL == "postgres://db/authserver" }},
		{"AUTHSERVER_DATA_DIR", "/var/lib/authserver", func(c *config.Config) bool { return c.DataDir == "/var/lib/authserver" }},
		{"AUTHSERVER_RATE_LIMITS_PER_USER", "1/s", func(c *config.Config) bool { return c.RateLimits.PerUser == "1/s" }},
		{"AUTHSERVER_RATE_LIMITS_PER_IP", "off", func(c *config.Config) bool { return c.RateLimits.PerIP == "off" }},
		{"AUTHSERVER_RATE_LIMITS_PER_API_KEY", "100/h", func(c *config.Config) bool { return c.RateLimits.PerAPIKey == "100/h" }},
		{"AUTHSERVER_RATE_LIMITS_PER_IP_FAILED_AUTH", "5/m", func(c *config.Config) bool { return c.RateLimits.PerIPFailedAuth == "5/m" }},
		{"AUTHSERVER_CORS_ALLOWED_ORIGINS", "https://a.example.com, https://b.example.com", func(c *config.Config) bool {
			return slices.Equal(c.CORS.AllowedOrigins, []string{"https://a.example.com", "https://b.example.com"})
		}},
		{"AUTHSERVER_TRUSTED_PROXIES", "10.0.0.0/8", func(c *config.Config) bool { return slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8"}) }},
		{"AUTHSERVER_LOG_FORMAT", "text", func(c *config.Config) bool { return c.Log.Format == "text" }},
		{"AUTHSERVER_LOG_LEVEL", "debug", func(c *config.Config) bool { return c.Log.Level == "debug" }},
		{"AUTHSERVER_PPROF", "1", func(c *config.Config) bool { return c.Pprof }},
		{"AUTHSERVER_SEQUENCE_DISABLE_GROUP_COMMIT", "TRUE", func(c *config.Config) bool { return c.Sequence.DisableGroupCommit }},
		{"AUTHSERVER_SEQUENCE_CLOCK_FLOOR", "false", func(c *config.Config) bool { return !c.Sequence.ClockFloor }},
		{"AUTHSERVER_SEQUENCE_BATCH_WINDOW", "750us", func(c *config.Config) bool { return c.Sequence.BatchWindow == 750*time.Microsecond }},
		{"AUTHSERVER_SEQUENCE_MAX_BATCH", "5", func(c *config.Config) bool { return c.Sequence.MaxBatch == 5 }},
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			c := config.Defaults()
			if err := config.ApplyEnv(&c, mapEnv(map[string]string{tt.name: tt.value})); err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			if !tt.check(&c) {
				t.Errorf("%s=%q not applied: %+v", tt.name, tt.value, c)
			}
		})
	}
	for _, nk := range config.EnvNames() {
		if !tested[nk[0]] {
			t.Errorf("%s has no case in TestApplyEnv", nk[0])
		}
	}

	// An empty value is a mistake (a variable meant to be filled) unless
	// the key may be empty: then it sets it to empty.
	t.Run("empty values are errors unless allowed", func(t *testing.T) {
		allowed := map[string]bool{"AUTHSERVER_DATABASE_URL": true, "AUTHSERVER_CORS_ALLOWED_ORIGINS": true, "AUTHSERVER_TRUSTED_PROXIES": true}
		for _, nk := range config.EnvNames() {
			c := config.Defaults()
			c.DatabaseURL, c.CORS.AllowedOrigins, c.TrustedProxies = "postgres://file/db", []string{"https://file.example.com"}, []string{"10.0.0.0/8"}
			err := config.ApplyEnv(&c, mapEnv(map[string]string{nk[0]: ""}))
			if allowed[nk[0]] {
				if err != nil {
					t.Errorf("%s=: %v", nk[0], err)
				}
				continue
			}
			var cerr *config.Error
			if !errors.As(err, &cerr) || err.Error() != "config: "+nk[0]+": is set but empty; unset it to keep the file's or the default value" {
				t.Errorf("%s=: %v, want an error naming it", nk[0], err)
			}
		}
		c := config.Defaults()
		c.DatabaseURL = "postgres://file/db"
		if err := config.ApplyEnv(&c, mapEnv(map[string]string{"AUTHSERVER_DATABASE_URL": ""})); err != nil || c.DatabaseURL != "" {
			t.Errorf("AUTHSERVER_DATABASE_URL= : %v, DatabaseURL %q (want the embedded store)", err, c.DatabaseURL)
		}
	})
	t.Run("unknown AUTHSERVER_ variables are errors naming them", func(t *testing.T) {
		c := config.Defaults()
		err := config.ApplyEnv(&c, mapEnv(map[string]string{
			"AUTHSERVER_LISTN": ":1", "AUTHSERVER_SEQUENCE_MAXBATCH": "5", "AUTHSERVER_FROBNICATE": "1",
			"OTHER_LISTN": "x", // not ours
			// Read by tools around authserver, not by it: allowed.
			"AUTHSERVER_TEST_DATABASE_URL": "postgres://t/db", "AUTHSERVER_VERSION": "1", "AUTHSERVER_COMMIT": "abc",
		}))
		want := "config: AUTHSERVER_FROBNICATE: unknown variable; unset it, or see the README's list\n" +
			"config: AUTHSERVER_LISTN: unknown variable (did you mean AUTHSERVER_LISTEN?); unset it, or see the README's list\n" +
			"config: AUTHSERVER_SEQUENCE_MAXBATCH: unknown variable (did you mean AUTHSERVER_SEQUENCE_MAX_BATCH?); unset it, or see the README's list"
		if err == nil || err.Error() != want {
			t.Errorf("ApplyEnv = %v\nwant\n%s", err, want)
		}
		if c.Listen != ":8443" {
			t.Errorf("Listen = %q", c.Listen)
		}
	})
	t.Run("false turns a file's true off", func(t *testing.T) {
		c := config.Defaults()
		c.InsecureHTTP, c.Pprof = true, true
		if err := config.ApplyEnv(&c, mapEnv(map[string]string{"AUTHSERVER_INSECURE_HTTP": "false", "AUTHSERVER_PPROF": "0"})); err != nil {
			t.Fatalf("ApplyEnv: %v", err)
		}
		if c.InsecureHTTP || c.Pprof {
			t.Errorf("InsecureHTTP %v, Pprof %v", c.InsecureHTTP, c.Pprof)
		}
	})
	t.Run("a list of separators only clears the list", func(t *testing.T) {
		c := config.Defaults()
		c.CORS.AllowedOrigins = []string{"https://file.example.com"}
		if err := config.ApplyEnv(&c, mapEnv(map[string]string{"AUTHSERVER_CORS_ALLOWED_ORIGINS": " , "})); err != nil {
			t.Fatalf("ApplyEnv: %v", err)
		}
		if len(c.CORS.AllowedOrigins) != 0 {
			t.Errorf("AllowedOrigins = %q", c.CORS.AllowedOrigins)
		}
	})
}

func TestApplyEnvShortcut(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantKey string // the *config.Error key; "" means success
		want    config.Application
	}{
		{name: "none", env: map[string]string{}},
		{name: "key and secret", env: map[string]string{"AUTHSERVER_APP_KEY": appKey, "AUTHSERVER_APP_SECRET": secretA},
			want: config.Application{Key: appKey, Default: true, SecretEnv: "AUTHSERVER_APP_SECRET"}},
		{name: "key and secret file", env: map[string]string{"AUTHSERVER_APP_KEY": appKey, "AUTHSERVER_APP_SECRET_FILE": "/run/secrets/sinch"},
			want: config.Application{Key: appKey, Default: true, SecretFile: "/run/secrets/sinch"}},
		{name: "secret without key", env: map[string]string{"AUTHSERVER_APP_SECRET": secretA}, wantKey: "AUTHSERVER_APP_KEY"},
		{name: "secret file without key", env: map[string]string{"AUTHSERVER_APP_SECRET_FILE": "/run/secrets/sinch"}, wantKey: "AUTHSERVER_APP_KEY"},
		{name: "key without secret", env: map[string]string{"AUTHSERVER_APP_KEY": appKey}, wantKey: "AUTHSERVER_APP_SECRET"},
		{name: "secret and secret file", env: map[string]string{"AUTHSERVER_APP_KEY": appKey, "AUTHSERVER_APP_SECRET": secretA, "AUTHSERVER_APP_SECRET_FILE": "/run/secrets/sinch"}, wantKey: "AUTHSERVER_APP_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Defaults()
			file := []config.Application{{Key: "from-file", SecretFile: "/x"}}
			c.Applications = file
			err := config.ApplyEnv(&c, mapEnv(tt.env))
			if tt.wantKey != "" {
				var cerr *config.Error
				if !errors.As(err, &cerr) || cerr.Key != tt.wantKey {
					t.Fatalf("ApplyEnv = %v, want a *config.Error for %s", err, tt.wantKey)
				}
				if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: ") || strings.Contains(msg, secretA) {
					t.Errorf("bad error text %q", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			if tt.want.Key == "" {
				if len(c.Applications) != 1 || c.Applications[0].Key != "from-file" {
					t.Errorf("the file's applications changed: %+v", c.Applications)
				}
				return
			}
			if len(c.Applications) != 1 {
				t.Fatalf("%d applications, want the shortcut's one", len(c.Applications))
			}
			got := c.Applications[0]
			if got.Key != tt.want.Key || got.Default != tt.want.Default || got.SecretEnv != tt.want.SecretEnv || got.SecretFile != tt.want.SecretFile || got.Secret != "" {
				t.Errorf("application = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	valid := []struct {
		in   string
		want config.Rate
	}{
		{"", config.Rate{}},
		{"0", config.Rate{}},
		{"off", config.Rate{}},
		{" off ", config.Rate{}},
		{"10/m", config.Rate{N: 10, Period: time.Minute}},
		{"1/s", config.Rate{N: 1, Period: time.Second}},
		{"300/m", config.Rate{N: 300, Period: time.Minute}},
		{"5000/h", config.Rate{N: 5000, Period: time.Hour}},
		{" 20/s\t", config.Rate{N: 20, Period: time.Second}},
		{"007/m", config.Rate{N: 7, Period: time.Minute}},
	}
	for _, tt := range valid {
		t.Run("valid "+tt.in, func(t *testing.T) {
			got, err := config.ParseRate(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseRate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
	invalid := []string{
		"10",                     // no unit
		"10/d",                   // unknown unit
		"10/min",                 // units are one letter
		"10/M",                   // and lower case
		"10/",                    // empty unit
		"/m",                     // no count
		"0/m",                    // zero is written "0" or "off"
		"-1/m",                   // negative
		"1.5/s",                  // not an integer
		"ten/m",                  // not a number
		"10 /m",                  // space inside
		"10/m/s",                 // two units
		"none",                   // only "off" and "0" disable
		"1e3/m",                  // not a plain integer
		"0x10/s",                 // not decimal
		"+-/s",                   // garbage
		"99999999999999999999/s", // overflows int
	}
	for _, in := range invalid {
		t.Run("invalid "+in, func(t *testing.T) {
			got, err := config.ParseRate(in)
			if err == nil {
				t.Fatalf("ParseRate(%q) = %+v, want an error", in, got)
			}
			if got != (config.Rate{}) {
				t.Errorf("ParseRate(%q) returned %+v with its error", in, got)
			}
			if msg := err.Error(); !strings.Contains(msg, in) || strings.Contains(msg, "\n") {
				t.Errorf("error %q should quote the input on one line", msg)
			}
		})
	}
}

func TestApplyEnvAPIKeysAndProvider(t *testing.T) {
	hash2 := strings.Repeat("ab", 32)
	t.Run("api keys", func(t *testing.T) {
		c := config.Defaults()
		c.APIKeys = []config.APIKey{{Name: "from-file"}}
		err := config.ApplyEnv(&c, mapEnv(map[string]string{"AUTHSERVER_API_KEYS": "backend:" + keyHash + ":" + appKey + "|" + appKey2 + ", ops:" + hash2 + ":*"}))
		if err != nil {
			t.Fatal(err)
		}
		want := []config.APIKey{{Name: "backend", SHA256: keyHash, Applications: []string{appKey, appKey2}}, {Name: "ops", SHA256: hash2, Applications: []string{"*"}}}
		if len(c.APIKeys) != 2 || c.APIKeys[0].Name != want[0].Name || c.APIKeys[0].SHA256 != want[0].SHA256 || !slices.Equal(c.APIKeys[0].Applications, want[0].Applications) ||
			c.APIKeys[1].Name != want[1].Name || !slices.Equal(c.APIKeys[1].Applications, want[1].Applications) {
			t.Errorf("APIKeys = %+v, want %+v", c.APIKeys, want)
		}
	})
	for _, bad := range []string{"backend", "backend:" + keyHash, "backend:" + keyHash + ":", ":" + keyHash + ":*", "backend:" + keyHash + ":*,"} {
		c := config.Defaults()
		err := config.ApplyEnv(&c, mapEnv(map[string]string{"AUTHSERVER_API_KEYS": bad}))
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Key != "AUTHSERVER_API_KEYS" || !strings.Contains(cerr.Problem, "want name:sha256:applications") || strings.Contains(err.Error(), keyHash) {
			t.Errorf("AUTHSERVER_API_KEYS=%q: %v", bad, err)
		}
	}
	t.Run("identity provider", func(t *testing.T) {
		c := config.Defaults()
		err := config.ApplyEnv(&c, mapEnv(map[string]string{"AUTHSERVER_IDP_ISSUER": "https://idp.example.com/", "AUTHSERVER_IDP_AUDIENCE": "my-app", "AUTHSERVER_IDP_JWKS_URL": "https://idp.example.com/keys"}))
		if err != nil || len(c.IdentityProviders) != 1 {
			t.Fatalf("ApplyEnv = %v, %+v", err, c.IdentityProviders)
		}
		if p := c.IdentityProviders[0]; p.Issuer != "https://idp.example.com/" || p.Audience != "my-app" || p.JWKSURL != "https://idp.example.com/keys" {
			t.Errorf("provider %+v", p)
		}
	})
	for _, tt := range []struct {
		env map[string]string
		key string
	}{
		{map[string]string{"AUTHSERVER_IDP_ISSUER": "https://idp.example.com/"}, "AUTHSERVER_IDP_AUDIENCE"},
		{map[string]string{"AUTHSERVER_IDP_AUDIENCE": "my-app"}, "AUTHSERVER_IDP_ISSUER"},
		{map[string]string{"AUTHSERVER_IDP_JWKS_URL": "https://idp.example.com/keys"}, "AUTHSERVER_IDP_ISSUER"},
	} {
		c := config.Defaults()
		var cerr *config.Error
		if err := config.ApplyEnv(&c, mapEnv(tt.env)); !errors.As(err, &cerr) || cerr.Key != tt.key {
			t.Errorf("%v: %v, want an error for %s", tt.env, err, tt.key)
		}
	}
}

// TestEveryScalarKeyHasAVariable walks Config's YAML shape: every key that
// holds one value (or a list of strings) outside the lists of applications,
// providers and API keys must have its AUTHSERVER_ variable.
func TestEveryScalarKeyHasAVariable(t *testing.T) {
	have := map[string]bool{}
	for _, nk := range config.EnvNames() {
		have[nk[1]] = true
		if nk[0] != config.EnvName(nk[1]) {
			t.Errorf("%s sets %s: names are generated from keys", nk[0], nk[1])
		}
	}
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]():
				walk(f.Type, prefix+name+".")
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				// applications, identity_providers, api_keys: lists of
				// mappings, with their own variables.
			default:
				keys = append(keys, prefix+name)
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	if len(keys) < 15 {
		t.Fatalf("found only %d scalar keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !have[k] {
			t.Errorf("%s has no environment variable: add a row to envVars in env.go", k)
		}
	}
}

// TestREADMEEnvTable: the README's table of variables is EnvTable, the one
// table env.go applies. go test -update rewrites it.
func TestREADMEEnvTable(t *testing.T) {
	const path = "../../README.md"
	const begin, end = "<!-- env table: generated by go test ./internal/config -update -->\n", "<!-- end of env table -->\n"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q section", strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	got, want := readme[i+len(begin):j], config.EnvTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's variable table is not config.EnvTable() (go test ./internal/config -run TestREADMEEnvTable -update rewrites it):\n%s", want)
}

func TestNonUUIDApplicationKeyWarns(t *testing.T) {
	f := newFixture(t)
	cfg := f.mustLoad(t, tlsYAML+apiKeyYAML+"applications:\n  - {key: my-sinch-app, secret_file: $SECRET_FILE}\n", nil)
	if want := []string{`applications[0].key: "my-sinch-app" is not a UUID, as the Sinch dashboard's application keys are: check it`}; !slices.Equal(cfg.Warnings, want) {
		t.Errorf("Warnings = %q, want %q", cfg.Warnings, want)
	}
	if cfg := f.mustLoad(t, validYAML, nil); len(cfg.Warnings) != 0 {
		t.Errorf("Warnings for a UUID key: %q", cfg.Warnings)
	}
}
