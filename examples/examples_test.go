package examples

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/servertest"
)

// minNode is the oldest Node.js with a global fetch.
const minNode = 18

// installNode says how to get Node.js when it is missing or too old.
const installNode = "the web example's test needs Node.js 18+ (for its global fetch); " +
	"install it, e.g. `apt-get install -y nodejs` on Debian/Ubuntu"

// TestWebExample runs web/test.mjs, which drives web/authserver-credentials.js,
// against the real authserver binary twice:
//
//   - `authserver dev`, authenticating with its API key (X-API-Key), the
//     way a trusted backend calls;
//   - `authserver serve` with an HS256 identity provider, authenticating
//     with `Authorization: Bearer <identity token>`, the example's default
//     and the way an end user's app calls.
//
// Node.js is required: without it this test fails, it does not skip.
func TestWebExample(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	bin := buildAuthserver(t)
	dir := t.TempDir()

	devDir := filepath.Join(dir, "dev")
	devURL := start(t, bin, []string{"dev", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", devDir}, devBanner)
	// dev wrote these before it listened: its self-signed certificate (also
	// the CA node must trust) and the demo application's secret.
	certFile, keyFile := filepath.Join(devDir, "dev-cert.pem"), filepath.Join(devDir, "dev-key.pem")
	secretFile := filepath.Join(devDir, "dev-app-secret")
	common := map[string]string{
		"NODE_EXTRA_CA_CERTS":     certFile,
		"EXAMPLE_APP_KEY":         "demo-app",
		"EXAMPLE_APP_SECRET_FILE": secretFile,
	}

	t.Run("api-key/dev", func(t *testing.T) {
		runNode(t, node, common, map[string]string{
			"EXAMPLE_BASE_URL": devURL,
			"EXAMPLE_AUTH":     "api-key",
			"EXAMPLE_API_KEY":  "dev-api-key",
		})
	})

	t.Run("bearer/serve", func(t *testing.T) {
		const issuer, audience = "https://login.example.test/", "example-app"
		idpSecret := filepath.Join(dir, "idp-secret")
		mustWrite(t, idpSecret, servertest.RandomHex(32)+"\n")
		config := filepath.Join(dir, "serve.yaml")
		mustWrite(t, config, fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
tls: {cert_file: %q, key_file: %q}
data_dir: %q
log: {format: json}
applications:
  - {key: demo-app, secret_file: %q, default: true}
identity_providers:
  - {issuer: %q, audience: %q, hs256_secret_file: %q}
rate_limits: {per_user: 600/m}
`, certFile, keyFile, filepath.Join(dir, "serve"), secretFile, issuer, audience, idpSecret))
		url := start(t, bin, []string{"serve", "--config", config}, startedLog)
		runNode(t, node, common, map[string]string{
			"EXAMPLE_BASE_URL":       url,
			"EXAMPLE_AUTH":           "bearer",
			"EXAMPLE_ID_ISSUER":      issuer,
			"EXAMPLE_ID_AUDIENCE":    audience,
			"EXAMPLE_ID_SECRET_FILE": idpSecret,
		})
	})
}

// requireTool finds name on PATH or fails the test saying how to install it.
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: %s", name, install)
	}
	return p
}

// runTool runs a command and fails the test with its output if it fails.
func runTool(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// requireNode finds node (v18+) or fails the test saying how to install it.
func requireNode(t *testing.T) string {
	t.Helper()
	node := requireTool(t, "node", installNode)
	v := strings.TrimSpace(runTool(t, time.Minute, node, "--version"))
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	if err != nil || major < minNode {
		t.Fatalf("node %s is too old: %s", v, installNode)
	}
	return node
}

// buildAuthserver returns the real binary, built once for the run.
func buildAuthserver(t *testing.T) string {
	t.Helper()
	return servertest.Binary(t)
}

var devURLRE = regexp.MustCompile(`public API\s+(https://\S+)`)

// devBanner reads the public URL from the banner `authserver dev` prints.
func devBanner(line string) (string, bool) {
	m := devURLRE.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// startedLog reads the public URL from serve's JSON "authserver started" log line.
func startedLog(line string) (string, bool) {
	var l struct{ Msg, Listen string }
	if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "authserver started" || l.Listen == "" {
		return "", false
	}
	return "https://" + l.Listen, true
}

// start runs bin with args until the test ends, and returns the base URL
// that addr finds in its output (stdout or stderr). The child gets no
// AUTHSERVER_* variables from the test's environment, so only args
// configure it. Its output is logged when the test fails.
func start(t *testing.T, bin string, args []string, addr func(line string) (string, bool)) string {
	t.Helper()
	p, err := servertest.Launch(servertest.Options{Binary: bin, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Signal(syscall.SIGINT)
		if err := p.Wait(15 * time.Second); err != nil && !p.Exited() {
			p.Kill()
			t.Errorf("authserver %s did not stop within 15 s of SIGINT", args[0])
		}
		if t.Failed() {
			t.Logf("authserver %s output:\n%s", strings.Join(args, " "), p.Out)
		}
	})
	var u string
	found := func() bool {
		for _, line := range strings.Split(p.Out.String(), "\n") {
			if v, ok := addr(line); ok {
				u = v
				return true
			}
		}
		return false
	}
	err = servertest.Poll(60*time.Second, "address", func() bool { return found() || p.Exited() })
	if u == "" {
		t.Fatalf("authserver %s printed no address (%v, exited: %v):\n%s", args[0], err, p.Exited(), p.Out)
	}
	return u
}

// runNode runs web/test.mjs with the given variables and fails the test
// unless it exits 0.
func runNode(t *testing.T, node string, vars ...map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("web", "test.mjs"))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EXAMPLE_") && !strings.HasPrefix(kv, "NODE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for _, m := range vars {
		for k, v := range m {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node web/test.mjs: %v\n%s", err, out)
	}
	t.Logf("node web/test.mjs:\n%s", out)
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
