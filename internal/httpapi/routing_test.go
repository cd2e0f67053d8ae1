package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const tokensPath, sigsPath = "/v1/registration-tokens", "/v1/registration-signatures"

// TestRouteLabelsOf405AndPreflight: a wrong method on a route and a CORS
// preflight are counted under the route's own pattern, not "unmatched";
// an unknown path still is "unmatched".
func TestRouteLabelsOf405AndPreflight(t *testing.T) {
	e := newEnv(t, envOpts{corsOrigins: []string{"https://app.example.com"}})
	mustStatus(t, e.do(t, req{method: http.MethodGet, path: tokensPath}), http.StatusMethodNotAllowed)
	pre := e.do(t, req{method: http.MethodOptions, path: sigsPath, header: http.Header{
		"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}}})
	mustStatus(t, pre, http.StatusNoContent)
	mustStatus(t, e.do(t, req{method: http.MethodGet, path: "/nope"}), http.StatusNotFound)
	for _, c := range []struct {
		route, method, code string
	}{{tokensPath, "GET", "405"}, {sigsPath, "OPTIONS", "204"}, {"unmatched", "GET", "404"}} {
		if got := testutil.ToFloat64(e.m.HTTPRequests.WithLabelValues(c.route, c.method, c.code)); got != 1 {
			t.Errorf("authserver_http_requests_total{route=%q,method=%q,code=%q} = %v, want 1", c.route, c.method, c.code, got)
		}
	}
	if got := testutil.ToFloat64(e.m.HTTPRequests.WithLabelValues("unmatched", "OPTIONS", "204")); got != 0 {
		t.Errorf("the preflight was counted as unmatched")
	}
}

// TestHeadWhereGet: HEAD is answered wherever GET is, without a body, on
// both listeners; 405's Allow names it.
func TestHeadWhereGet(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := e.do(t, req{method: http.MethodHead, path: "/openapi.yaml"})
	mustStatus(t, r, http.StatusOK)
	if len(r.body) != 0 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/yaml") {
		t.Errorf("HEAD /openapi.yaml: body %d bytes, Content-Type %q", len(r.body), r.header.Get("Content-Type"))
	}
	if got := testutil.ToFloat64(e.m.HTTPRequests.WithLabelValues("/openapi.yaml", "HEAD", "200")); got != 1 {
		t.Errorf("HEAD /openapi.yaml counted %v times under its route", got)
	}
	r = e.do(t, req{method: http.MethodDelete, path: "/openapi.yaml"})
	mustStatus(t, r, http.StatusMethodNotAllowed)
	if allow := r.header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow = %q, want GET, HEAD", allow)
	}
	// HEAD on a POST-only route stays 405.
	if r := e.do(t, req{method: http.MethodHead, path: tokensPath}); r.status != http.StatusMethodNotAllowed || len(r.body) != 0 {
		t.Errorf("HEAD %s: %d with %d bytes, want 405 without a body", tokensPath, r.status, len(r.body))
	}

	admin := httptest.NewServer(e.srv.Admin())
	defer admin.Close()
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := admin.Client().Head(admin.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %s", p, resp.Status)
		}
	}
}

// TestAccessLogDurationMS: the access fields say duration_ms, a float of
// milliseconds, not an unnamed integer of nanoseconds (a credential request's
// record is msg=credential, see TestOneRecordPerRequest).
func TestAccessLogDurationMS(t *testing.T) {
	e := newEnv(t, envOpts{})
	mustStatus(t, e.token(t, `{"userId":"alice"}`), http.StatusOK)
	found := false
	for _, line := range strings.Split(string(e.logs.Bytes()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "credential" {
			continue
		}
		found = true
		if _, ok := m["duration"]; ok {
			t.Errorf("record still has duration: %s", line)
		}
		ms, ok := m["duration_ms"].(float64)
		if !ok || ms <= 0 || ms > 10000 {
			t.Errorf("duration_ms = %v in %s", m["duration_ms"], line)
		}
		if !strings.Contains(line, `"duration_ms":`) || strings.Contains(line, `"duration_ms":"`) {
			t.Errorf("duration_ms is not a JSON number: %s", line)
		}
	}
	if !found {
		t.Fatalf("no credential record in:\n%s", string(e.logs.Bytes()))
	}
}
