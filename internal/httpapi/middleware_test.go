package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCORS(t *testing.T) {
	const allowed, other = "https://app.example.com", "https://evil.example.com"
	e := newEnv(t, envOpts{corsOrigins: []string{allowed}})
	preflight := func(origin string) req {
		return req{method: http.MethodOptions, header: http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"authorization,content-type"},
		}}
	}
	t.Run("preflight from an allowed origin", func(t *testing.T) {
		r := e.do(t, preflight(allowed))
		mustStatus(t, r, http.StatusNoContent)
		if got := r.header.Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("Access-Control-Allow-Origin %q, want %q", got, allowed)
		}
		if got := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
			t.Errorf("Access-Control-Allow-Methods %q", got)
		}
		h := strings.ToLower(r.header.Get("Access-Control-Allow-Headers"))
		if !strings.Contains(h, "authorization") || !strings.Contains(h, "content-type") {
			t.Errorf("Access-Control-Allow-Headers %q", h)
		}
		if strings.Contains(h, "x-api-key") {
			t.Errorf("browsers may send X-API-Key: %q", h)
		}
		if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary %q", r.header.Values("Vary"))
		}
		if r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("credentials allowed")
		}
	})
	t.Run("preflight from another origin", func(t *testing.T) {
		r := e.do(t, preflight(other))
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin %q for a foreign origin", got)
		}
		if got := r.header.Get("Access-Control-Allow-Methods"); got != "" {
			t.Errorf("Access-Control-Allow-Methods %q for a foreign origin", got)
		}
	})
	t.Run("request from an allowed origin", func(t *testing.T) {
		r := e.do(t, req{bearer: e.userToken("ES256", "alice"), header: http.Header{"Origin": {allowed}}})
		mustToken(t, e, r, appA, secretA, "alice")
		if got := r.header.Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("Access-Control-Allow-Origin %q", got)
		}
		if got := r.header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-Request-Id") {
			t.Errorf("Access-Control-Expose-Headers %q", got)
		}
	})
	t.Run("request from another origin", func(t *testing.T) {
		r := e.do(t, req{bearer: e.userToken("ES256", "alice"), header: http.Header{"Origin": {other}}})
		mustStatus(t, r, http.StatusOK)
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin %q", got)
		}
	})
	t.Run("request without Origin", func(t *testing.T) {
		for _, rq := range []req{
			{bearer: e.userToken("ES256", "alice")},
			{},
			{method: http.MethodGet, path: "/openapi.yaml"},
		} {
			r := e.do(t, rq)
			for k := range r.header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s %s: CORS header %s: %q", rq.method, rq.path, k, r.header.Get(k))
				}
			}
		}
	})
}

func TestTrustedProxies(t *testing.T) {
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
	clientIP := func(t *testing.T, e *env, r res) any {
		t.Helper()
		return e.logLine(t, r.header.Get("X-Request-Id"), "credential")["client_ip"]
	}
	t.Run("behind a trusted proxy", func(t *testing.T) {
		e := newEnv(t, envOpts{trustedProxies: []string{"127.0.0.1/32"}, perIP: "2/h"})
		tok := e.userToken("RS256", "alice")
		r := e.do(t, req{bearer: tok, header: xff("203.0.113.9")})
		mustStatus(t, r, http.StatusOK)
		if ip := clientIP(t, e, r); ip != "203.0.113.9" {
			t.Errorf("client_ip %v, want 203.0.113.9", ip)
		}
		// A spoofed entry to the left of what the proxy appended is ignored.
		r = e.do(t, req{bearer: tok, header: xff("198.51.100.7, 203.0.113.9")})
		mustStatus(t, r, http.StatusOK)
		if ip := clientIP(t, e, r); ip != "203.0.113.9" {
			t.Errorf("client_ip %v, want 203.0.113.9", ip)
		}
		// The per-IP limit is keyed on the forwarded address.
		before := testutil.ToFloat64(e.m.RateLimited.WithLabelValues("ip"))
		r = e.do(t, req{bearer: tok, header: xff("203.0.113.9")})
		p := mustProblem(t, r, http.StatusTooManyRequests, "rate-limited")
		if !strings.Contains(p.Detail, "ip") || r.header.Get("Retry-After") == "" {
			t.Errorf("detail %q, Retry-After %q", p.Detail, r.header.Get("Retry-After"))
		}
		if d := testutil.ToFloat64(e.m.RateLimited.WithLabelValues("ip")) - before; d != 1 {
			t.Errorf("rate_limited{scope=ip} moved by %v", d)
		}
		mustStatus(t, e.do(t, req{bearer: tok, header: xff("203.0.113.10")}), http.StatusOK)
		// The per-IP limit applies before authentication: an exhausted
		// address is refused whatever it sends.
		mustProblem(t, e.do(t, req{apiKey: apiKeyAll, body: `{"userId":"alice"}`, header: xff("203.0.113.9")}), http.StatusTooManyRequests, "rate-limited")
		// But API-key callers are limited per key: their requests do not
		// spend the address's budget.
		for range 5 {
			mustStatus(t, e.do(t, req{apiKey: apiKeyAll, body: `{"userId":"alice"}`, header: xff("203.0.113.12")}), http.StatusOK)
		}
		mustStatus(t, e.do(t, req{bearer: tok, header: xff("203.0.113.12")}), http.StatusOK)
	})
	t.Run("without trusted proxies", func(t *testing.T) {
		e := newEnv(t, envOpts{perIP: "2/h"})
		tok := e.userToken("RS256", "alice")
		r := e.do(t, req{bearer: tok, header: xff("203.0.113.9")})
		mustStatus(t, r, http.StatusOK)
		if ip := clientIP(t, e, r); ip != "127.0.0.1" {
			t.Errorf("client_ip %v, want 127.0.0.1", ip)
		}
		// Every X-Forwarded-For value shares the peer's budget.
		mustStatus(t, e.do(t, req{bearer: tok, header: xff("203.0.113.10")}), http.StatusOK)
		mustProblem(t, e.do(t, req{bearer: tok, header: xff("203.0.113.11")}), http.StatusTooManyRequests, "rate-limited")
	})
	t.Run("a proxy that is not trusted", func(t *testing.T) {
		e := newEnv(t, envOpts{trustedProxies: []string{"10.0.0.0/8"}})
		r := e.do(t, req{bearer: e.userToken("RS256", "alice"), header: xff("203.0.113.9")})
		mustStatus(t, r, http.StatusOK)
		if ip := clientIP(t, e, r); ip != "127.0.0.1" {
			t.Errorf("client_ip %v, want the peer 127.0.0.1", ip)
		}
	})
}

func TestAuditLog(t *testing.T) {
	e := newEnv(t, envOpts{})
	t.Run("issued", func(t *testing.T) {
		r := e.token(t, `{"userId":"alice"}`)
		mustStatus(t, r, http.StatusOK)
		l := e.logLine(t, r.header.Get("X-Request-Id"), "credential")
		for k, want := range map[string]any{
			"outcome": "issued", "kind": "jwt", "principal_kind": "api_key", "principal": "backend",
			"application": appA, "user_id": "alice", "kid": "hkdfv1-20261122",
		} {
			if l[k] != want {
				t.Errorf("%s: %v, want %v", k, l[k], want)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		r := e.do(t, req{bearer: e.userToken("RS256", "alice"), body: `{"userId":"bob"}`})
		mustStatus(t, r, http.StatusForbidden)
		l := e.logLine(t, r.header.Get("X-Request-Id"), "credential")
		for k, want := range map[string]any{
			"outcome": "refused", "kind": "jwt", "principal_kind": "user", "principal": e.idp.Issuer(),
			"application": appA, "reason": "forbidden", "status": float64(403),
		} {
			if l[k] != want {
				t.Errorf("%s: %v, want %v", k, l[k], want)
			}
		}
	})
	t.Run("signature", func(t *testing.T) {
		r := e.do(t, req{path: "/v1/registration-signatures", apiKey: apiKeyAll, body: `{"userId":"alice"}`})
		mustStatus(t, r, http.StatusOK)
		l := e.logLine(t, r.header.Get("X-Request-Id"), "credential")
		if l["kind"] != "signature" || l["sequence"] != float64(1) {
			t.Errorf("credential record %v", l)
		}
	})
}

// TestOneRecordPerRequest: every request writes exactly one info record,
// "credential" (the access fields and the audit fields) for a decision on a
// credential endpoint, "request" (the access fields) for everything else,
// including a credential endpoint's request refused before any decision
// (the per-IP limit) or by method.
func TestOneRecordPerRequest(t *testing.T) {
	e := newEnv(t, envOpts{perIP: "3/h"})
	access := []string{"request_id", "method", "route", "status", "duration_ms", "client_ip", "bytes"}
	for _, c := range []struct {
		name    string
		rq      req
		status  int
		msg     string
		outcome string
	}{
		{"issued", req{apiKey: apiKeyAll, body: `{"userId":"alice"}`}, 200, "credential", "issued"},
		{"refused", req{body: `{"userId":"alice"}`}, 401, "credential", "refused"},
		{"spec", req{method: http.MethodGet, path: "/openapi.yaml"}, 200, "request", ""},
		{"wrong method", req{method: http.MethodGet}, 405, "request", ""},
		{"per-IP limit", req{bearer: "x"}, 429, "request", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, c.rq)
			mustStatus(t, r, c.status)
			lines := e.logLines(t, r.header.Get("X-Request-Id"))
			if len(lines) != 1 {
				t.Fatalf("%d log records for one request, want 1: %v", len(lines), lines)
			}
			l := lines[0]
			if l["msg"] != c.msg || l["status"] != float64(c.status) {
				t.Errorf("msg %v status %v, want %s %d", l["msg"], l["status"], c.msg, c.status)
			}
			for _, k := range access {
				if _, ok := l[k]; !ok {
					t.Errorf("no %s in %v", k, l)
				}
			}
			if got, _ := l["outcome"].(string); got != c.outcome {
				t.Errorf("outcome %q, want %q", got, c.outcome)
			}
		})
	}
}

// TestCORSHardening is the attack run's CORS findings: ["*"] reflected
// Origin: null (sandboxed iframes, file: pages), preflights for paths that
// do not exist got 204, and browsers could not read WWW-Authenticate.
func TestCORSHardening(t *testing.T) {
	e := newEnv(t, envOpts{corsOrigins: []string{"*"}})
	preflight := func(origin, path string) req {
		return req{method: http.MethodOptions, path: path, header: http.Header{
			"Origin":                        {origin},
			"Access-Control-Request-Method": {"POST"},
		}}
	}
	t.Run("null origin", func(t *testing.T) {
		for _, rq := range []req{
			preflight("null", ""),
			{bearer: e.userToken("ES256", "alice"), header: http.Header{"Origin": {"null"}}},
		} {
			r := e.do(t, rq)
			if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("%s: Access-Control-Allow-Origin %q for Origin: null", rq.method, got)
			}
		}
	})
	t.Run("preflight for an unknown path", func(t *testing.T) {
		r := e.do(t, preflight("https://app.example.com", "/v1/no-such-endpoint"))
		mustProblem(t, r, http.StatusNotFound, "not-found")
		mustStatus(t, e.do(t, preflight("https://app.example.com", "/v1/registration-signatures")), http.StatusNoContent)
	})
	t.Run("exposed headers", func(t *testing.T) {
		r := e.do(t, req{header: http.Header{"Origin": {"https://app.example.com"}}})
		mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
		exposed := strings.ToLower(r.header.Get("Access-Control-Expose-Headers"))
		for _, h := range []string{"www-authenticate", "retry-after", "x-request-id"} {
			if !strings.Contains(exposed, h) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
			}
		}
	})
}

// TestCORSAnyPort: an allowed origin ending in ":*" (what `dev` allows for
// pages on localhost) matches that scheme and host on any port, and
// nothing else.
func TestCORSAnyPort(t *testing.T) {
	e := newEnv(t, envOpts{corsOrigins: []string{"http://localhost:*", "http://127.0.0.1:*"}})
	for origin, want := range map[string]bool{
		"http://localhost:3000":        true,
		"http://127.0.0.1:5173":        true,
		"http://LOCALHOST:8080":        true,
		"http://localhost":             false, // no port
		"http://localhost:":            false,
		"http://localhost:3000x":       false,
		"http://localhost:123456":      false,
		"https://localhost:3000":       false, // another scheme
		"http://localhost.evil.com:80": false,
		"http://localhost:80@evil.com": false,
		"http://127.0.0.10:3000":       false,
	} {
		r := e.do(t, req{method: http.MethodOptions, header: http.Header{
			"Origin": {origin}, "Access-Control-Request-Method": {"POST"},
		}})
		if got := r.header.Get("Access-Control-Allow-Origin") == origin; got != want {
			t.Errorf("origin %q allowed = %v, want %v", origin, got, want)
		}
	}
}
