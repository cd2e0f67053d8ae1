//go:build faults

package faults

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/internal/servertest"
	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

func TestMain(m *testing.M) {
	pgtest.Main(m) // runs the tests, then closes the cluster pgtest.DB shares
}

// fixture is what the servers of one test share: a self-signed TLS
// certificate, one application with its secret file, an API key.
type fixture struct {
	t        *testing.T
	dir      string
	certFile string
	keyFile  string
	roots    *x509.CertPool

	appKey      string
	secretFile  string
	secrets     []signer.Secret // every secret the test may see, in the order signedBy reports
	secretTexts []string
	apiKey      string
}

const appKey = "faults-app"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, err := tlsutil.SelfSigned(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatalf("self-signed certificate: %v", err)
	}
	f := &fixture{
		t: t, dir: dir, certFile: certFile, keyFile: keyFile, roots: x509.NewCertPool(),
		appKey: appKey, secretFile: filepath.Join(dir, "app-secret"),
		apiKey: "faults-" + servertest.RandomHex(16),
	}
	f.trust(certFile)
	f.addSecret(newSecretText())
	writeFile(t, f.secretFile, f.secretTexts[0]+"\n")
	return f
}

// addSecret makes a secret known to the checks (signedBy); it returns its index.
func (f *fixture) addSecret(text string) int {
	f.secretTexts = append(f.secretTexts, text)
	f.secrets = append(f.secrets, signer.MustParseSecret(text))
	return len(f.secrets) - 1
}

// trust adds a PEM certificate file to the clients' roots.
func (f *fixture) trust(certFile string) *x509.Certificate {
	f.t.Helper()
	c, err := servertest.Certificate(certFile)
	if err != nil {
		f.t.Fatal(err)
	}
	f.roots.AddCert(c)
	return c
}

// newSecretText is a fresh application secret (16 bytes, Base64).
func newSecretText() string { return servertest.RandomBase64(16) }

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes path through a temporary file and a rename, the way a
// deploy tool or Kubernetes secret update replaces a file.
func replaceFile(t testing.TB, path string, content []byte) {
	t.Helper()
	tmp := path + ".tmp-" + servertest.RandomHex(4)
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serverConfig is what differs between the servers the tests start.
type serverConfig struct {
	DatabaseURL string // empty: embedded store in the server's data dir
	PerIP       string // rate_limits.per_ip; default off
	HS256IdP    string // non-empty: an HS256 identity provider with this secret
	LogLevel    string // default warn
	// ClockFloor is sequence.clock_floor. Off unless set: the tests that
	// count gaps compare the numbers received with the store's highs.
	ClockFloor bool
}

// server is one authserver process (and its restarts) with fixed ports and
// config.
type server struct {
	t       *testing.T
	f       *fixture
	name    string
	cfg     serverConfig
	cfgPath string
	dataDir string
	logPath string
	pubAddr string
	admAddr string

	mu   sync.Mutex
	proc *servertest.Process // nil when not started
}

// newServer writes a config for a server with its own free ports; start it
// with start.
func (f *fixture) newServer(name string, sc serverConfig) *server {
	t := f.t
	t.Helper()
	s := &server{
		t: t, f: f, name: name, cfg: sc,
		cfgPath: filepath.Join(f.dir, name+".yaml"),
		dataDir: filepath.Join(f.dir, name+"-data"),
		logPath: filepath.Join(f.dir, name+".log"),
	}
	// Fixed ports, so that a restarted server is found at the same address.
	var err error
	if s.pubAddr, err = servertest.FreeAddr(); err == nil {
		s.admAddr, err = servertest.FreeAddr()
	}
	if err != nil {
		t.Fatal(err)
	}
	perIP := sc.PerIP
	if perIP == "" {
		perIP = "0"
	}
	level := sc.LogLevel
	if level == "" {
		level = "warn"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nadmin_listen: %q\n", s.pubAddr, s.admAddr)
	fmt.Fprintf(&b, "tls:\n  cert_file: %q\n  key_file: %q\n", f.certFile, f.keyFile)
	if sc.DatabaseURL != "" {
		fmt.Fprintf(&b, "database_url: %q\n", sc.DatabaseURL)
	}
	fmt.Fprintf(&b, "data_dir: %q\n", s.dataDir)
	fmt.Fprintf(&b, "applications:\n  - key: %s\n    secret_file: %q\n    default: true\n", f.appKey, f.secretFile)
	fmt.Fprintf(&b, "api_keys:\n  - name: load\n    sha256: %s\n    applications: [\"*\"]\n", servertest.KeyHash(f.apiKey))
	if sc.HS256IdP != "" {
		idpFile := filepath.Join(f.dir, name+"-idp-secret")
		writeFile(t, idpFile, sc.HS256IdP)
		fmt.Fprintf(&b, "identity_providers:\n  - issuer: %q\n    audience: %q\n    hs256_secret_file: %q\n", idpIssuer, idpAudience, idpFile)
	}
	fmt.Fprintf(&b, "rate_limits:\n  per_user: \"0\"\n  per_ip: %q\n  per_api_key: \"0\"\n", perIP)
	fmt.Fprintf(&b, "log:\n  format: json\n  level: %s\n", level)
	fmt.Fprintf(&b, "sequence:\n  clock_floor: %t\n", sc.ClockFloor)
	writeFile(t, s.cfgPath, b.String())
	t.Cleanup(func() {
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		if p != nil {
			p.Kill()
		}
		if t.Failed() {
			t.Logf("%s: last lines of %s:\n%s", s.name, s.logPath, tail(s.logPath, 30))
		}
	})
	return s
}

const (
	idpIssuer   = "https://idp.faults.test/"
	idpAudience = "faults"
)

func (s *server) url() string      { return "https://" + s.pubAddr }
func (s *server) adminURL() string { return "http://" + s.admAddr }

// start launches the process and waits until /readyz answers 200.
func (s *server) start() {
	s.t.Helper()
	s.launch()
	s.waitReady(30 * time.Second)
}

// launch starts the process without waiting for it to be ready.
func (s *server) launch() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.t.Fatalf("%s: already running", s.name)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== faults: starting %s at %s\n", s.name, time.Now().Format(time.RFC3339Nano))
	p, err := servertest.Launch(servertest.Options{
		Binary: servertest.Binary(s.t), Args: []string{"serve", "--config", s.cfgPath},
		Output: logf, Public: s.pubAddr, Admin: s.admAddr,
	})
	logf.Close() // the child holds its own copy
	if err != nil {
		s.t.Fatalf("%s: %v", s.name, err)
	}
	s.proc = p
}

func (s *server) waitReady(timeout time.Duration) {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if err := p.WaitReady(context.Background(), timeout); err != nil {
		s.t.Fatalf("%s: %v:\n%s", s.name, err, tail(s.logPath, 20))
	}
}

func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid()
}

// signal sends sig to the running process.
func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		s.t.Fatalf("%s: not running", s.name)
	}
	if err := p.Signal(sig); err != nil {
		s.t.Fatalf("%s: kill -%d %d: %v", s.name, sig, p.Pid(), err)
	}
}

// kill9 crashes the process and waits until it is gone.
func (s *server) kill9() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
	s.wait(10 * time.Second)
}

// wait waits for the process to exit and returns its exit error.
func (s *server) wait(timeout time.Duration) error {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.Done():
	case <-time.After(timeout):
		s.t.Fatalf("%s did not exit within %s", s.name, timeout)
	}
	s.mu.Lock()
	s.proc = nil
	s.mu.Unlock()
	return p.Err()
}

// exited reports whether the process has exited (crashed) on its own.
func (s *server) exited() bool {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	return p == nil || p.Exited()
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logCount counts the lines of the server's log containing sub.
func (s *server) logCount(sub string) int {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// scrape reads the admin listener's /metrics and returns the value of each
// series named (with its labels, as exposed).
func (s *server) scrape(names ...string) (map[string]float64, error) {
	text, err := servertest.Scrape(s.adminURL())
	if err != nil {
		return nil, err
	}
	return servertest.Samples(text, names...)
}

// readyStatus is the admin listener's /readyz status code (0 if unreachable).
func (s *server) readyStatus() int { return s.readyStatusOf("/readyz") }

// readyStatusOf is the status code of an admin path such as
// /readyz/sequence_store (0 if unreachable).
func (s *server) readyStatusOf(path string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.adminURL() + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// runCLI runs the authserver binary with args and returns its stdout.
func runCLI(t testing.TB, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, code, err := servertest.Run(servertest.Binary(t), nil, 30*time.Second, args...)
	if err == nil && code != 0 {
		err = fmt.Errorf("authserver %s: exit status %d: %s", args[0], code, strings.TrimSpace(stderr))
	}
	return stdout, err
}

// sleepCtx sleeps d or until done is closed.
func sleepOrDone(d time.Duration, done <-chan struct{}) {
	select {
	case <-time.After(d):
	case <-done:
	}
}
