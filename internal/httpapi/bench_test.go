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

func BenchmarkTokenViaAPIKey(b *testing.B) {
	e := newEnv(b, envOpts{discardLogs: true})
	users := make([]string, 64)
	for i := range users {
		users[i] = `{"userId":"user-` + strconv.Itoa(i) + `"}`
	}
	benchTokens(b, e, func(i int, h http.Header) string {
		h.Set("X-API-Key", apiKeyAll)
		return users[i%len(users)]
	})
}

// BenchmarkTokenViaAPIKeyLimited is BenchmarkTokenViaAPIKey with the API
// key and per-user rate limits on (far above the rate reached), as served.
func BenchmarkTokenViaAPIKeyLimited(b *testing.B) {
	e := newEnv(b, envOpts{discardLogs: true, perUser: "1000000/s", perAPIKey: "1000000/s"})
	users := make([]string, 64)
	for i := range users {
		users[i] = `{"userId":"user-` + strconv.Itoa(i) + `"}`
	}
	benchTokens(b, e, func(i int, h http.Header) string {
		h.Set("X-API-Key", apiKeyAll)
		return users[i%len(users)]
	})
}

// The bearer benchmarks send 64 users' tokens in turn. Without a suffix the
// verifier's token cache is off, so every request checks a signature (the
// figures from before the cache); Cached is the default cache, where every
// request after the first 64 is a hit.
func BenchmarkTokenViaRS256(b *testing.B)       { benchBearer(b, "RS256", -1) }
func BenchmarkTokenViaRS256Cached(b *testing.B) { benchBearer(b, "RS256", 0) }

func BenchmarkTokenViaES256(b *testing.B)       { benchBearer(b, "ES256", -1) }
func BenchmarkTokenViaES256Cached(b *testing.B) { benchBearer(b, "ES256", 0) }

func benchBearer(b *testing.B, alg string, tokenCacheSize int) {
	e := newEnv(b, envOpts{discardLogs: true, tokenCacheSize: tokenCacheSize})
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
	users := make([]string, 64)
	for i := range users {
		users[i] = `{"userId":"user-` + strconv.Itoa(i) + `","applicationKey":"` + appNoSig + `"}`
	}
	viaKey := func(o envOpts) func(b *testing.B) {
		return func(b *testing.B) {
			o.discardLogs = true
			e := newEnv(b, o)
			benchTokens(b, e, func(i int, h http.Header) string {
				h.Set("X-API-Key", apiKeyAll)
				return users[i%len(users)]
			})
		}
	}
	viaBearer := func(o envOpts) func(b *testing.B) {
		return func(b *testing.B) {
			o.discardLogs = true
			e := newEnv(b, o)
			authz := make([]string, 64)
			for i := range authz {
				authz[i] = "Bearer " + e.userToken("RS256", "user-"+strconv.Itoa(i))
			}
			benchTokens(b, e, func(i int, h http.Header) string {
				h.Set("Authorization", authz[i%len(authz)])
				return ""
			})
		}
	}
	b.Run("usual/api-key", viaKey(envOpts{}))
	b.Run("apps=+1000/api-key", viaKey(envOpts{extraApps: 1000}))
	b.Run("keys=+1000/api-key", viaKey(envOpts{extraKeys: 1000}))
	b.Run("usual/bearer", viaBearer(envOpts{}))
	b.Run("idps=+100/bearer", viaBearer(envOpts{extraIdPs: 100}))
}
