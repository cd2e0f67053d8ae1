package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authserver-dev/authserver/internal/httpapi"
)

// serveInProcess runs one request through the public handler without a
// network, for fuzzing and benchmarks, and checks the response against the
// contract like every other test.
func serveInProcess(tb testing.TB, e *env, hr *http.Request) res {
	tb.Helper()
	rec := httptest.NewRecorder()
	e.public.ServeHTTP(rec, hr)
	resp := rec.Result()
	body := rec.Body.Bytes()
	checkResponse(tb, hr, resp, body)
	return res{status: resp.StatusCode, header: resp.Header, body: body}
}

// mustNoServerError checks a fuzzed response: never a 5xx, and either a
// credential or a problem+json body.
func mustNoServerError(tb testing.TB, r res) {
	tb.Helper()
	if r.status >= 500 {
		tb.Fatalf("server error %s", r)
	}
	switch ct := r.header.Get("Content-Type"); {
	case r.status == http.StatusOK && ct == "application/json":
		if !json.Valid(r.body) {
			tb.Fatalf("200 with invalid JSON %q", r.body)
		}
	case r.status >= 400 && ct == "application/problem+json":
		var p httpapi.Problem
		if err := json.Unmarshal(r.body, &p); err != nil || p.Status != r.status || !strings.HasPrefix(p.Type, httpapi.ProblemTypeBase) {
			tb.Fatalf("bad problem %s (%v)", r, err)
		}
	default:
		tb.Fatalf("unexpected answer %s with Content-Type %q", r, ct)
	}
}

func FuzzDecodeTokenRequest(f *testing.F) {
	for _, seed := range []struct{ body, ct string }{
		{`{"userId":"alice"}`, "application/json"},
		{`{"userId":"alice","ttlSeconds":900,"instanceTtlSeconds":172800}`, "application/json; charset=utf-8"},
		{`{"userId":"alice","applicationKey":"app-b"}`, "application/json"},
		{`{"userId":"alice","applicationKey":"app-nosig"}`, "application/json"},
		{`{"userId":42}`, "application/json"},
		{`{"ttlSeconds":"60"}`, "application/json"},
		{`{"userId":"alice","x":1}`, "application/json"},
		{`{"userId":"alice"}{}`, "application/json"},
		{`{"userId":"alice"} ]`, "application/json"},
		{`[]`, "application/json"},
		{`null`, "application/json"},
		{`"alice"`, "application/json"},
		{`{"userId":"a\u0000b"}`, "application/json"},
		{`{"ttlSeconds":1e400,"userId":"alice"}`, "application/json"},
		{`{"ttlSeconds":9223372036854775807,"userId":"alice"}`, "application/json"},
		{`{"instanceTtlSeconds":-1,"userId":"alice"}`, "application/json"},
		{`{"USERID":"alice"}`, "application/json"},
		{`{"userId":"alice"}`, "text/plain"},
		{`{"userId":"alice"}`, ""},
		{`{"userId":"alice"}`, "application/json; charset="},
		{"", "application/json"},
		{"\xff\xfe{", "application/json"},
		{strings.Repeat("[", 10000), "application/json"},
		{`{"` + strings.Repeat("k", 200) + `":1}`, "application/json"},
	} {
		f.Add([]byte(seed.body), seed.ct)
	}
	e := newEnv(f, envOpts{discardLogs: true})
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		hr := httptest.NewRequest(http.MethodPost, "/v1/registration-tokens", bytes.NewReader(body))
		hr.Header.Set("X-API-Key", apiKeyAll)
		hr.Header.Set("Content-Type", contentType)
		r := serveInProcess(t, e, hr)
		mustNoServerError(t, r)
		if r.status == http.StatusOK {
			tr := mustDecode[httpapi.TokenResponse](t, r)
			if tr.Token == "" || tr.UserID == "" {
				t.Fatalf("200 without a token: %s", r)
			}
		}
	})
}

func FuzzBearerHeader(f *testing.F) {
	e := newEnv(f, envOpts{discardLogs: true})
	good := e.userToken("RS256", "alice")
	for _, seed := range []string{
		"Bearer " + good,
		"bearer " + e.userToken("ES256", "bob"),
		"Bearer " + e.hsToken(f, "carol"),
		"Bearer " + good + " extra",
		"Bearer  " + good,
		"Bearer " + good[:len(good)-3],
		"Bearer " + strings.Replace(good, ".", "..", 1),
		"Bearer",
		"Bearer ",
		"Basic YWxpY2U6c2VjcmV0",
		"Bearer a.b.c",
		"Bearer e30.e30.",
		"Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
		"Bearer eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiZXhwIl19.e30.x",
		"Bearer " + strings.Repeat("A", 20000),
		"",
		"\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, authz string) {
		hr := httptest.NewRequest(http.MethodPost, "/v1/registration-tokens", nil)
		hr.Header.Set("Authorization", authz)
		r := serveInProcess(t, e, hr)
		mustNoServerError(t, r)
		if r.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 with WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
		if r.status == http.StatusOK && mustDecode[httpapi.TokenResponse](t, r).UserID == "" {
			t.Fatalf("200 without a user: %s", r)
		}
	})
}
