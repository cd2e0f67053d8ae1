package main

// Tests of configuration hot reload (reload.go) on a real server: serve
// or run on free loopback ports, real TLS, real files, and once a real
// SIGHUP. Helpers are prefixed rl to stay out of the other tests' way.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/servertest"
	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

const rlApp = "reload-app"

func rlSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func rlSHA(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// rlWrite replaces a file atomically (write and rename), the way config
// management and Kubernetes do, so a poll never reads half a file.
func rlWrite(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// rlCfg is the test configuration, rendered to YAML.
type rlCfg struct {
	listen             string
	certFile, keyFile  string
	secretFile         string
	apiKeys            map[string]string // name -> key
	perUser, perAPIKey string
	idpSecretFile      string // HS256 identity provider when set
	dataDir            string
}

func (c rlCfg) yaml() string {
	var b strings.Builder
	listen := c.listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	fmt.Fprintf(&b, "listen: %q\nadmin_listen: \"127.0.0.1:0\"\ndata_dir: %q\n", listen, c.dataDir)
	fmt.Fprintf(&b, "log: {format: json, level: info}\n")
	fmt.Fprintf(&b, "tls: {cert_file: %q, key_file: %q}\n", c.certFile, c.keyFile)
	fmt.Fprintf(&b, "applications:\n  - key: %s\n    secret_file: %q\n", rlApp, c.secretFile)
	if len(c.apiKeys) > 0 {
		b.WriteString("api_keys:\n")
		for name, key := range c.apiKeys {
			fmt.Fprintf(&b, "  - {name: %s, sha256: %s, applications: [\"*\"]}\n", name, rlSHA(key))
		}
	}
	if c.idpSecretFile != "" {
		fmt.Fprintf(&b, "identity_providers:\n  - {issuer: \"https://idp.reload.test/\", audience: reload-client, hs256_secret_file: %q}\n", c.idpSecretFile)
	}
	perUser, perKey := c.perUser, c.perAPIKey
	if perUser == "" {
		perUser = "off"
	}
	if perKey == "" {
		perKey = "off"
	}
	fmt.Fprintf(&b, "rate_limits: {per_user: %q, per_ip: \"off\", per_api_key: %q}\n", perUser, perKey)
	return b.String()
}

// rlFixture is a temp dir with a certificate, a secret file and a config.
type rlFixture struct {
	dir     string
	cfgPath string
	cfg     rlCfg
	leaf    *x509.Certificate
	pool    *x509.CertPool
}

func newRLFixture(t *testing.T, secret string) *rlFixture {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, err := tlsutil.SelfSigned(filepath.Join(dir, "tls1"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := &rlFixture{dir: dir, cfgPath: filepath.Join(dir, "authserver.yaml"), pool: x509.NewCertPool()}
	f.leaf = f.trust(t, certFile)
	f.cfg = rlCfg{
		certFile: certFile, keyFile: keyFile,
		secretFile: filepath.Join(dir, "app-secret"),
		apiKeys:    map[string]string{"backend": "key-one"},
		dataDir:    filepath.Join(dir, "data"),
	}
	rlWrite(t, f.cfg.secretFile, secret+"\n")
	f.write(t)
	return f
}

// trust adds a PEM certificate to the client's roots and returns it.
func (f *rlFixture) trust(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	leaf, err := servertest.Certificate(certFile)
	if err != nil {
		t.Fatal(err)
	}
	f.pool.AddCert(leaf)
	return leaf
}

func (f *rlFixture) write(t *testing.T) { t.Helper(); rlWrite(t, f.cfgPath, f.cfg.yaml()) }

// rlServer is a running server under test.
type rlServer struct {
	pub, admin string // host:port
	log        *servertest.Buffer
	client     *http.Client
	pool       *x509.CertPool
	reloads    chan error     // one per reload attempt (serve only)
	signals    chan os.Signal // triggers a reload (serve with a test channel)
}

type rlOpts struct {
	pollEvery time.Duration
	realHUP   bool // subscribe to the process's SIGHUP instead of a test channel
}

// startRL runs serve on f's config, as runServe would, with test hooks.
func startRL(t *testing.T, f *rlFixture, o rlOpts) *rlServer {
	t.Helper()
	var getenv config.Env
	cfg, err := config.Load(f.cfgPath, getenv)
	if err != nil {
		t.Fatal(err)
	}
	s := &rlServer{log: &servertest.Buffer{}, pool: f.pool, reloads: make(chan error, 1000)}
	src := &app.Source{
		Load:      func() (*config.Config, error) { return config.Load(f.cfgPath, getenv) },
		File:      f.cfgPath,
		Getenv:    getenv,
		PollEvery: o.pollEvery,
		Done:      func(err error) { s.reloads <- err },
	}
	if !o.realHUP {
		s.signals = make(chan os.Signal, 1)
		src.Signals = s.signals
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- serve(ctx, cfg, s.log, func(p, a net.Addr) { addrs <- [2]net.Addr{p, a} }, src)
	}()
	select {
	case a := <-addrs:
		s.pub, s.admin = a[0].String(), a[1].String()
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v\n%s", err, s.log)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not return")
		}
	})
	s.client = s.newClient(true)
	// Runs before the server's cleanup: connections the client dialed but
	// never used would hold up http.Server.Shutdown for 5 s.
	t.Cleanup(s.client.CloseIdleConnections)
	return s
}

// startRLRun starts the real command, run serve --config, and finds its
// addresses in the log.
func startRLRun(t *testing.T, args []string) *rlServer {
	t.Helper()
	s := &rlServer{log: &servertest.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, args, nil, io.Discard, s.log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(15 * time.Second):
			t.Error("run did not return")
		}
	})
	var started []map[string]any
	err := servertest.Poll(15*time.Second, "authserver started", func() bool {
		started = s.log.Lines("authserver started")
		return len(started) > 0 || len(errc) > 0
	})
	if len(started) == 0 {
		t.Fatalf("run did not start (%v):\n%s", err, s.log)
	}
	s.pub, s.admin = started[0]["listen"].(string), started[0]["admin_listen"].(string)
	return s
}

func (s *rlServer) newClient(keepAlive bool) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: s.pool},
			DisableKeepAlives:   !keepAlive,
			MaxIdleConnsPerHost: 64,
		},
	}
}

// reload triggers one reload through the test channel and waits for it.
func (s *rlServer) reload(t *testing.T) error {
	t.Helper()
	s.signals <- syscall.SIGHUP
	return s.waitReload(t)
}

func (s *rlServer) waitReload(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.reloads:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("no reload happened")
		return nil
	}
}

// token asks for a registration JWT with an API key; it returns the status
// and, on 200, the token.
func (s *rlServer) token(t *testing.T, c *http.Client, hdr map[string]string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "https://"+s.pub+"/v1/registration-tokens", strings.NewReader(`{"userId":"alice"}`))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(body), nil
	}
	var out struct{ Token string }
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, out.Token, nil
}

// mustToken gets a token with the API key and fails the test otherwise.
func (s *rlServer) mustToken(t *testing.T, apiKey string) string {
	t.Helper()
	code, tok, err := s.token(t, s.client, map[string]string{"X-API-Key": apiKey})
	if err != nil || code != http.StatusOK {
		t.Fatalf("token with key %q: %d %v %s", apiKey, code, err, tok)
	}
	return tok
}

func (s *rlServer) status(t *testing.T, hdr map[string]string) int {
	t.Helper()
	code, _, err := s.token(t, s.client, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// reloadCount scrapes /metrics over HTTP for authserver_config_reload_total.
func (s *rlServer) reloadCount(t *testing.T, result string) int {
	t.Helper()
	text, err := servertest.Scrape("http://" + s.admin)
	if err != nil {
		t.Fatal(err)
	}
	series := `authserver_config_reload_total{result="` + result + `"}`
	v, err := servertest.Samples(text, series)
	if err != nil {
		t.Fatal(err)
	}
	return int(v[series])
}

// waitCount waits until the reload counter for result reaches n.
func (s *rlServer) waitCount(t *testing.T, result string, n int) {
	t.Helper()
	if err := servertest.Poll(20*time.Second, "reload counter", func() bool { return s.reloadCount(t, result) >= n }); err != nil {
		t.Fatalf("authserver_config_reload_total{result=%q} did not reach %d; log:\n%s", result, n, s.log)
	}
}

// signedBy reports whether tok verifies with secret alone.
func signedBy(tok, secret string) bool {
	_, err := signer.Verify(tok, signer.VerifyParams{
		ApplicationKey: rlApp, Secrets: []signer.Secret{signer.MustParseSecret(secret)}, Now: time.Now(),
	})
	return err == nil
}

// TestReloadSecretRotationUnderLoad rotates the application secret with a
// real SIGHUP while clients hammer the token endpoint: no request fails,
// tokens before the signal are signed with the old secret, tokens after the
// reload with the new one, and no client sees the old secret again once it
// saw the new one.
func TestReloadSecretRotationUnderLoad(t *testing.T) {
	// Not parallel: the SIGHUP goes to the whole test process, and only this
	// server subscribes to it while it runs.
	secretA, secretB := rlSecret(t), rlSecret(t)
	f := newRLFixture(t, secretA)
	s := startRL(t, f, rlOpts{pollEvery: -1, realHUP: true})

	type result struct {
		start, end time.Time
		code       int
		tok        string
		err        error
	}
	const workers = 8
	var stop atomic.Bool
	var done atomic.Int64 // requests finished
	results := make([][]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for !stop.Load() {
				r := result{start: time.Now()}
				r.code, r.tok, r.err = s.token(t, s.client, map[string]string{"X-API-Key": "key-one"})
				r.end = time.Now()
				results[w] = append(results[w], r)
				done.Add(1)
			}
		})
	}
	// Load on both sides of the reload: every worker busy, some requests done.
	waitRequests := func(n int64) {
		t.Helper()
		if err := servertest.Poll(20*time.Second, "requests", func() bool { return done.Load() >= n }); err != nil {
			stop.Store(true)
			t.Fatal(err)
		}
	}
	waitRequests(4 * workers)
	rlWrite(t, f.cfg.secretFile, secretB+"\n"+secretA+"\n")
	signalled := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReload(t); err != nil {
		t.Fatalf("reload: %v", err)
	}
	reloaded := time.Now()
	waitRequests(done.Load() + 4*workers)
	stop.Store(true)
	wg.Wait()

	var before, after, total int
	for w, rs := range results {
		sawB := false
		for i, r := range rs {
			total++
			if r.err != nil || r.code != http.StatusOK {
				t.Fatalf("worker %d request %d failed: %d %v %s", w, i, r.code, r.err, r.tok)
			}
			a, b := signedBy(r.tok, secretA), signedBy(r.tok, secretB)
			switch {
			case a == b:
				t.Fatalf("worker %d request %d: token verifies with A: %v, with B: %v", w, i, a, b)
			case r.end.Before(signalled) && !a:
				t.Fatalf("worker %d request %d finished before SIGHUP but is not signed with the old secret", w, i)
			case r.start.After(reloaded) && !b:
				t.Fatalf("worker %d request %d started after the reload but is not signed with the new secret", w, i)
			case sawB && a:
				t.Fatalf("worker %d request %d is signed with the old secret after one signed with the new", w, i)
			}
			sawB = sawB || b
			if r.end.Before(signalled) {
				before++
			}
			if r.start.After(reloaded) {
				after++
			}
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("want requests before and after the reload; got %d before, %d after of %d", before, after, total)
	}
	t.Logf("%d requests, %d before SIGHUP, %d after the reload, none failed", total, before, after)
	if n := s.reloadCount(t, "success"); n != 1 {
		t.Errorf("reload success counter = %d, want 1", n)
	}
	// The log is written in batches (logbuf, ≤ 50 ms): wait for the line.
	l := s.log.Lines("configuration reloaded")
	for deadline := time.Now().Add(5 * time.Second); len(l) == 0 && time.Now().Before(deadline); l = s.log.Lines("configuration reloaded") {
		time.Sleep(10 * time.Millisecond)
	}
	if len(l) != 1 || l[0]["trigger"] != "signal" ||
		!strings.Contains(l[0]["changed"].(string), "applications["+rlApp+"].secrets") {
		t.Errorf("want one reload log line naming the secrets; got %v", l)
	}
	if strings.Contains(s.log.String(), secretA) || strings.Contains(s.log.String(), secretB) {
		t.Error("the log contains a secret")
	}
}

// TestReloadInvalidKeepsRunning goes through the real command (run serve
// --config) and the file poller: a bad secret in the secret file is refused
// with one error line naming the key, the counter's error result goes up,
// and the old secret keeps signing; fixing the file reloads it.
func TestReloadInvalidKeepsRunning(t *testing.T) {
	t.Parallel()
	secretA, secretB := rlSecret(t), rlSecret(t)
	f := newRLFixture(t, secretA)
	s := startRLRun(t, []string{"serve", "--config", f.cfgPath})
	s.pool = f.pool
	s.client = s.newClient(true)
	t.Cleanup(s.client.CloseIdleConnections)
	if tok := s.mustToken(t, "key-one"); !signedBy(tok, secretA) {
		t.Fatal("first token is not signed with the configured secret")
	}
	if n := s.reloadCount(t, "error"); n != 0 {
		t.Fatalf("error counter = %d at start", n)
	}

	// A config file that does not parse is refused.
	good, err := os.ReadFile(f.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rlWrite(t, f.cfgPath, string(good)+"no_such_key: 1\n")
	s.waitCount(t, "error", 1)
	if tok := s.mustToken(t, "key-one"); !signedBy(tok, secretA) {
		t.Fatal("after a failed reload the token is not signed with the old secret")
	}
	rlWrite(t, f.cfgPath, string(good))
	s.waitCount(t, "success", 1)

	// A bad secret in the secret file is refused.
	const bad = "this-is-not-base64!!"
	rlWrite(t, f.cfg.secretFile, bad+"\n")
	s.waitCount(t, "error", 2)
	if tok := s.mustToken(t, "key-one"); !signedBy(tok, secretA) {
		t.Fatal("after a failed reload the token is not signed with the old secret")
	}
	// The poller does not retry an unchanged broken file every second.
	time.Sleep(2500 * time.Millisecond)
	if n := s.reloadCount(t, "error"); n != 2 {
		t.Errorf("error counter = %d after an unchanged broken file, want 2", n)
	}
	lines := s.log.Lines("configuration reload failed; keeping the running configuration")
	if len(lines) != 2 {
		t.Fatalf("want two error lines, got %d:\n%s", len(lines), s.log)
	}
	for i, key := range []string{"no_such_key", "applications[0].secret_file"} {
		l := lines[i]
		if l["level"] != "ERROR" || l["key"] != key || !strings.Contains(l["error"].(string), "config: "+key+": ") {
			t.Errorf("error line %d does not name the key %s: %v", i, key, l)
		}
	}
	if strings.Contains(s.log.String(), bad) || strings.Contains(s.log.String(), secretA) {
		t.Error("the log contains a secret value")
	}

	// Fixing the file reloads it.
	rlWrite(t, f.cfg.secretFile, secretB+"\n")
	s.waitCount(t, "success", 2)
	if tok := s.mustToken(t, "key-one"); !signedBy(tok, secretB) {
		t.Fatalf("the fixed secret file was not reloaded:\n%s", s.log)
	}
}

// TestReloadAPIKeys adds a key and revokes another.
func TestReloadAPIKeys(t *testing.T) {
	t.Parallel()
	f := newRLFixture(t, rlSecret(t))
	s := startRL(t, f, rlOpts{pollEvery: -1})
	if c := s.status(t, map[string]string{"X-API-Key": "key-one"}); c != http.StatusOK {
		t.Fatalf("key-one: %d", c)
	}
	if c := s.status(t, map[string]string{"X-API-Key": "key-two"}); c != http.StatusUnauthorized {
		t.Fatalf("key-two before it is configured: %d", c)
	}
	f.cfg.apiKeys = map[string]string{"backend": "key-one", "other": "key-two"}
	f.write(t)
	if err := s.reload(t); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"key-one", "key-two"} {
		if c := s.status(t, map[string]string{"X-API-Key": k}); c != http.StatusOK {
			t.Fatalf("%s after adding key-two: %d", k, c)
		}
	}
	f.cfg.apiKeys = map[string]string{"other": "key-two"}
	f.write(t)
	if err := s.reload(t); err != nil {
		t.Fatal(err)
	}
	if c := s.status(t, map[string]string{"X-API-Key": "key-one"}); c != http.StatusUnauthorized {
		t.Fatalf("revoked key-one: %d", c)
	}
	if c := s.status(t, map[string]string{"X-API-Key": "key-two"}); c != http.StatusOK {
		t.Fatalf("key-two: %d", c)
	}
	// An invalid key list is refused; the running keys stay.
	f.cfg.apiKeys = map[string]string{"other": "key-two", "broken": "x"}
	cfgText := strings.Replace(f.cfg.yaml(), rlSHA("x"), "not-hex", 1)
	rlWrite(t, f.cfgPath, cfgText)
	if err := s.reload(t); err == nil || !strings.Contains(err.Error(), ".sha256") {
		t.Fatalf("reload with a bad sha256: %v", err)
	}
	if c := s.status(t, map[string]string{"X-API-Key": "key-two"}); c != http.StatusOK {
		t.Fatalf("key-two after a failed reload: %d", c)
	}
	if n := s.reloadCount(t, "error"); n != 1 {
		t.Errorf("error counter = %d, want 1", n)
	}
	if n := s.reloadCount(t, "success"); n != 2 {
		t.Errorf("success counter = %d, want 2", n)
	}
}

// TestReloadRateLimits changes the per-API-key limit; an unchanged limit
// keeps its counters across a reload.
func TestReloadRateLimits(t *testing.T) {
	t.Parallel()
	f := newRLFixture(t, rlSecret(t))
	f.cfg.perAPIKey = "2/h"
	f.write(t)
	s := startRL(t, f, rlOpts{pollEvery: -1})
	key := map[string]string{"X-API-Key": "key-one"}
	for i := range 2 {
		if c := s.status(t, key); c != http.StatusOK {
			t.Fatalf("request %d within the limit: %d", i, c)
		}
	}
	if c := s.status(t, key); c != http.StatusTooManyRequests {
		t.Fatalf("request over the limit: %d", c)
	}
	// Another change, same limit: the budget is not reset by a reload.
	f.cfg.apiKeys = map[string]string{"backend": "key-one", "other": "key-two"}
	f.write(t)
	if err := s.reload(t); err != nil {
		t.Fatal(err)
	}
	if c := s.status(t, key); c != http.StatusTooManyRequests {
		t.Fatalf("over the unchanged limit after a reload: %d", c)
	}
	f.cfg.perAPIKey = "100/h"
	f.write(t)
	if err := s.reload(t); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if c := s.status(t, key); c != http.StatusOK {
			t.Fatalf("request %d under the raised limit: %d", i, c)
		}
	}
	f.cfg.perAPIKey = "1/h"
	f.write(t)
	if err := s.reload(t); err != nil {
		t.Fatal(err)
	}
	if c := s.status(t, key); c != http.StatusOK {
		t.Fatalf("first request under the lowered limit: %d", c)
	}
	if c := s.status(t, key); c != http.StatusTooManyRequests {
		t.Fatalf("second request under the lowered limit: %d", c)
	}
	rlWrite(t, f.cfgPath, strings.Replace(f.cfg.yaml(), `per_api_key: "1/h"`, `per_api_key: "1/fortnight"`, 1))
	if err := s.reload(t); err == nil || !strings.Contains(err.Error(), "rate_limits.per_api_key") {
		t.Fatalf("reload with a bad rate: %v", err)
	}
}

// TestReloadTLSCertificatePath points tls.cert_file/key_file at another
// pair: new handshakes get the new certificate, open connections keep
// working, and a broken pair is refused.
func TestReloadTLSCertificatePath(t *testing.T) {
	t.Parallel()
	f := newRLFixture(t, rlSecret(t))
	cert2, key2, err := tlsutil.SelfSigned(filepath.Join(f.dir, "tls2"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf2 := f.trust(t, cert2)
	s := startRL(t, f, rlOpts{pollEvery: -1})

	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", s.pub, &tls.Config{RootCAs: f.pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	if !served().Equal(f.leaf) {
		t.Fatal("the server does not serve the configured certificate")
	}
	s.mustToken(t, "key-one") // opens a kept-alive connection with the first certificate

	cert1, key1 := f.cfg.certFile, f.cfg.keyFile
	f.cfg.certFile, f.cfg.keyFile = cert2, key2
	f.write(t)
	if err := s.reload(t); err != nil {
		t.Fatal(err)
	}
	if !served().Equal(leaf2) {
		t.Fatal("new handshakes do not get the new certificate")
	}
	s.mustToken(t, "key-one")

	// A certificate with another certificate's key: refused, pair 2 stays.
	f.cfg.certFile, f.cfg.keyFile = cert1, key2
	f.write(t)
	err = s.reload(t)
	if err == nil || config.KeyOf(err) != "tls" {
		t.Fatalf("reload with a mismatched pair: %v", err)
	}
	// A missing file: refused by validation.
	f.cfg.certFile, f.cfg.keyFile = filepath.Join(f.dir, "nope.pem"), key1
	f.write(t)
	if err := s.reload(t); err == nil || config.KeyOf(err) != "tls.cert_file" {
		t.Fatalf("reload with a missing certificate: %v", err)
	}
	if !served().Equal(leaf2) {
		t.Fatal("a failed reload changed the certificate")
	}
	if n := s.reloadCount(t, "error"); n != 2 {
		t.Errorf("error counter = %d, want 2", n)
	}
	// And back to the first pair.
	f.cfg.certFile, f.cfg.keyFile = cert1, key1
	f.write(t)
	if err := s.reload(t); err != nil {
		t.Fatal(err)
	}
	if !served().Equal(f.leaf) {
		t.Fatal("new handshakes do not get the first certificate back")
	}
}

// TestReloadIdentityProviders adds an HS256 identity provider, then
// rotates its secret file, which the poller notices on its own.
func TestReloadIdentityProviders(t *testing.T) {
	t.Parallel()
	f := newRLFixture(t, rlSecret(t))
	s := startRL(t, f, rlOpts{pollEvery: 50 * time.Millisecond})
	idp1, idp2 := rlSecret(t), rlSecret(t)
	bearer := func(secret string) map[string]string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": "https://idp.reload.test/", "aud": "reload-client", "sub": "alice",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"Authorization": "Bearer " + tok}
	}
	if c := s.status(t, bearer(idp1)); c != http.StatusUnauthorized {
		t.Fatalf("bearer token without identity providers: %d", c)
	}
	f.cfg.idpSecretFile = filepath.Join(f.dir, "idp-secret")
	rlWrite(t, f.cfg.idpSecretFile, idp1+"\n")
	f.write(t)
	if err := s.waitReload(t); err != nil {
		t.Fatal(err)
	}
	if c := s.status(t, bearer(idp1)); c != http.StatusOK {
		t.Fatalf("bearer token from the added provider: %d", c)
	}
	rlWrite(t, f.cfg.idpSecretFile, idp2+"\n")
	if err := s.waitReload(t); err != nil {
		t.Fatal(err)
	}
	if c := s.status(t, bearer(idp1)); c != http.StatusUnauthorized {
		t.Fatalf("bearer token with the rotated-out provider secret: %d", c)
	}
	if c := s.status(t, bearer(idp2)); c != http.StatusOK {
		t.Fatalf("bearer token with the new provider secret: %d", c)
	}
	// A provider whose keys cannot be loaded is refused: the running
	// providers keep working.
	broken := strings.Replace(f.cfg.yaml(), "identity_providers:\n",
		"identity_providers:\n  - {issuer: \"https://idp.down.test/\", audience: x, jwks_url: \"http://127.0.0.1:1/jwks\"}\n", 1)
	rlWrite(t, f.cfgPath, broken)
	if err := s.waitReload(t); err == nil || config.KeyOf(err) != "identity_providers" || !strings.Contains(err.Error(), "https://idp.down.test/") {
		t.Fatalf("reload with an unreachable provider: %v", err)
	}
	if c := s.status(t, bearer(idp2)); c != http.StatusOK {
		t.Fatalf("bearer token after a refused reload: %d", c)
	}
	f.cfg.idpSecretFile = ""
	f.write(t)
	if err := s.waitReload(t); err != nil {
		t.Fatal(err)
	}
	if c := s.status(t, bearer(idp2)); c != http.StatusUnauthorized {
		t.Fatalf("bearer token after the provider was removed: %d", c)
	}
	if c := s.status(t, map[string]string{"X-API-Key": "key-one"}); c != http.StatusOK {
		t.Fatalf("API key: %d", c)
	}
	select {
	case err := <-s.reloads:
		t.Fatalf("unexpected extra reload: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestReloadRestartOnlyKeys changes listen with an API key: the key takes
// effect, listen is kept with a warning naming it.
func TestReloadRestartOnlyKeys(t *testing.T) {
	t.Parallel()
	f := newRLFixture(t, rlSecret(t))
	s := startRL(t, f, rlOpts{pollEvery: -1})
	f.cfg.listen = "127.0.0.1:1"
	f.cfg.dataDir = filepath.Join(f.dir, "elsewhere")
	f.cfg.apiKeys = map[string]string{"backend": "key-one", "other": "key-two"}
	f.write(t)
	if err := s.reload(t); err != nil {
		t.Fatal(err)
	}
	if c := s.status(t, map[string]string{"X-API-Key": "key-two"}); c != http.StatusOK {
		t.Fatalf("key-two on the running listener: %d", c)
	}
	var keys []string
	for _, l := range s.log.Lines("configuration change needs a restart to take effect; the running value is kept") {
		if l["level"] != "WARN" {
			t.Errorf("restart line is not a warning: %v", l)
		}
		keys = append(keys, l["key"].(string))
	}
	if strings.Join(keys, ",") != "listen,data_dir" {
		t.Errorf("restart warnings name %v, want listen and data_dir", keys)
	}
}

// TestReloadDevSecretFile: `authserver dev` reloads its secret file.
func TestReloadDevSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startRLRun(t, []string{"dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json"})
	s.pool = x509.NewCertPool()
	pem, err := os.ReadFile(filepath.Join(dir, "dev-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s.pool.AppendCertsFromPEM(pem)
	s.client = s.newClient(true)
	t.Cleanup(s.client.CloseIdleConnections)
	tokenApp := func() string {
		code, tok, err := s.token(t, s.client, map[string]string{"X-API-Key": devAPIKey})
		if err != nil || code != http.StatusOK {
			t.Fatalf("dev token: %d %v %s", code, err, tok)
		}
		return tok
	}
	verifies := func(tok, secret string) bool {
		_, err := signer.Verify(tok, signer.VerifyParams{ApplicationKey: devAppKey, Secrets: []signer.Secret{signer.MustParseSecret(secret)}, Now: time.Now()})
		return err == nil
	}
	old, err := os.ReadFile(filepath.Join(dir, "dev-app-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if !verifies(tokenApp(), strings.TrimSpace(string(old))) {
		t.Fatal("dev token does not verify with the dev secret")
	}
	secret := rlSecret(t)
	rlWrite(t, filepath.Join(dir, "dev-app-secret"), secret+"\n")
	s.waitCount(t, "success", 1)
	if !verifies(tokenApp(), secret) {
		t.Fatal("dev did not reload its secret file")
	}
}

// TestIdentityTokenCacheFollowsKeyRemoval: verified identity tokens are
// cached until they expire, but not past the refresh that removes their key
// from the provider's key set (here the refresh an unknown kid triggers).
func TestIdentityTokenCacheFollowsKeyRemoval(t *testing.T) {
	t.Parallel()
	idp := oidctest.New(t)
	f := newRLFixture(t, rlSecret(t))
	rlWrite(t, f.cfgPath, strings.Replace(f.cfg.yaml(), "rate_limits:",
		fmt.Sprintf("identity_providers:\n  - {issuer: %q, audience: reload-client, jwks_url: %q}\nrate_limits:", idp.Issuer(), idp.JWKSURL()), 1))
	s := startRL(t, f, rlOpts{pollEvery: -1})
	bearer := func() map[string]string {
		return map[string]string{"Authorization": "Bearer " + idp.Sign("RS256", idp.Claims("alice", "reload-client", time.Now()))}
	}
	old := bearer()
	if c := s.status(t, old); c != http.StatusOK {
		t.Fatalf("identity token: %d\n%s", c, s.log)
	}
	idp.Rotate() // the old key is gone from the provider's key set
	if c := s.status(t, old); c != http.StatusOK {
		t.Fatalf("identity token before authserver refreshed the key set: %d", c)
	}
	if c := s.status(t, bearer()); c != http.StatusOK { // unknown kid: refresh
		t.Fatalf("identity token signed with the new key: %d", c)
	}
	if c := s.status(t, old); c != http.StatusUnauthorized {
		t.Fatalf("cached identity token whose key the refresh removed: %d, want 401", c)
	}
}
