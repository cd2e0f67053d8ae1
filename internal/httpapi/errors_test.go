package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/authserver-dev/authserver/internal/httpapi"
)

// jsonBodyOfSize is a token request for user "aaa…" exactly n bytes long.
func jsonBodyOfSize(n int) string {
	const pre, post = `{"userId":"`, `"}`
	return pre + strings.Repeat("a", n-len(pre)-len(post)) + post
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, envOpts{})
	tests := []struct {
		name   string
		req    req
		status int
		slug   string
		field  string            // expected problem field, if any
		detail string            // substring of the problem detail
		header map[string]string // header name -> required prefix
	}{
		{name: "malformed JSON", req: req{apiKey: apiKeyAll, body: `{"userId" "alice"}`},
			status: 400, slug: "invalid-request", detail: "malformed JSON at byte"},
		{name: "truncated JSON", req: req{apiKey: apiKeyAll, body: `{"userId":"al`},
			status: 400, slug: "invalid-request", detail: "unexpected end"},
		{name: "userId is a number", req: req{apiKey: apiKeyAll, body: `{"userId":42}`},
			status: 400, slug: "invalid-request", field: "userId", detail: "must be a string"},
		{name: "ttlSeconds is a string", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","ttlSeconds":"600"}`},
			status: 400, slug: "invalid-request", field: "ttlSeconds", detail: "must be an integer"},
		{name: "ttlSeconds is a fraction", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","ttlSeconds":600.5}`},
			status: 400, slug: "invalid-request", field: "ttlSeconds"},
		{name: "body is an array", req: req{apiKey: apiKeyAll, body: `["alice"]`},
			status: 400, slug: "invalid-request", detail: "must be a JSON object"},
		// encoding/json takes null as an empty request: it must not become
		// one for the API key's default application (FuzzDecodeJSON found it).
		{name: "body is null", req: req{apiKey: apiKeyAll, body: `null`},
			status: 400, slug: "invalid-request", detail: "must be a JSON object"},
		{name: "body is a string", req: req{apiKey: apiKeyAll, body: `"alice"`},
			status: 400, slug: "invalid-request", detail: "must be a JSON object"},
		{name: "unknown field", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","admin":true}`},
			status: 400, slug: "invalid-request", field: "admin", detail: "unknown field"},
		{name: "second object after the first", req: req{apiKey: apiKeyAll, body: `{"userId":"alice"}{"userId":"bob"}`},
			status: 400, slug: "invalid-request", detail: "exactly one JSON object"},
		{name: "trailing garbage", req: req{apiKey: apiKeyAll, body: `{"userId":"alice"} x`},
			status: 400, slug: "invalid-request", detail: "exactly one JSON object"},
		{name: "trailing bracket", req: req{apiKey: apiKeyAll, body: `{"userId":"alice"}]`},
			status: 400, slug: "invalid-request", detail: "exactly one JSON object"},
		{name: "user id with a space", req: req{apiKey: apiKeyAll, body: `{"userId":"al ice"}`},
			status: 400, slug: "invalid-request", field: "userId", detail: "A-Z a-z 0-9 - _ ="},
		{name: "user id of 256 bytes", req: req{apiKey: apiKeyAll, body: `{"userId":"` + strings.Repeat("u", 256) + `"}`},
			status: 400, slug: "invalid-request", field: "userId"},
		{name: "non-ASCII user id", req: req{apiKey: apiKeyAll, body: `{"userId":"ålice"}`},
			status: 400, slug: "invalid-request", field: "userId"},
		{name: "user id with a slash", req: req{apiKey: apiKeyAll, body: `{"userId":"alice/../bob"}`},
			status: 400, slug: "invalid-request", field: "userId"},
		{name: "empty user id with an API key", req: req{apiKey: apiKeyAll, body: `{"userId":""}`},
			status: 400, slug: "invalid-request", field: "userId", detail: "is required"},
		{name: "no body with an API key", req: req{apiKey: apiKeyAll},
			status: 400, slug: "invalid-request", field: "userId", detail: "is required"},
		{name: "TTL below 60", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","ttlSeconds":59}`},
			status: 400, slug: "invalid-request", field: "ttlSeconds", detail: "at least 60"},
		{name: "TTL above the application's max", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","ttlSeconds":3601}`},
			status: 400, slug: "invalid-request", field: "ttlSeconds", detail: "at most 3600"},
		{name: "negative TTL", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","ttlSeconds":-1}`},
			status: 400, slug: "invalid-request", field: "ttlSeconds"},
		{name: "huge TTL", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","ttlSeconds":9223372036854775807}`},
			status: 400, slug: "invalid-request", field: "ttlSeconds"},
		{name: "instance TTL of one hour", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","instanceTtlSeconds":3600}`},
			status: 400, slug: "invalid-request", field: "instanceTtlSeconds", detail: "48 h"},
		{name: "unknown application", req: req{apiKey: apiKeyAll, body: `{"userId":"alice","applicationKey":"no-such-app"}`},
			status: 404, slug: "unknown-application"},
		{name: "unknown application for signatures", req: req{path: "/v1/registration-signatures", apiKey: apiKeyAll, body: `{"userId":"alice","applicationKey":"no-such-app"}`},
			status: 404, slug: "unknown-application"},
		{name: "missing credentials", req: req{body: `{"userId":"alice"}`},
			status: 401, slug: "unauthenticated", header: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "wrong API key", req: req{apiKey: "not-the-key", body: `{"userId":"alice"}`},
			status: 401, slug: "unauthenticated", header: map[string]string{"WWW-Authenticate": "APIKey"}},
		{name: "empty API key header", req: req{header: http.Header{"X-Api-Key": {""}}, body: `{"userId":"alice"}`},
			status: 401, slug: "unauthenticated"},
		{name: "API key of another application", req: req{apiKey: apiKeyB, body: `{"userId":"alice"}`},
			status: 403, slug: "forbidden"},
		{name: "API key of another application, named", req: req{apiKey: apiKeyB, body: `{"userId":"alice","applicationKey":"` + appA + `"}`},
			status: 403, slug: "forbidden"},
		{name: "API key and Authorization", req: req{apiKey: apiKeyAll, authz: "Bearer x.y.z", body: `{"userId":"alice"}`},
			status: 400, slug: "invalid-request", detail: "not both"},
		{name: "body over 16 KiB", req: req{apiKey: apiKeyAll, body: jsonBodyOfSize(httpapi.MaxBodyBytes + 1)},
			status: 413, slug: "too-large", detail: strconv.Itoa(httpapi.MaxBodyBytes)},
		{name: "chunked body over 16 KiB", req: req{apiKey: apiKeyAll, bodyReader: strings.NewReader(jsonBodyOfSize(httpapi.MaxBodyBytes + 1))},
			status: 413, slug: "too-large"},
		{name: "body of exactly 16 KiB is read", req: req{apiKey: apiKeyAll, body: jsonBodyOfSize(httpapi.MaxBodyBytes)},
			status: 400, slug: "invalid-request", field: "userId"},
		{name: "text/plain body", req: req{apiKey: apiKeyAll, body: `{"userId":"alice"}`, contentType: "text/plain"},
			status: 415, slug: "unsupported-media-type", header: map[string]string{"Accept-Post": "application/json"}},
		{name: "form body", req: req{apiKey: apiKeyAll, body: `userId=alice`, contentType: "application/x-www-form-urlencoded"},
			status: 415, slug: "unsupported-media-type"},
		{name: "GET on a POST route", req: req{method: http.MethodGet, apiKey: apiKeyAll},
			status: 405, slug: "method-not-allowed", header: map[string]string{"Allow": "POST"}},
		{name: "DELETE on a POST route", req: req{method: http.MethodDelete, path: "/v1/registration-signatures", apiKey: apiKeyAll},
			status: 405, slug: "method-not-allowed", header: map[string]string{"Allow": "POST"}},
		{name: "unknown path", req: req{path: "/v1/registration-token", apiKey: apiKeyAll, body: `{"userId":"alice"}`},
			status: 404, slug: "not-found"},
		{name: "unknown path, GET", req: req{method: http.MethodGet, path: "/admin"},
			status: 404, slug: "not-found"},
		{name: "legacy signatures disabled", req: req{path: "/v1/registration-signatures", apiKey: apiKeyAll, body: `{"userId":"alice","applicationKey":"` + appNoSig + `"}`},
			status: 403, slug: "forbidden", detail: "legacy signatures are disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.req)
			p := mustProblem(t, r, tt.status, tt.slug)
			if p.Field != tt.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, tt.field, p.Detail)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, tt.detail)
			}
			for k, prefix := range tt.header {
				if v := r.header.Get(k); !strings.HasPrefix(v, prefix) {
					t.Errorf("%s: %q, want prefix %q", k, v, prefix)
				}
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
	if n := e.store.count(); n != 0 {
		t.Errorf("refused requests took %d sequences", n)
	}
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.m {
		n += int(v)
	}
	return n
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, envOpts{})
	t.Run("a well-formed caller id is kept", func(t *testing.T) {
		r := e.do(t, req{header: http.Header{"X-Request-Id": {"client-id_1.a"}}})
		p := mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
		if p.RequestID != "client-id_1.a" {
			t.Errorf("requestId %q", p.RequestID)
		}
	})
	t.Run("a bad caller id is replaced", func(t *testing.T) {
		for _, bad := range []string{"has space", strings.Repeat("x", 65), "quote\"d"} {
			r := e.do(t, req{header: http.Header{"X-Request-Id": {bad}}})
			p := mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
			if p.RequestID == bad {
				t.Errorf("request id %q was kept", bad)
			}
		}
	})
	t.Run("ids are unique", func(t *testing.T) {
		seen := map[string]bool{}
		for range 5 {
			id := e.do(t, req{}).header.Get("X-Request-Id")
			if seen[id] {
				t.Fatalf("request id %q twice", id)
			}
			seen[id] = true
		}
	})
}

func TestStoreUnavailable(t *testing.T) {
	e := newEnv(t, envOpts{store: failingStore{}})
	r := e.do(t, req{path: "/v1/registration-signatures", apiKey: apiKeyAll, body: `{"userId":"alice"}`})
	p := mustProblem(t, r, http.StatusServiceUnavailable, "store-unavailable")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if strings.Contains(p.Detail, "connection refused") {
		t.Errorf("detail shows the store error: %q", p.Detail)
	}
	// The cause is logged, with the request id, for the operator.
	l := e.logLine(t, p.RequestID, "request failed")
	if l["level"] != "ERROR" || !strings.Contains(l["error"].(string), "connection refused") {
		t.Errorf("log line %v", l)
	}
	// Tokens need no store.
	mustStatus(t, e.token(t, `{"userId":"alice"}`), http.StatusOK)
}

func TestUserRateLimit(t *testing.T) {
	e := newEnv(t, envOpts{perUser: "3/h"})
	for i := range 3 {
		mustStatus(t, e.token(t, `{"userId":"alice","ttlSeconds":`+strconv.Itoa(600+i)+`}`), http.StatusOK)
	}
	t.Run("over the limit", func(t *testing.T) {
		r := e.token(t, `{"userId":"alice"}`)
		p := mustProblem(t, r, http.StatusTooManyRequests, "rate-limited")
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
		if !strings.Contains(p.Detail, "user") {
			t.Errorf("detail %q does not name the user limit", p.Detail)
		}
	})
	t.Run("signatures share the limit", func(t *testing.T) {
		r := e.do(t, req{path: "/v1/registration-signatures", apiKey: apiKeyAll, body: `{"userId":"alice"}`})
		mustProblem(t, r, http.StatusTooManyRequests, "rate-limited")
		if n := e.store.count(); n != 0 {
			t.Errorf("a rate-limited request took a sequence")
		}
	})
	t.Run("another user is unaffected", func(t *testing.T) {
		mustStatus(t, e.token(t, `{"userId":"bob"}`), http.StatusOK)
	})
	t.Run("the same user of another application is unaffected", func(t *testing.T) {
		mustStatus(t, e.token(t, `{"userId":"alice","applicationKey":"`+appB+`"}`), http.StatusOK)
	})
	t.Run("invalid requests do not count", func(t *testing.T) {
		for range 5 {
			mustProblem(t, e.token(t, `{"userId":"carol","ttlSeconds":1}`), http.StatusBadRequest, "invalid-request")
		}
		mustStatus(t, e.token(t, `{"userId":"carol"}`), http.StatusOK)
	})
}

func TestAPIKeyRateLimit(t *testing.T) {
	e := newEnv(t, envOpts{perAPIKey: "2/h"})
	ok := e.token(t, `{"userId":"u1"}`)
	mustStatus(t, ok, http.StatusOK)
	// Limits are not advertised: only a 429 says anything (Retry-After).
	for name := range ok.header {
		if strings.HasPrefix(name, "X-Ratelimit") {
			t.Errorf("header %s: %q", name, ok.header.Get(name))
		}
	}
	mustStatus(t, e.token(t, `{"userId":"u2"}`), http.StatusOK)
	r := e.token(t, `{"userId":"u3"}`)
	p := mustProblem(t, r, http.StatusTooManyRequests, "rate-limited")
	if !strings.Contains(p.Detail, "api_key") {
		t.Errorf("detail %q", p.Detail)
	}
	// Another key has its own budget.
	mustStatus(t, e.do(t, req{apiKey: apiKeyB, body: `{"userId":"u3","applicationKey":"` + appB + `"}`}), http.StatusOK)
}

func TestPanicIsAnInternalError(t *testing.T) {
	e := newEnv(t, envOpts{store: panicStore{}})
	for i := range 2 {
		r := e.do(t, req{path: "/v1/registration-signatures", apiKey: apiKeyAll, body: `{"userId":"alice"}`})
		p := mustProblem(t, r, http.StatusInternalServerError, "internal")
		l := e.logLine(t, p.RequestID, "panic serving request")
		if l["level"] != "ERROR" || l["panic_type"] != "string" || !strings.Contains(l["stack"].(string), "panicStore") {
			t.Errorf("panic log line %v", l)
		}
		// The server keeps serving, on the same connection too.
		mustStatus(t, e.token(t, `{"userId":"alice"}`), http.StatusOK)
		if i == 0 {
			continue
		}
		if strings.Contains(string(e.logs.Bytes()), "panic-value-with-request-data") {
			t.Errorf("the panic value was logged")
		}
	}
	// The request's record has the 500 and audits the credential request
	// as refused.
	var n int
	for _, l := range e.logLines(t, "") {
		if l["msg"] == "credential" && l["status"] == float64(500) && l["outcome"] == "refused" && l["reason"] == "internal" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d credential records with status 500, outcome refused, reason internal; want 2", n)
	}
}
