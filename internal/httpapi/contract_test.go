package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	authserver "github.com/authserver-dev/authserver"
	"github.com/authserver-dev/authserver/internal/httpapi"
)

// contract is openapi.yaml loaded, validated, and routable.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(authserver.OpenAPI))
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, err
	}
	// The test servers listen on random ports: route on the path alone.
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	ref := doc.Components.Schemas["Problem"]
	if ref == nil || ref.Value == nil {
		return nil, errors.New("components.schemas.Problem is missing")
	}
	return &contract{doc: doc, router: router, problem: ref.Value}, nil
})

func mustContract(tb testing.TB) *contract {
	tb.Helper()
	c, err := loadContract()
	if err != nil {
		tb.Fatalf("openapi.yaml: %v", err)
	}
	return c
}

// isAdminPath reports whether path is served by the admin listener, which
// openapi.yaml does not describe (plain HTTP on a private address; for
// Prometheus, probes and profiling).
func isAdminPath(path string) bool {
	switch path {
	case "/metrics", "/healthz", "/readyz":
		return true
	}
	return strings.HasPrefix(path, "/debug/pprof/") || strings.HasPrefix(path, "/readyz/")
}

// checkResponse checks one response against openapi.yaml and the rules every
// response follows. Responses of documented operations go through
// openapi3filter.ValidateResponse with undocumented statuses refused;
// answers the router gives outside the documented operations (unknown path,
// wrong method) must still be problem+json valid against the Problem schema,
// and a CORS preflight must be an empty 204.
func checkResponse(tb testing.TB, req *http.Request, resp *http.Response, body []byte) {
	tb.Helper()
	c := mustContract(tb)
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		tb.Errorf("%s %s: no X-Request-Id", req.Method, req.URL.Path)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusInternalServerError {
		tb.Errorf("%s %s: status %d is in no contract", req.Method, req.URL.Path, resp.StatusCode)
	}
	if req.Method == http.MethodHead {
		// GET's headers without a body (RFC 9110 §9.3.2).
		if len(body) != 0 {
			tb.Errorf("HEAD %s: answered with a body", req.URL.Path)
		}
		return
	}
	isProblem := resp.Header.Get("Content-Type") == "application/problem+json"
	if resp.StatusCode >= 400 && !isProblem && !isAdminPath(req.URL.Path) {
		tb.Errorf("%s %s: error %d with Content-Type %q, want application/problem+json",
			req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	route, params, err := c.router.FindRoute(routingRequest(req))
	switch {
	case err == nil:
		in := &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 resp.StatusCode,
			Header:                 resp.Header,
			Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		out.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			tb.Errorf("%s %s: response %d breaks openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
		}
	case errors.Is(err, routers.ErrPathNotFound), errors.Is(err, routers.ErrMethodNotAllowed):
		switch {
		case isProblem:
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				tb.Errorf("%s %s: problem body is not JSON: %v", req.Method, req.URL.Path, err)
			} else if err := c.problem.VisitJSON(v); err != nil {
				tb.Errorf("%s %s: problem breaks the Problem schema: %v\nbody: %s", req.Method, req.URL.Path, err, body)
			}
		case req.Method == http.MethodOptions && resp.StatusCode == http.StatusNoContent:
			if len(body) != 0 {
				tb.Errorf("preflight answered with a body: %q", body)
			}
		case isAdminPath(req.URL.Path):
		default:
			tb.Errorf("%s %s: %d %q answer outside the contract", req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	default:
		tb.Fatalf("%s %s: routing in openapi.yaml: %v", req.Method, req.URL.Path, err)
	}

	if isProblem {
		var p httpapi.Problem
		if err := json.Unmarshal(body, &p); err != nil {
			tb.Errorf("problem body %q: %v", body, err)
			return
		}
		if p.Status != resp.StatusCode {
			tb.Errorf("problem status %d, HTTP status %d", p.Status, resp.StatusCode)
		}
		if p.RequestID != id {
			tb.Errorf("problem requestId %q, X-Request-Id %q", p.RequestID, id)
		}
		if !strings.HasPrefix(p.Type, httpapi.ProblemTypeBase) {
			tb.Errorf("problem type %q", p.Type)
		}
	}
}

// routingRequest is req as the router needs it: only method and path count.
func routingRequest(req *http.Request) *http.Request {
	r := req.Clone(context.Background())
	r.Host = ""
	r.URL.Scheme, r.URL.Host = "", ""
	return r
}

func TestOpenAPIDocument(t *testing.T) {
	c := mustContract(t)
	for _, op := range []struct{ method, path string }{
		{http.MethodPost, "/v1/registration-tokens"},
		{http.MethodPost, "/v1/registration-signatures"},
		{http.MethodGet, "/openapi.yaml"},
	} {
		if c.doc.Paths.Find(op.path) == nil || c.doc.Paths.Find(op.path).GetOperation(op.method) == nil {
			t.Errorf("openapi.yaml has no %s %s", op.method, op.path)
		}
	}
	// Every problem type the server can send is in the Problem schema's enum.
	enum := map[string]bool{}
	for _, v := range c.problem.Properties["type"].Value.Enum {
		enum[v.(string)] = true
	}
	for _, slug := range []string{
		"invalid-request", "unauthenticated", "forbidden", "unknown-application", "not-found",
		"method-not-allowed", "too-large", "unsupported-media-type", "rate-limited", "internal",
		"store-unavailable", "provider-unavailable",
	} {
		if !enum[httpapi.ProblemTypeBase+slug] {
			t.Errorf("problem type %s is not in openapi.yaml", slug)
		}
	}
}

func TestServeOpenAPI(t *testing.T) {
	e := newEnv(t, envOpts{})
	t.Run("byte for byte, no auth", func(t *testing.T) {
		r := e.do(t, req{method: http.MethodGet, path: "/openapi.yaml"})
		mustStatus(t, r, http.StatusOK)
		if !bytes.Equal(r.body, []byte(authserver.OpenAPI)) {
			t.Errorf("served spec differs from authserver.OpenAPI (%d vs %d bytes)", len(r.body), len(authserver.OpenAPI))
		}
		if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
			t.Errorf("Content-Type %q", ct)
		}
	})
	t.Run("credentials are ignored", func(t *testing.T) {
		r := e.do(t, req{method: http.MethodGet, path: "/openapi.yaml", authz: "Bearer not-a-token"})
		mustStatus(t, r, http.StatusOK)
	})
	t.Run("POST is refused", func(t *testing.T) {
		r := e.do(t, req{method: http.MethodPost, path: "/openapi.yaml", body: "{}"})
		mustProblem(t, r, http.StatusMethodNotAllowed, "method-not-allowed")
		if allow := r.header.Get("Allow"); allow != "GET, HEAD" {
			t.Errorf("Allow %q, want GET, HEAD", allow)
		}
	})
}

// recordingTB records the failures of a check instead of failing the test,
// to test the checker itself.
type recordingTB struct {
	testing.TB
	failures []string
}

type fatalStop struct{}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(fatalStop{})
}

func (r *recordingTB) run(f func(tb testing.TB)) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(fatalStop); !ok {
				panic(v)
			}
		}
	}()
	f(r)
}

// The contract check must catch responses that break openapi.yaml.
func TestCheckResponseCatchesViolations(t *testing.T) {
	problem := func(status int, typ string) string {
		return `{"type":"` + typ + `","title":"x","status":` + strconv.Itoa(status) + `,"requestId":"id-1"}`
	}
	tests := []struct {
		name, method, path string
		status             int
		header             map[string]string
		body               string
	}{
		{"token response without token", http.MethodPost, "/v1/registration-tokens", 200,
			map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
			`{"applicationKey":"a","userId":"alice","issuedAt":"2026-11-22T23:59:59Z","expiresAt":"2026-11-23T00:09:59Z"}`},
		{"token response with an extra field", http.MethodPost, "/v1/registration-tokens", 200,
			map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
			`{"token":"a.b.c","applicationKey":"a","userId":"alice","issuedAt":"2026-11-22T23:59:59Z","expiresAt":"2026-11-23T00:09:59Z","secret":"x"}`},
		{"cacheable credential", http.MethodPost, "/v1/registration-signatures", 200,
			map[string]string{"Content-Type": "application/json", "Cache-Control": "max-age=60"},
			`{"applicationKey":"a","userId":"alice","sequence":1,"signature":"7NYSnv8J5/aLOjlQALjGY+OmdD4="}`},
		{"sequence 0", http.MethodPost, "/v1/registration-signatures", 200,
			map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
			`{"applicationKey":"a","userId":"alice","sequence":0,"signature":"7NYSnv8J5/aLOjlQALjGY+OmdD4="}`},
		{"undocumented status", http.MethodPost, "/v1/registration-tokens", 418,
			map[string]string{"Content-Type": "application/problem+json"}, problem(418, "urn:authserver:problem:internal")},
		{"unknown problem type", http.MethodPost, "/v1/registration-tokens", 400,
			map[string]string{"Content-Type": "application/problem+json"}, problem(400, "urn:authserver:problem:oops")},
		{"problem status differs", http.MethodPost, "/v1/registration-tokens", 400,
			map[string]string{"Content-Type": "application/problem+json"}, problem(401, "urn:authserver:problem:invalid-request")},
		{"error as plain JSON", http.MethodPost, "/v1/registration-tokens", 400,
			map[string]string{"Content-Type": "application/json"}, `{"error":"bad"}`},
		{"Retry-After not a number", http.MethodPost, "/v1/registration-signatures", 503,
			map[string]string{"Content-Type": "application/problem+json", "Retry-After": "soon"}, problem(503, "urn:authserver:problem:store-unavailable")},
		{"404 outside the contract as HTML", http.MethodGet, "/nope", 404,
			map[string]string{"Content-Type": "text/html"}, "<h1>not found</h1>"},
		{"404 problem with an extra member", http.MethodGet, "/nope", 404,
			map[string]string{"Content-Type": "application/problem+json"},
			`{"type":"urn:authserver:problem:not-found","title":"x","status":404,"requestId":"id-1","stack":"main.go:1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr := httptest.NewRequest(tt.method, tt.path, nil)
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{"X-Request-Id": {"id-1"}}}
			for k, v := range tt.header {
				resp.Header.Set(k, v)
			}
			rec := &recordingTB{TB: t}
			rec.run(func(tb testing.TB) { checkResponse(tb, hr, resp, []byte(tt.body)) })
			if len(rec.failures) == 0 {
				t.Errorf("checkResponse accepted it")
			} else {
				t.Logf("caught: %.200s", rec.failures[0])
			}
		})
	}
}
