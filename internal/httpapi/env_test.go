package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	authserver "github.com/authserver-dev/authserver"
	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/core"
	"github.com/authserver-dev/authserver/internal/httpapi"
	"github.com/authserver-dev/authserver/internal/metrics"
	"github.com/authserver-dev/authserver/internal/servertest"
	"github.com/authserver-dev/authserver/internal/signer"
)

// The applications, keys and providers every test server is configured with.
const (
	// appA is the default application; its secret is inline (dev config).
	appA    = "196087a1-e815-4bc4-8984-60d8d8a43f1d"
	secretA = "oYdgGRXoxEuJhGDY2KQ/HQ=="
	// appB is a second application; its secret comes from a file.
	appB    = "app-b"
	secretB = "c2Vjb25kLWFwcGxpY2F0aW9uLXNlY3JldA=="
	// appNoSig has legacy signatures switched off.
	appNoSig = "app-nosig"
	secretC  = "dGhpcmQtYXBwLXNlY3JldC1ub3NpZw=="

	// apiKeyAll may use every application; apiKeyB only appB.
	apiKeyAll = "ak-all-5b0c1f7e9d2a4c3b8e6f0a1d2c3b4a59"
	apiKeyB   = "ak-bonly-8e2d4c6b0a1f3e5d7c9b1a3f5e7d9c1b"

	// audience is what identity tokens must be issued for.
	audience = "authserver-test"
	// hsIssuer is an HS256 (shared secret) provider scoped to appB only.
	hsIssuer = "internal-hs256"
	hsSecret = "hs256-shared-secret-0123456789abcdef-not-for-prod"
	hsEnv    = "TEST_HS256_SECRET"
)

// testNow is the fixed clock of the signer and the token verifier: one second
// before midnight UTC, where a kid taken from a second clock reading would
// show the wrong date.
var testNow = time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func ptr[T any](v T) *T { return &v }

// The in-test OpenID Connect provider is shared by the whole package:
// generating its RSA key is the slowest part of a test server.
var (
	idpOnce     sync.Once
	idpInstance *oidctest.Provider
)

func sharedIDP() *oidctest.Provider {
	idpOnce.Do(func() { idpInstance = oidctest.NewServer() })
	return idpInstance
}

func TestMain(m *testing.M) {
	code := m.Run()
	if idpInstance != nil {
		idpInstance.Close()
	}
	os.Exit(code)
}

// envOpts changes the test server; the zero value is the usual one.
type envOpts struct {
	now            time.Time // signer and verifier clock; zero: testNow
	perUser        string    // rate limits; empty: "off"
	perIP          string
	perAPIKey      string
	perIPFailed    string // rate_limits.per_ip_failed_auth
	trustedProxies []string
	corsOrigins    []string
	store          core.SequenceStore // nil: a fresh memStore
	checks         []httpapi.Check
	discardLogs    bool // fuzzing and benchmarks: do not keep log lines
	tokenCacheSize int  // auth.VerifierOptions.TokenCacheSize: 0 default, -1 off
	pprof          bool
	// extraApps, extraKeys and extraIdPs configure that many more
	// applications, API keys and (HS256) identity providers, ahead of the
	// usual ones: the "flat as the work grows" benchmarks.
	extraApps, extraKeys, extraIdPs int
}

// env is one running authserver: a real *httpapi.Server behind a real TLS
// listener, with its metrics, logs and sequence store at hand.
type env struct {
	tb     testing.TB
	now    time.Time
	cfg    *config.Config
	srv    *httpapi.Server
	public http.Handler
	m      *metrics.Metrics
	logs   *servertest.Buffer
	store  *memStore // nil when envOpts.store was set
	idp    *oidctest.Provider
	ts     *httptest.Server
	client *http.Client
	busy   *inflight
}

func newEnv(tb testing.TB, o envOpts) *env {
	tb.Helper()
	e := &env{tb: tb, now: o.now, logs: &servertest.Buffer{}, idp: sharedIDP(), busy: newInflight()}
	if e.now.IsZero() {
		e.now = testNow
	}
	e.cfg = mustConfig(tb, e.idp, o)

	var logOut io.Writer = e.logs
	if o.discardLogs {
		logOut = io.Discard
	}
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := func() time.Time { return e.now }

	store := o.store
	if store == nil {
		e.store = newMemStore()
		store = e.store
	}
	// The serve command's wiring; the limiters keep the wall clock.
	b := &app.Builder{
		Signer: signer.New(clock, rand.Reader), Store: store, Logger: logger,
		Verifier: auth.VerifierOptions{Now: clock, TokenCacheSize: o.tokenCacheSize},
	}
	snap := mustBuild(tb, b, e.cfg)
	e.m = metrics.New(metrics.BuildInfo{Version: "test", Revision: "deadbeef"})
	e.srv = httpapi.New(httpapi.Options{
		State:          snap.State,
		TrustedProxies: e.cfg.Proxies,
		Metrics:        e.m,
		Logger:         logger,
		Records:        logOut,
		Checks:         o.checks,
		Pprof:          o.pprof,
		Spec:           []byte(authserver.OpenAPI),
	})
	e.public = e.srv.Public()
	e.ts = httptest.NewUnstartedServer(e.busy.wrap(e.public))
	e.ts.StartTLS()
	tb.Cleanup(e.ts.Close)
	e.client = e.ts.Client()
	return e
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

// mustConfig builds the configuration in Go and resolves it as the loader
// would: appA's secret inline (allowed by Dev), appB's from a file.
func mustConfig(tb testing.TB, idp *oidctest.Provider, o envOpts) *config.Config {
	tb.Helper()
	secretFile := filepath.Join(tb.TempDir(), "app-b.secret")
	if err := os.WriteFile(secretFile, []byte("# newest first\n"+secretB+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Dev = true
	cfg.Applications = []config.Application{
		{Key: appA, Secret: secretA, Default: true, MaxTokenTTL: time.Hour},
		{Key: appB, SecretFile: secretFile},
		{Key: appNoSig, Secret: secretC, LegacySignatures: ptr(false)},
	}
	cfg.APIKeys = []config.APIKey{
		{Name: "backend", SHA256: sha256Hex(apiKeyAll), Applications: []string{"*"}},
		{Name: "backend-b", SHA256: sha256Hex(apiKeyB), Applications: []string{appB}},
	}
	cfg.IdentityProviders = []config.IdentityProvider{
		{Issuer: idp.Issuer(), Audience: audience},
		{Issuer: hsIssuer, HS256SecretEnv: hsEnv, Audience: audience, Applications: []string{appB}},
	}
	cfg.RateLimits = config.RateLimits{PerUser: orOff(o.perUser), PerIP: orOff(o.perIP), PerAPIKey: orOff(o.perAPIKey), PerIPFailedAuth: orOff(o.perIPFailed)}
	var apps []config.Application
	for i := range o.extraApps {
		apps = append(apps, config.Application{Key: fmt.Sprintf("extra-app-%d", i), Secret: secretA})
	}
	cfg.Applications = append(apps, cfg.Applications...)
	var keys []config.APIKey
	for i := range o.extraKeys {
		keys = append(keys, config.APIKey{Name: fmt.Sprintf("extra-key-%d", i), SHA256: sha256Hex(fmt.Sprintf("extra-key-%d", i)), Applications: []string{"*"}})
	}
	cfg.APIKeys = append(keys, cfg.APIKeys...)
	var idps []config.IdentityProvider
	for i := range o.extraIdPs {
		idps = append(idps, config.IdentityProvider{Issuer: fmt.Sprintf("https://extra-%d.test/", i), HS256SecretEnv: hsEnv, Audience: audience})
	}
	cfg.IdentityProviders = append(idps, cfg.IdentityProviders...)
	cfg.TrustedProxies = o.trustedProxies
	cfg.CORS.AllowedOrigins = o.corsOrigins
	getenv := func(k string) string {
		if k == hsEnv {
			return hsSecret
		}
		return ""
	}
	if err := cfg.Resolve(getenv); err != nil {
		tb.Fatalf("config: %v", err)
	}
	return &cfg
}

// mustBuild builds cfg's snapshot as the serve command does, with its
// identity providers' keys loaded.
func mustBuild(tb testing.TB, b *app.Builder, cfg *config.Config) *app.Snapshot {
	tb.Helper()
	snap, err := b.Build(context.Background(), cfg, nil)
	if err != nil {
		tb.Fatalf("Build: %v", err)
	}
	if v := snap.Verifier; v != nil {
		tb.Cleanup(v.Close)
		if err := v.Ready(); err != nil {
			tb.Fatalf("verifier not ready: %v", err)
		}
	}
	return snap
}

// withVerifier is the server's state with another identity-token verifier
// (nil: none, as for a config without identity_providers).
func withVerifier(e *env, v httpapi.TokenVerifier) *httpapi.State {
	st := *e.srv.State()
	st.Verifier = v
	return &st
}

// userToken is an identity token from the shared provider for subject.
func (e *env) userToken(alg, subject string) string {
	return e.idp.Sign(alg, e.idp.Claims(subject, audience, e.now))
}

// hsToken is an identity token from the HS256 provider (scoped to appB).
func (e *env) hsToken(tb testing.TB, subject string) string {
	tb.Helper()
	claims := jwt.MapClaims{
		"iss": hsIssuer, "sub": subject, "aud": audience,
		"iat": e.now.Unix(), "exp": e.now.Add(10 * time.Minute).Unix(),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(hsSecret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// req describes one request to the public listener.
type req struct {
	method      string // default POST
	path        string // default /v1/registration-tokens
	body        string
	bodyReader  io.Reader // instead of body: a body of unknown length
	contentType string    // default application/json when there is a body
	apiKey      string
	bearer      string // sent as "Authorization: Bearer <bearer>"
	authz       string // a raw Authorization header
	header      http.Header
}

// res is a response with its body read.
type res struct {
	status int
	header http.Header
	body   []byte
}

func (r res) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends r to the TLS listener, checks the response against the contract
// (checkResponse) and waits until the server has finished the request, so
// its log lines and metrics are complete.
func (e *env) do(tb testing.TB, r req) res {
	tb.Helper()
	hr := e.newRequest(tb, e.ts.URL, r)
	return e.send(tb, e.client, hr)
}

func (e *env) newRequest(tb testing.TB, base string, r req) *http.Request {
	tb.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/v1/registration-tokens"
	}
	body := r.bodyReader
	if body == nil && r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if r.bodyReader != nil {
		hr.ContentLength = -1 // chunked: the size is not known up front
	}
	if body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.apiKey != "" {
		hr.Header.Set("X-API-Key", r.apiKey)
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.authz != "" {
		hr.Header.Set("Authorization", r.authz)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	return hr
}

func (e *env) send(tb testing.TB, c *http.Client, hr *http.Request) res {
	tb.Helper()
	resp, err := c.Do(hr)
	if err != nil {
		tb.Fatalf("%s %s: %v", hr.Method, hr.URL.Path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", hr.Method, hr.URL.Path, err)
	}
	e.busy.wait()
	checkResponse(tb, hr, resp, body)
	return res{status: resp.StatusCode, header: resp.Header, body: body}
}

// doAdmin sends a GET to the admin handler served over plain HTTP.
func doAdmin(tb testing.TB, e *env, ts *httptest.Server, path string) res {
	tb.Helper()
	hr, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return e.send(tb, ts.Client(), hr)
}

// token asks for a registration token with the API key and body.
func (e *env) token(tb testing.TB, body string) res {
	tb.Helper()
	return e.do(tb, req{apiKey: apiKeyAll, body: body})
}

// mustStatus fails the test unless r has the status.
func mustStatus(tb testing.TB, r res, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// mustProblem checks that r is the problem+json answer status with type
// urn:authserver:problem:<slug> and returns it.
func mustProblem(tb testing.TB, r res, status int, slug string) httpapi.Problem {
	tb.Helper()
	mustStatus(tb, r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", r.body, err)
	}
	if want := httpapi.ProblemTypeBase + slug; p.Type != want {
		tb.Errorf("type %q, want %q (detail %q)", p.Type, want, p.Detail)
	}
	if p.Status != r.status {
		tb.Errorf("status field %d, HTTP status %d", p.Status, r.status)
	}
	if p.Title == "" {
		tb.Errorf("empty title")
	}
	if p.RequestID == "" || p.RequestID != r.header.Get("X-Request-Id") {
		tb.Errorf("requestId %q, X-Request-Id %q", p.RequestID, r.header.Get("X-Request-Id"))
	}
	return p
}

// logLines returns the decoded log lines, those of one request when id is
// not empty.
func (e *env) logLines(tb testing.TB, id string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(e.logs.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if id == "" || m["request_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// logLine returns the one line with msg of the request id.
func (e *env) logLine(tb testing.TB, id, msg string) map[string]any {
	tb.Helper()
	var found map[string]any
	for _, l := range e.logLines(tb, id) {
		if l["msg"] == msg {
			if found != nil {
				tb.Fatalf("two %q log lines for request %s", msg, id)
			}
			found = l
		}
	}
	if found == nil {
		tb.Fatalf("no %q log line for request %s in:\n%s", msg, id, e.logs.Bytes())
	}
	return found
}

// inflight counts requests inside the handler. A client can read the whole
// response before the server has written the access log line; waiting for
// zero makes the logs and metrics of finished requests complete.
type inflight struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
}

func newInflight() *inflight {
	f := &inflight{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.n++
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.n--
			f.cond.Broadcast()
			f.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

func (f *inflight) wait() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.n > 0 {
		f.cond.Wait()
	}
}

// memStore is an in-memory SequenceStore: a counter per application and
// user.
type memStore struct {
	mu sync.Mutex
	m  map[string]uint64
}

func newMemStore() *memStore { return &memStore{m: map[string]uint64{}} }

func (s *memStore) Next(_ context.Context, app, user string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := app + "\x00" + user
	s.m[k]++
	return s.m[k], nil
}

// failingStore is a store that is down.
type failingStore struct{}

func (failingStore) Next(context.Context, string, string) (uint64, error) {
	return 0, errors.New("sequence store: connection refused")
}

// panicStore panics inside the handler, with a value that must not be
// logged.
type panicStore struct{}

func (panicStore) Next(context.Context, string, string) (uint64, error) {
	panic("panic-value-with-request-data")
}
