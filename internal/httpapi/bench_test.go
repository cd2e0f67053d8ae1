package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// benchTokens runs POST /v1/registration-tokens through the public handler
// in-process (middleware, authentication, signing, logging to a discarded
// JSON handler), rate limits off. setup prepares request i's headers and
// body. The first response goes through checkResponse, outside the timing.
func benchTokens(b *testing.B, e *env, setup func(i int, h http.Header) string) {
	b.Helper()
	newReq := func(i int) *http.Request {
		h := http.Header{}
		body := setup(i, h)
		hr := httptest.NewRequest(http.MethodPost, "/v1/registration-tokens", strings.NewReader(body))
		for k, v := range h {
			hr.Header[k] = v
		}
		if body != "" {
			hr.Header.Set("Content-Type", "application/json")
		}
		return hr
	}
	r := serveInProcess(b, e, newReq(0))
	mustStatus(b, r, http.StatusOK)

	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.public.ServeHTTP(rec, newReq(i))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		i++
	}
}

func BenchmarkTokenViaAPIKey(b *testing.B) { benchAPIKey(b, envOpts{}, "") }

// BenchmarkTokenViaAPIKeyLimited is BenchmarkTokenViaAPIKey with the API
// key and per-user rate limits on (far above the rate reached), as served.
func BenchmarkTokenViaAPIKeyLimited(b *testing.B) {
	benchAPIKey(b, envOpts{perUser: "1000000/s", perAPIKey: "1000000/s"}, "")
}

// The bearer benchmarks send 64 users' tokens in turn. Without a suffix the
// verifier's token cache is off, so every request checks a signature (the
// figures from before the cache); Cached is the default cache, where every
// request after the first 64 is a hit.
func BenchmarkTokenViaRS256(b *testing.B)       { benchBearer(b, "RS256", envOpts{tokenCacheSize: -1}) }
func BenchmarkTokenViaRS256Cached(b *testing.B) { benchBearer(b, "RS256", envOpts{}) }

func BenchmarkTokenViaES256(b *testing.B)       { benchBearer(b, "ES256", envOpts{tokenCacheSize: -1}) }
func BenchmarkTokenViaES256Cached(b *testing.B) { benchBearer(b, "ES256", envOpts{}) }

// benchAPIKey sends 64 users' requests in turn with the API key of every
// application, on a server made with o; app, unless empty, is named in the
// request body.
func benchAPIKey(b *testing.B, o envOpts, app string) {
	o.discardLogs = true
	e := newEnv(b, o)
	appField := ""
	if app != "" {
		appField = `,"applicationKey":"` + app + `"`
	}
	users := make([]string, 64)
	for i := range users {
		users[i] = `{"userId":"user-` + strconv.Itoa(i) + `"` + appField + `}`
	}
	benchTokens(b, e, func(i int, h http.Header) string {
		h.Set("X-API-Key", apiKeyAll)
		return users[i%len(users)]
	})
}

// benchBearer sends 64 users' identity tokens signed with alg in turn, on a
// server made with o.
func benchBearer(b *testing.B, alg string, o envOpts) {
	o.discardLogs = true
	e := newEnv(b, o)
	authz := make([]string, 64)
	for i := range authz {
		authz[i] = "Bearer " + e.userToken(alg, "user-"+strconv.Itoa(i))
	}
	benchTokens(b, e, func(i int, h http.Header) string {
		h.Set("Authorization", authz[i%len(authz)])
		return ""
	})
}

// BenchmarkTokenWide is the whole handler chain with 1,000 more
// applications, 1,000 more API keys or 100 more identity providers
// configured than the request uses, next to the usual configuration in the
// same run: the cost must not grow with the configuration. The API-key
// requests name the last usual application, the one a scan by key would
// reach last.
func BenchmarkTokenWide(b *testing.B) {
	viaKey := func(o envOpts) func(b *testing.B) {
		return func(b *testing.B) { benchAPIKey(b, o, appNoSig) }
	}
	viaBearer := func(o envOpts) func(b *testing.B) {
		return func(b *testing.B) { benchBearer(b, "RS256", o) }
	}
	b.Run("usual/api-key", viaKey(envOpts{}))
	b.Run("apps=+1000/api-key", viaKey(envOpts{extraApps: 1000}))
	b.Run("keys=+1000/api-key", viaKey(envOpts{extraKeys: 1000}))
	b.Run("usual/bearer", viaBearer(envOpts{}))
	b.Run("idps=+100/bearer", viaBearer(envOpts{extraIdPs: 100}))
}
