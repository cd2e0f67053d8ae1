//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// binPath is the authserver binary TestMain builds once for every test.
var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "authserver-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "authserver")
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults: the go command is needed to build authserver:", err)
		os.Exit(1)
	}
	start := time.Now()
	cmd := exec.Command(goBin, "build", "-o", binPath, "github.com/authserver-dev/authserver/cmd/authserver")
	out, err := cmd.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: go build of cmd/authserver failed: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Printf("faults: built %s in %s\n", binPath, time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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
		apiKey: "faults-" + randHex(16),
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
	b, err := os.ReadFile(certFile)
	if err != nil {
		f.t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		f.t.Fatalf("%s: no PEM block", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		f.t.Fatal(err)
	}
	f.roots.AddCert(c)
	return c
}

func newSecretText() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

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
	tmp := path + ".tmp-" + randHex(4)
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
	cfgPath string
	dataDir string
	logPath string
	pubAddr string
	admAddr string

	mu   sync.Mutex
	proc *proc // nil when not started
}

type proc struct {
	pid  int
	done chan struct{} // closed once exited and reaped
	err  error         // exit status, valid after done
}

// newServer writes a config for a server with its own free ports; start it
// with start.
func (f *fixture) newServer(name string, sc serverConfig) *server {
	t := f.t
	t.Helper()
	s := &server{
		t: t, f: f, name: name,
		cfgPath: filepath.Join(f.dir, name+".yaml"),
		dataDir: filepath.Join(f.dir, name+"-data"),
		logPath: filepath.Join(f.dir, name+".log"),
		pubAddr: freeAddr(t), admAddr: freeAddr(t),
	}
	sum := sha256.Sum256([]byte(f.apiKey))
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
	fmt.Fprintf(&b, "api_keys:\n  - name: load\n    sha256: %s\n    applications: [\"*\"]\n", hex.EncodeToString(sum[:]))
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
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			<-p.done
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

// freeAddr returns a loopback address with a port that was free a moment
// ago. Ports are fixed per server so that a restarted server is found at
// the same address.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

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
	cmd := exec.Command(binPath, "serve", "--config", s.cfgPath)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies takes its servers with it. It
	// fires when the starting thread exits, so start and wait on one
	// locked thread that lives as long as the child (as pgtest does).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &proc{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	err = <-started
	logf.Close()
	if err != nil {
		s.t.Fatalf("%s: starting %s: %v", s.name, binPath, err)
	}
	p.pid = cmd.Process.Pid
	s.proc = p
}

func (s *server) waitReady(timeout time.Duration) {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(s.adminURL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			s.t.Fatalf("%s exited during start-up (%v):\n%s", s.name, p.err, tail(s.logPath, 20))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not ready after %s (last: %v):\n%s", s.name, timeout, err, tail(s.logPath, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.pid
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
	if err := syscall.Kill(p.pid, sig); err != nil {
		s.t.Fatalf("%s: kill -%d %d: %v", s.name, sig, p.pid, err)
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
	case <-p.done:
	case <-time.After(timeout):
		s.t.Fatalf("%s did not exit within %s", s.name, timeout)
	}
	s.mu.Lock()
	s.proc = nil
	s.mu.Unlock()
	return p.err
}

// exited reports whether the process has exited (crashed) on its own.
func (s *server) exited() bool {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cleanEnv is the test's environment without AUTHSERVER_* variables, which
// would override the generated config.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHSERVER_") {
			env = append(env, kv)
		}
	}
	return env
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

// logContains counts the lines of the server's log containing s.
func (s *server) logCount(sub string) int {
	f, err := os.Open(s.logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(sub)) {
			n++
		}
	}
	return n
}

// scrape reads the admin listener's /metrics and returns the value of the
// first sample whose line starts with name (name may include labels).
func (s *server) scrape(names ...string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.adminURL() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if strings.HasPrefix(line, n+" ") {
				v, err := strconv.ParseFloat(strings.TrimSpace(line[len(n):]), 64)
				if err == nil {
					out[n] = v
				}
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("/metrics has no %s", n)
		}
	}
	return out, sc.Err()
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

// tlsConfig is the clients' TLS configuration: the fixture's roots only.
func (f *fixture) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: f.roots, MinVersion: tls.VersionTLS12}
}

// newClient returns a client with its own keep-alive transport: one
// connection per client, HTTP/1.1.
func (f *fixture) newClient() *http.Client { return f.newClientFrom("") }

// newClientFrom is newClient connecting from the local address ip (any of
// 127.0.0.0/8 on Linux), so that the server sees another client address;
// "" lets the system choose.
func (f *fixture) newClientFrom(ip string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     f.tlsConfig(),
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     60 * time.Second,
			DialContext:         d.DialContext,
		},
	}
}

// runCLI runs the authserver binary with args and returns its stdout.
func runCLI(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("authserver %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// sleepCtx sleeps d or until done is closed.
func sleepOrDone(d time.Duration, done <-chan struct{}) {
	select {
	case <-time.After(d):
	case <-done:
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// drain reads and discards up to 1 MiB.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 1<<20)) }
