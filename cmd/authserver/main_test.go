package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/internal/servertest"
)

// TestMain closes the PostgreSQL cluster the tests share (pgtest.DB).
func TestMain(m *testing.M) { pgtest.Main(m) }

// envOf returns an environment that holds only m: tests never read the
// real environment.
func envOf(m map[string]string) config.Env { return config.Env(m) }

// runningCmd is `run` started in the background.
type runningCmd struct {
	stdout, stderr *servertest.Buffer
	cancel         context.CancelFunc
	done           chan struct{}
	err            error // valid after done is closed
	exited         atomic.Bool
}

func startRun(t *testing.T, args []string, getenv config.Env) *runningCmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningCmd{stdout: &servertest.Buffer{}, stderr: &servertest.Buffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rc.done)
		rc.err = run(ctx, args, getenv, rc.stdout, rc.stderr)
		rc.exited.Store(true)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rc.done:
		case <-time.After(15 * time.Second):
			t.Errorf("run %v did not return 15 s after its context ended", args)
		}
	})
	return rc
}

// stop ends the run's context and returns run's result.
func (rc *runningCmd) stop(t *testing.T) error {
	t.Helper()
	rc.cancel()
	select {
	case <-rc.done:
		return rc.err
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return 15 s after its context ended")
		return nil
	}
}

// waitOutput polls buf until re matches and returns the submatches; it fails
// the test if the run ends first or nothing matches within 15 s.
func (rc *runningCmd) waitOutput(t *testing.T, buf *servertest.Buffer, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	err := servertest.Poll(15*time.Second, "output "+re.String(), func() bool {
		m = re.FindStringSubmatch(buf.String())
		return m != nil || rc.exited.Load()
	})
	if m == nil {
		t.Fatalf("no %s (run ended: %v, err=%v; %v)\nstdout:\n%s\nstderr:\n%s", re, rc.exited.Load(), rc.err, err, rc.stdout, rc.stderr)
	}
	return m
}

// server is a running serve or dev, as a client sees it.
type server struct {
	rc        *runningCmd
	publicURL string // https://127.0.0.1:port
	adminURL  string // http://127.0.0.1:port
	certFile  string
	roots     *x509.CertPool
	client    *http.Client
}

func newServer(t *testing.T, rc *runningCmd, publicURL, adminURL, certFile string) *server {
	t.Helper()
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", certFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections) // before the run's cleanup (LIFO)
	return &server{rc: rc, publicURL: publicURL, adminURL: adminURL, certFile: certFile, roots: roots,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// The parts of the dev banner the tests read: the listeners' URLs and the
// demo identity token.
var (
	devPublicRe  = regexp.MustCompile(`public API\s+(https://\S+)\s+\(self-signed certificate: (\S+)\)`)
	devAdminRe   = regexp.MustCompile(`admin\s+http://(\S+)/metrics`)
	devIDTokenRe = regexp.MustCompile(`(?s)demo\s+identity token for user (\S+) .*?\n\n  (\S+)\n`)
)

// startDev runs `authserver dev` on free loopback ports in its own data dir
// and returns once it printed its URLs.
func startDev(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	return startDevEnv(t, dataDir, nil, extra...)
}

// startDevEnv is startDev with environment variables.
func startDevEnv(t *testing.T, dataDir string, env map[string]string, extra ...string) *server {
	t.Helper()
	args := append([]string{"dev", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
	rc := startRun(t, args, envOf(env))
	pub := rc.waitOutput(t, rc.stdout, devPublicRe)
	adm := rc.waitOutput(t, rc.stdout, devAdminRe)
	return newServer(t, rc, pub[1], "http://"+adm[1], pub[2])
}

// post sends a JSON body to the public API.
func (s *server) post(t *testing.T, path string, hdr map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.publicURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return s.do(t, req)
}

func (s *server) get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.do(t, req)
}

func (s *server) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// --- The credential formats, computed here from DESIGN.md alone (not with
// internal/signer), so the tests check the implementation against the spec.

// wantToken builds a registration JWT: header {"alg":"HS256","kid":"hkdfv1-
// YYYYMMDD"} (UTC date of iat), claims as sorted compact JSON, signed with
// HMAC-SHA256 under HMAC-SHA256(base64-decode(secret), "YYYYMMDD").
func wantToken(t *testing.T, appKey, secretB64, user, nonce string, iat time.Time, ttl, instTTL time.Duration) string {
	t.Helper()
	date := iat.UTC().Format("20060102")
	header := `{"alg":"HS256","kid":"hkdfv1-` + date + `"}`
	iss := "//rtc.sinch.com/applications/" + appKey
	claims := map[string]any{
		"exp":   iat.Unix() + int64(ttl/time.Second),
		"iat":   iat.Unix(),
		"iss":   iss,
		"nonce": nonce,
		"sub":   iss + "/users/" + user,
	}
	if instTTL > 0 {
		claims["sinch:rtc:instance:exp"] = iat.Unix() + int64(instTTL/time.Second)
	}
	cj, err := json.Marshal(claims) // maps marshal with sorted keys, compact
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(cj)
	return input + "." + enc.EncodeToString(jwtMAC(t, secretB64, date, input))
}

func jwtMAC(t *testing.T, secretB64, date, input string) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(secretB64)
	if err != nil {
		t.Fatal(err)
	}
	k := hmac.New(sha256.New, raw)
	k.Write([]byte(date))
	mac := hmac.New(sha256.New, k.Sum(nil))
	mac.Write([]byte(input))
	return mac.Sum(nil)
}

// checkJWT checks a token issued at an unknown time with an unknown nonce:
// exact header bytes, claims, and the signature recomputed independently.
// It returns the claims.
func checkJWT(t *testing.T, tok, appKey, secretB64, user string, ttl time.Duration) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q: %d parts", tok, len(parts))
	}
	enc := base64.RawURLEncoding
	hb, err := enc.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	cb, err := enc.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("claims: %v", err)
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(cb))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	iatN, _ := claims["iat"].(json.Number).Int64()
	expN, _ := claims["exp"].(json.Number).Int64()
	iat := time.Unix(iatN, 0)
	if d := time.Since(iat); d < -5*time.Second || d > time.Minute {
		t.Errorf("iat %v is not now", iat)
	}
	if got := time.Duration(expN-iatN) * time.Second; got != ttl {
		t.Errorf("exp - iat = %v, want %v", got, ttl)
	}
	nonce, _ := claims["nonce"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(nonce) {
		t.Errorf("nonce %q is not a UUIDv4", nonce)
	}
	// Rebuilding the whole token from iat and nonce checks header bytes,
	// claim bytes and signature at once.
	if want := wantToken(t, appKey, secretB64, user, nonce, iat, ttl, 0); tok != want {
		t.Errorf("token differs from the one built from DESIGN.md\n got header %s claims %s\nwant %s", hb, cb, want)
	}
	return claims
}

// wantSignature is Base64(SHA1(userId + appKey + decimal(seq) + secret text)).
func wantSignature(appKey, secretB64, user string, seq uint64) string {
	sum := sha1.Sum([]byte(user + appKey + strconv.FormatUint(seq, 10) + secretB64))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func readSecret(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// oneLineErr fails unless err is non-nil, one line, and contains every want.
func oneLineErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %q", want)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}
