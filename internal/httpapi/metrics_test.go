package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authserver-dev/authserver/internal/httpapi"
)

// counters reads the counters a test expects to move, by a short name.
type counterSet map[string]prometheus.Counter

func (c counterSet) values() map[string]float64 {
	out := make(map[string]float64, len(c))
	for k, v := range c {
		out[k] = testutil.ToFloat64(v)
	}
	return out
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOpts{perUser: "2/h"})
	m := e.m
	const tokens, sigs = "/v1/registration-tokens", "/v1/registration-signatures"
	c := counterSet{
		"tokens 200":          m.HTTPRequests.WithLabelValues(tokens, "POST", "200"),
		"tokens 400":          m.HTTPRequests.WithLabelValues(tokens, "POST", "400"),
		"tokens 401":          m.HTTPRequests.WithLabelValues(tokens, "POST", "401"),
		"tokens 429":          m.HTTPRequests.WithLabelValues(tokens, "POST", "429"),
		"signatures 200":      m.HTTPRequests.WithLabelValues(sigs, "POST", "200"),
		"unmatched 404":       m.HTTPRequests.WithLabelValues("unmatched", "GET", "404"),
		"issued jwt":          m.CredentialsIssued.WithLabelValues(appA, "jwt"),
		"issued jwt appB":     m.CredentialsIssued.WithLabelValues(appB, "jwt"),
		"issued signature":    m.CredentialsIssued.WithLabelValues(appA, "signature"),
		"refused unauth":      m.CredentialsRefused.WithLabelValues("unauthenticated"),
		"refused invalid":     m.CredentialsRefused.WithLabelValues("invalid-request"),
		"refused rate":        m.CredentialsRefused.WithLabelValues("rate-limited"),
		"refused forbidden":   m.CredentialsRefused.WithLabelValues("forbidden"),
		"auth missing":        m.AuthFailures.WithLabelValues("missing_credentials"),
		"auth bad key":        m.AuthFailures.WithLabelValues("invalid_api_key"),
		"auth expired":        m.AuthFailures.WithLabelValues("expired"),
		"auth ambiguous":      m.AuthFailures.WithLabelValues("ambiguous_credentials"),
		"rate limited user":   m.RateLimited.WithLabelValues("user"),
		"rate limited ip":     m.RateLimited.WithLabelValues("ip"),
		"rate limited apikey": m.RateLimited.WithLabelValues("api_key"),
	}
	before := c.values()

	for _, u := range []string{"alice", "bob", "carol"} {
		mustStatus(t, e.token(t, `{"userId":"`+u+`"}`), http.StatusOK)
	}
	mustStatus(t, e.do(t, req{bearer: e.userToken("RS256", "dave")}), http.StatusOK)
	mustStatus(t, e.do(t, req{bearer: e.userToken("RS256", "dave")}), http.StatusOK)
	mustStatus(t, e.do(t, req{bearer: e.userToken("RS256", "dave")}), http.StatusTooManyRequests)
	mustStatus(t, e.token(t, `{"userId":"erin","applicationKey":"`+appB+`"}`), http.StatusOK)
	mustStatus(t, e.do(t, req{path: sigs, apiKey: apiKeyAll, body: `{"userId":"alice"}`}), http.StatusOK)
	mustStatus(t, e.do(t, req{body: `{"userId":"alice"}`}), http.StatusUnauthorized)
	mustStatus(t, e.do(t, req{apiKey: "wrong", body: `{"userId":"alice"}`}), http.StatusUnauthorized)
	expired := e.idp.Sign("RS256", withClaims(e.idp.Claims("alice", audience, e.now), "exp", e.now.Add(-time.Hour).Unix()))
	mustStatus(t, e.do(t, req{bearer: expired}), http.StatusUnauthorized)
	mustStatus(t, e.token(t, `{"userId":"alice","ttlSeconds":1}`), http.StatusBadRequest)
	mustStatus(t, e.do(t, req{apiKey: apiKeyAll, bearer: expired}), http.StatusBadRequest)
	mustStatus(t, e.do(t, req{apiKey: apiKeyB, body: `{"userId":"alice"}`}), http.StatusForbidden)
	mustStatus(t, e.do(t, req{method: http.MethodGet, path: "/no/such/path-123"}), http.StatusNotFound)

	want := map[string]float64{
		"tokens 200": 6, "tokens 400": 2, "tokens 401": 3, "tokens 429": 1, "signatures 200": 1, "unmatched 404": 1,
		"issued jwt": 5, "issued jwt appB": 1, "issued signature": 1,
		"refused unauth": 3, "refused invalid": 2, "refused rate": 1, "refused forbidden": 1,
		"auth missing": 1, "auth bad key": 1, "auth expired": 1, "auth ambiguous": 1,
		"rate limited user": 1, "rate limited ip": 0, "rate limited apikey": 0,
	}
	after := c.values()
	for name, w := range want {
		if d := after[name] - before[name]; d != w {
			t.Errorf("%s moved by %v, want %v", name, d, w)
		}
	}

	t.Run("route labels are patterns", func(t *testing.T) {
		mustStatus(t, e.do(t, req{method: http.MethodGet}), http.StatusMethodNotAllowed)
		// chi answers 405 to a method no route uses, whatever the path.
		mustStatus(t, e.do(t, req{method: "PROPFIND", path: "/x"}), http.StatusMethodNotAllowed)
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		routes := map[string]bool{tokens: true, sigs: true, "/openapi.yaml": true, "unmatched": true}
		methods := map[string]bool{"GET": true, "POST": true, "other": true}
		for _, mf := range mfs {
			if mf.GetName() != "authserver_http_requests_total" {
				continue
			}
			for _, metric := range mf.GetMetric() {
				for _, l := range metric.GetLabel() {
					if l.GetName() == "route" && !routes[l.GetValue()] {
						t.Errorf("route label %q", l.GetValue())
					}
					if l.GetName() == "method" && !methods[l.GetValue()] {
						t.Errorf("method label %q", l.GetValue())
					}
				}
			}
		}
		if got := testutil.ToFloat64(m.HTTPRequests.WithLabelValues("unmatched", "other", "405")); got != 1 {
			t.Errorf("unmatched/other/405 = %v", got)
		}
	})
	t.Run("lint", func(t *testing.T) {
		problems, err := testutil.GatherAndLint(m.Registry)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
	})
}

func TestAdmin(t *testing.T) {
	var keysLoaded, storeDown, idpDown atomic.Bool
	keysLoaded.Store(true)
	fails := func(b *atomic.Bool, msg string) func(context.Context) error {
		return func(context.Context) error {
			if b.Load() {
				return errors.New(msg)
			}
			return nil
		}
	}
	e := newEnv(t, envOpts{checks: []httpapi.Check{
		{Name: "identity_provider_keys", Startup: true, Run: func(context.Context) error {
			if !keysLoaded.Load() {
				return errors.New("no keys loaded yet")
			}
			return nil
		}},
		{Name: "sequence_store", Run: fails(&storeDown, "connection refused")},
		{Name: "identity_providers", Run: fails(&idpDown, "discovery: 503")},
	}})
	admin := httptest.NewServer(e.srv.Admin())
	t.Cleanup(admin.Close)
	mustStatus(t, e.token(t, `{"userId":"alice"}`), http.StatusOK)

	t.Run("metrics", func(t *testing.T) {
		r := doAdmin(t, e, admin, "/metrics")
		mustStatus(t, r, http.StatusOK)
		body := string(r.body)
		for _, want := range []string{
			"authserver_build_info{",
			`version="test"`,
			`authserver_http_requests_total{code="200",method="POST",route="/v1/registration-tokens"} 1`,
			`authserver_credentials_issued_total{application="` + appA + `",kind="jwt"} 1`,
			"go_goroutines",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
		}
	})
	t.Run("healthz", func(t *testing.T) {
		r := doAdmin(t, e, admin, "/healthz")
		mustStatus(t, r, http.StatusOK)
		if s := mustDecode[map[string]any](t, r)["status"]; s != "ok" {
			t.Errorf("status %v", s)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		r := doAdmin(t, e, admin, "/readyz")
		mustStatus(t, r, http.StatusOK)
		if string(r.body) != "ok\n" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("/readyz: %q, Cache-Control %q", r.body, r.header.Get("Cache-Control"))
		}
		r = doAdmin(t, e, admin, "/readyz?verbose=1")
		mustStatus(t, r, http.StatusOK)
		want := "[+]identity_provider_keys ok\n[+]sequence_store ok\n[+]identity_providers ok\nreadyz check passed\n"
		if string(r.body) != want {
			t.Errorf("/readyz?verbose=1:\n%s\nwant\n%s", r.body, want)
		}
		for _, p := range []string{"/readyz/sequence_store", "/readyz/identity_providers", "/readyz/identity_provider_keys"} {
			if r := doAdmin(t, e, admin, p); r.status != http.StatusOK || string(r.body) != "ok\n" {
				t.Errorf("%s: %d %q", p, r.status, r.body)
			}
		}
		mustProblem(t, doAdmin(t, e, admin, "/readyz/no_such_check"), http.StatusNotFound, "not-found")
	})
	// A shared dependency's outage shows on its own endpoint and in the
	// verbose list, but /readyz stays 200: every replica shares it.
	t.Run("readyz with dependencies down", func(t *testing.T) {
		storeDown.Store(true)
		idpDown.Store(true)
		defer storeDown.Store(false)
		defer idpDown.Store(false)
		mustStatus(t, doAdmin(t, e, admin, "/readyz"), http.StatusOK)
		for name, reason := range map[string]string{"sequence_store": "connection refused", "identity_providers": "discovery: 503"} {
			r := doAdmin(t, e, admin, "/readyz/"+name)
			if want := "[-]" + name + " failed: " + reason + "\n"; r.status != http.StatusServiceUnavailable || string(r.body) != want {
				t.Errorf("/readyz/%s: %d %q, want 503 %q", name, r.status, r.body, want)
			}
		}
		r := doAdmin(t, e, admin, "/readyz?verbose=1")
		mustStatus(t, r, http.StatusOK)
		want := "[+]identity_provider_keys ok\n" +
			"[-]sequence_store failed (does not fail /readyz): connection refused\n" +
			"[-]identity_providers failed (does not fail /readyz): discovery: 503\n" +
			"readyz check passed\n"
		if string(r.body) != want {
			t.Errorf("/readyz?verbose=1:\n%s\nwant\n%s", r.body, want)
		}
	})
	// A startup check fails /readyz until it passes once; after that it is
	// not asked again.
	t.Run("readyz before start", func(t *testing.T) {
		var loaded atomic.Bool
		var calls atomic.Int32
		e := newEnv(t, envOpts{checks: []httpapi.Check{{Name: "identity_provider_keys", Startup: true, Run: func(context.Context) error {
			calls.Add(1)
			if !loaded.Load() {
				return errors.New("no keys loaded yet")
			}
			return nil
		}}}})
		admin := httptest.NewServer(e.srv.Admin())
		defer admin.Close()
		r := doAdmin(t, e, admin, "/readyz")
		if want := "[-]identity_provider_keys failed: no keys loaded yet\nreadyz check failed\n"; r.status != http.StatusServiceUnavailable || string(r.body) != want {
			t.Errorf("/readyz before the keys: %d %q, want 503 %q", r.status, r.body, want)
		}
		loaded.Store(true)
		mustStatus(t, doAdmin(t, e, admin, "/readyz"), http.StatusOK)
		loaded.Store(false) // would fail now, but start is behind us
		n := calls.Load()
		mustStatus(t, doAdmin(t, e, admin, "/readyz"), http.StatusOK)
		mustStatus(t, doAdmin(t, e, admin, "/readyz?verbose=1"), http.StatusOK)
		if calls.Load() != n {
			t.Errorf("a startup check that passed ran again")
		}
	})
	t.Run("readyz without checks", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		admin := httptest.NewServer(e.srv.Admin())
		defer admin.Close()
		r := doAdmin(t, e, admin, "/readyz")
		mustStatus(t, r, http.StatusOK)
		if string(r.body) != "ok\n" {
			t.Errorf("body %q", r.body)
		}
	})
	t.Run("pprof is off by default", func(t *testing.T) {
		r := doAdmin(t, e, admin, "/debug/pprof/")
		mustProblem(t, r, http.StatusNotFound, "not-found")
	})
	t.Run("pprof when enabled", func(t *testing.T) {
		e := newEnv(t, envOpts{pprof: true})
		admin := httptest.NewServer(e.srv.Admin())
		defer admin.Close()
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
			mustStatus(t, doAdmin(t, e, admin, p), http.StatusOK)
		}
		// Never on the public listener.
		mustProblem(t, e.do(t, req{method: http.MethodGet, path: "/debug/pprof/"}), http.StatusNotFound, "not-found")
	})
	t.Run("admin paths are not public", func(t *testing.T) {
		for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
			mustProblem(t, e.do(t, req{method: http.MethodGet, path: p}), http.StatusNotFound, "not-found")
		}
	})
}
