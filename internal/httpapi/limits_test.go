package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestPerIPLimitBeforeAuthentication is the attack run's key guessing: 400
// wrong X-API-Key values and 400 requests without credentials from one
// address over its per_ip budget all got 401, never 429.
func TestPerIPLimitBeforeAuthentication(t *testing.T) {
	const budget = 50
	for _, tc := range []struct {
		name string
		req  func(i int) req
	}{
		{"wrong API keys", func(i int) req {
			return req{apiKey: fmt.Sprintf("ak-guess-%04d", i), body: `{"userId":"alice"}`}
		}},
		{"no credentials", func(int) req { return req{body: `{"userId":"alice"}`} }},
		{"spec and unknown paths", func(i int) req {
			if i%2 == 0 {
				return req{method: http.MethodGet, path: "/openapi.yaml"}
			}
			return req{method: http.MethodGet, path: "/v1/nope"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{perIP: strconv.Itoa(budget) + "/h", discardLogs: true})
			limited := 0
			for i := range 400 {
				r := e.do(t, tc.req(i))
				if r.status != http.StatusTooManyRequests {
					if limited > 0 {
						t.Fatalf("request %d: %d after a 429", i, r.status)
					}
					continue
				}
				if limited == 0 && i != budget {
					t.Errorf("first 429 at request %d, want %d", i, budget)
				}
				limited++
				mustProblem(t, r, http.StatusTooManyRequests, "rate-limited")
				if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
					t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
				}
			}
			if limited != 400-budget {
				t.Errorf("%d of 400 requests got 429, want %d", limited, 400-budget)
			}
		})
	}
}

// TestFailedAuthBudget: per_ip_failed_auth is a stricter budget of 401s per
// address; once spent, the address is refused before its credentials are
// checked, even a valid key, while other addresses are not affected.
func TestFailedAuthBudget(t *testing.T) {
	const budget = 10
	e := newEnv(t, envOpts{perIP: "1000/h", perIPFailed: strconv.Itoa(budget) + "/h", trustedProxies: []string{"127.0.0.1/32"}})
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	for i := range budget {
		rq := req{apiKey: fmt.Sprintf("ak-guess-%04d", i), body: `{"userId":"alice"}`, header: from("203.0.113.5")}
		if i%2 == 1 {
			rq = req{body: `{"userId":"alice"}`, header: from("203.0.113.5")} // no credentials
		}
		mustProblem(t, e.do(t, rq), http.StatusUnauthorized, "unauthenticated")
	}
	before := testutil.ToFloat64(e.m.RateLimited.WithLabelValues("failed_auth"))
	for _, rq := range []req{
		{apiKey: "ak-guess-next", body: `{"userId":"alice"}`, header: from("203.0.113.5")},
		{apiKey: apiKeyAll, body: `{"userId":"alice"}`, header: from("203.0.113.5")},
		{bearer: e.userToken("ES256", "alice"), header: from("203.0.113.5")},
	} {
		r := e.do(t, rq)
		p := mustProblem(t, r, http.StatusTooManyRequests, "rate-limited")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After: %q", p.Detail)
		}
	}
	if d := testutil.ToFloat64(e.m.RateLimited.WithLabelValues("failed_auth")) - before; d != 3 {
		t.Errorf("rate_limited{scope=failed_auth} moved by %v, want 3", d)
	}
	// Successes do not spend the failed-authentication budget.
	for range 2 * budget {
		mustStatus(t, e.do(t, req{apiKey: apiKeyAll, body: `{"userId":"alice"}`, header: from("203.0.113.6")}), http.StatusOK)
	}
	mustStatus(t, e.do(t, req{bearer: e.userToken("ES256", "alice"), header: from("203.0.113.6")}), http.StatusOK)
}

// TestClientIPFallbackBehindProxy: behind trusted proxies, a request whose
// X-Forwarded-For gives no client address (missing, unparsable, or only
// trusted hops) is counted against its peer, not against one "unknown"
// bucket shared by everybody.
func TestClientIPFallbackBehindProxy(t *testing.T) {
	e := newEnv(t, envOpts{trustedProxies: []string{"10.0.0.0/8"}, perIP: "2/h"})
	tok := e.userToken("ES256", "alice")
	send := func(peer string, xff []string) res {
		hr := httptest.NewRequest(http.MethodPost, "/v1/registration-tokens", nil)
		hr.Header.Set("Authorization", "Bearer "+tok)
		hr.RemoteAddr = peer + ":40000"
		if xff != nil {
			hr.Header["X-Forwarded-For"] = xff
		}
		return serveInProcess(t, e, hr)
	}
	for _, tc := range []struct {
		name, why string
		xff       []string
	}{
		{"missing", "xff_missing", nil},
		{"unparsable", "xff_unparsable", []string{"not-an-address"}},
		{"all trusted", "xff_all_trusted", []string{"10.9.9.9, 10.0.0.7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Peer .1 uses up its own budget...
			for range 2 {
				mustStatus(t, send("10.0.1.1", tc.xff), http.StatusOK)
			}
			r := send("10.0.1.1", tc.xff)
			mustProblem(t, r, http.StatusTooManyRequests, "rate-limited")
			line := e.logLine(t, r.header.Get("X-Request-Id"), "request")
			if line["client_ip"] != "10.0.1.1" || line["client_ip_fallback"] != tc.why {
				t.Errorf("access log client_ip %v, client_ip_fallback %v; want 10.0.1.1, %s", line["client_ip"], line["client_ip_fallback"], tc.why)
			}
			// ...and another peer without a usable header is not affected.
			mustStatus(t, send("10.0.1.2", tc.xff), http.StatusOK)
			// A forwarded client is not affected either.
			mustStatus(t, send("10.0.1.1", []string{"198.51.100.1"}), http.StatusOK)
			// Fresh peers for the next case.
			e = newEnv(t, envOpts{trustedProxies: []string{"10.0.0.0/8"}, perIP: "2/h"})
		})
	}
}
