package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/servertest"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

const serveAppKey = "196087a1-e815-4bc4-8984-60d8d8a43f1d"

// serveFixture is a directory with a TLS pair, a secret file and an API key,
// ready for a config file.
type serveFixture struct {
	dir, certFile, keyFile, secretFile, apiKey string
}

func newServeFixture(t *testing.T) serveFixture {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, err := tlsutil.SelfSigned(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secretFile := filepath.Join(dir, "app-secret")
	if err := os.WriteFile(secretFile, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 24)
	_, _ = rand.Read(key)
	return serveFixture{dir: dir, certFile: certFile, keyFile: keyFile, secretFile: secretFile,
		apiKey: base64.RawURLEncoding.EncodeToString(key)}
}

// config returns a valid YAML config; replace swaps lines for the error cases.
func (f serveFixture) config(replace ...string) string {
	sum := sha256.Sum256([]byte(f.apiKey))
	y := `listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
tls:
  cert_file: ` + f.certFile + `
  key_file: ` + f.keyFile + `
data_dir: ` + filepath.Join(f.dir, "data") + `
applications:
  - key: ` + serveAppKey + `
    secret_file: ` + f.secretFile + `
    default: true
    token_ttl: 5m
api_keys:
  - name: backend
    sha256: ` + hex.EncodeToString(sum[:]) + `
    applications: ["*"]
log:
  format: json
sequence:
  clock_floor: false
`
	return strings.NewReplacer(replace...).Replace(y)
}

// serve writes yaml as the config, runs `serve --config` on it, waits for
// the start log line and returns the run and a client of its listeners.
func (f serveFixture) serve(t *testing.T, yaml string) (*runningCmd, *server) {
	t.Helper()
	rc := startRun(t, []string{"serve", "--config", f.write(t, yaml)}, envOf(nil))
	m := rc.waitOutput(t, rc.stderr, startedRe)
	return rc, newServer(t, rc, "https://"+m[1], "http://"+m[2], f.certFile)
}

func (f serveFixture) write(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(f.dir, "authserver.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var startedRe = regexp.MustCompile(`"msg":"authserver started".*?"listen":"([^"]+)","admin_listen":"([^"]+)"`)

// TestServeConfigFile runs `serve --config` with a file written here and
// checks the same flow as dev; the addresses come from the start log line.
func TestServeConfigFile(t *testing.T) {
	f := newServeFixture(t)
	rc, s := f.serve(t, f.config())

	got := checkCredentials(t, s, f.apiKey, serveAppKey, f.secretFile, "alice", 5*time.Minute, false)

	resp, body := s.post(t, "/v1/registration-tokens", map[string]string{"X-API-Key": f.apiKey + "x"}, `{"userId":"alice"}`)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("wrong API key: %s %s", resp.Status, body)
	}
	resp, body = s.post(t, "/v1/registration-tokens", map[string]string{"X-API-Key": f.apiKey}, `{"userId":"not valid"}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("invalid user id: %s %s", resp.Status, body)
	}

	s.client.CloseIdleConnections()
	if err := rc.stop(t); err != nil {
		t.Fatalf("serve returned %v after its context ended", err)
	}
	logs := rc.stderr.String()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("log format json, but a line is not JSON: %q", line)
		}
	}
	for name, v := range map[string]string{"API key": f.apiKey, "secret": readSecret(t, f.secretFile), "token": got.tokens[0], "signature": got.signatures[0]} {
		if strings.Contains(logs, v) {
			t.Errorf("the log contains the %s", name)
		}
	}
}

// TestServeRefusesBadConfig: a bad config makes run return at once with one
// line that names the key, and nothing on stdout.
func TestServeRefusesBadConfig(t *testing.T) {
	f := newServeFixture(t)
	badSecret := filepath.Join(f.dir, "bad-secret")
	if err := os.WriteFile(badSecret, []byte("c2hvcnQ=\n"), 0o600); err != nil { // "short": 5 bytes
		t.Fatal(err)
	}
	notB64 := filepath.Join(f.dir, "not-base64")
	if err := os.WriteFile(notB64, []byte("this is not base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	appsBlock := "applications:\n  - key: " + serveAppKey + "\n    secret_file: " + f.secretFile + "\n    default: true\n    token_ttl: 5m\n"
	for _, tc := range []struct {
		name    string
		yaml    string
		want    []string
		notWant string
	}{
		{"missing applications", f.config(appsBlock, ""), []string{"config: applications:"}, ""},
		{"secret too short", f.config(f.secretFile, badSecret), []string{"applications[0].secret_file", "5 bytes"}, "c2hvcnQ"},
		{"secret not base64", f.config(f.secretFile, notB64), []string{"applications[0].secret_file", "Base64"}, "this is not"},
		{"secret file missing", f.config(f.secretFile, f.secretFile+".nope"), []string{"applications[0].secret_file"}, ""},
		{"unknown key", f.config("admin_listen:", "admin_listn:"), []string{`config: admin_listn: unknown key (did you mean "admin_listen"?), line 2`}, ""},
		{"placeholder application key", f.config(serveAppKey, "REPLACE-WITH-YOUR-SINCH-APPLICATION-KEY"), []string{"config: applications[0].key:", "placeholder"}, ""},
		{"listen without port", f.config(`listen: "127.0.0.1:0"`, `listen: "127.0.0.1"`), []string{"listen:", "127.0.0.1"}, ""},
		{"listen port in use", f.config(`listen: "127.0.0.1:0"`, `listen: "`+busy.Addr().String()+`"`), []string{"listen:", busy.Addr().String()}, ""},
		{"admin_listen bad", f.config(`admin_listen: "127.0.0.1:0"`, `admin_listen: "127.0.0.1:http-admin"`), []string{"admin_listen:"}, ""},
		{"tls key missing", f.config(f.keyFile, f.keyFile+".nope"), []string{"tls.key_file"}, ""},
		{"bad rate", f.config("log:", "rate_limits: {per_user: lots}\nlog:"), []string{"rate_limits.per_user"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := f.write(t, tc.yaml)
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, []string{"serve", "--config", path}, envOf(nil), &stdout, &stderr)
			oneLineErr(t, err, tc.want...)
			if ctx.Err() != nil {
				t.Error("run only returned when its context ended")
			}
			if tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
				t.Errorf("error quotes the secret file's content: %v", err)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		err := run(context.Background(), []string{"serve", "--config", filepath.Join(f.dir, "nope.yaml")}, envOf(nil), &bytes.Buffer{}, &bytes.Buffer{})
		oneLineErr(t, err, "config: file:", "nope.yaml")
	})
	// Nothing given at all: say so and how to start, not what the empty
	// config lacks first.
	t.Run("no config at all", func(t *testing.T) {
		err := run(context.Background(), []string{"serve"}, envOf(nil), &bytes.Buffer{}, &bytes.Buffer{})
		oneLineErr(t, err, "no configuration: give --config FILE or set AUTHSERVER_CONFIG", "authserver dev")
	})
	t.Run("an unknown variable", func(t *testing.T) {
		path := f.write(t, f.config())
		err := run(context.Background(), []string{"serve", "--config", path}, envOf(map[string]string{"AUTHSERVER_LISTN": ":1"}), &bytes.Buffer{}, &bytes.Buffer{})
		oneLineErr(t, err, "config: AUTHSERVER_LISTN: unknown variable (did you mean AUTHSERVER_LISTEN?)")
	})
	t.Run("config from AUTHSERVER_CONFIG", func(t *testing.T) {
		path := f.write(t, f.config(appsBlock, ""))
		err := run(context.Background(), []string{"serve"}, envOf(map[string]string{"AUTHSERVER_CONFIG": path}), &bytes.Buffer{}, &bytes.Buffer{})
		oneLineErr(t, err, "config: applications:")
	})
}

// runBinary runs the built command with no AUTHSERVER_* variables.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	stdout, stderr, code, err := servertest.Run(servertest.Binary(t), nil, 20*time.Second, args...)
	if err != nil {
		t.Fatal(err)
	}
	return code, stdout, stderr
}

// TestBinaryExitCodes checks what main adds to run: exit 1 and exactly one
// stderr line for a refused start or an invalid token, exit 2 for command-
// line mistakes, 0 for help and version.
func TestBinaryExitCodes(t *testing.T) {
	f := newServeFixture(t)
	bad := f.write(t, f.config("admin_listen:", "admin_listn:"))

	code, stdout, stderr := runBinary(t, "serve", "--config", bad)
	if code != 1 {
		t.Errorf("serve with a bad config: exit %d, want 1", code)
	}
	if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "authserver: config: admin_listn: unknown key") || strings.Contains(lines[0], "config.Config") {
		t.Errorf("serve with a bad config: stderr %q, want one line naming admin_listn", stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}

	// A failure after the config is loaded (the port is taken) is one line too.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := f.write(t, f.config(`listen: "127.0.0.1:0"`, `listen: "`+busy.Addr().String()+`"`))
	code, _, stderr = runBinary(t, "serve", "--config", taken)
	if code != 1 || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.HasPrefix(stderr, "authserver: listen:") {
		t.Errorf("serve on a taken port: exit %d, stderr %q; want 1 and one line", code, stderr)
	}

	code, _, stderr = runBinary(t, "verify", "--app-secret", "MDEyMzQ1Njc4OWFiY2RlZg==", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA")
	if code != 1 || strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.HasPrefix(stderr, "authserver: invalid registration token") {
		t.Errorf("verify of a bad token: exit %d, stderr %q; want 1 and one line", code, stderr)
	}

	// Usage errors: exit 2, and stderr says what is wrong.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "usage: authserver"},
		{[]string{"no-such-command"}, `unknown command "no-such-command"`},
		{[]string{"serve", "--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"token", "--ttl", "ten"}, `invalid value "ten" for flag -ttl`},
		{[]string{"token", "--app-secret", "MDEyMzQ1Njc4OWFiY2RlZg==", "--user", "alice", "extra"}, `unexpected argument "extra"`},
		{[]string{"signature", "--app-secret", "MDEyMzQ1Njc4OWFiY2RlZg==", "--user", "alice", "--sequence", "1", "extra"}, `unexpected argument "extra"`},
		{[]string{"verify", "--app-secret", "MDEyMzQ1Njc4OWFiY2RlZg=="}, "usage: authserver verify"},
	} {
		code, _, stderr := runBinary(t, tc.args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: stderr %q does not say %q", tc.args, stderr, tc.want)
		}
	}

	for _, args := range [][]string{{"serve", "-h"}, {"help"}, {"version"}} {
		if code, _, stderr := runBinary(t, args...); code != 0 {
			t.Errorf("%q: exit %d (stderr %q), want 0", args, code, stderr)
		}
	}
	if _, stdout, _ := runBinary(t, "version"); !strings.HasPrefix(stdout, "authserver ") || !strings.Contains(stdout, "go1.") {
		t.Errorf("version printed %q", stdout)
	}
}
