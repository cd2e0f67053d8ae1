package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// benchTokens runs POST /v1/registration-tokens through the public handler
// in-process (middleware, authentication, signing, logging to a discarded
// JSON handler), rate limits off. setup prepares request i's headers and
// body. The first response goes through checkResponse, outside the timing.
// The loop reuses 64 prepared requests and one response writer, so that
// what it allocates is the server's own work (httptest.NewRequest would add
// a 4 KiB bufio.Reader per request, which net/http keeps per connection).
func benchTokens(b *testing.B, e *env, setup func(i int, h http.Header) string) {
	b.Helper()
	type prepared struct {
		r    *http.Request
		body []byte
	}
	reqs := make([]prepared, 64)
	for i := range reqs {
		h := http.Header{}
		body := setup(i, h)
		hr := httptest.NewRequest(http.MethodPost, "/v1/registration-tokens", strings.NewReader(body))
		for k, v := range h {
			hr.Header[k] = v
		}
		if body != "" {
			hr.Header.Set("Content-Type", "application/json")
		}
		reqs[i] = prepared{hr, []byte(body)}
	}
	r := serveInProcess(b, e, reqs[0].r.Clone(context.Background()))
	mustStatus(b, r, http.StatusOK)

	w := &benchWriter{h: http.Header{}}
	var body bytes.Reader
	b.ReportAllocs()
	cpu := processCPU()
	i := 0
	for b.Loop() {
		p := &reqs[i%len(reqs)]
		hr := *p.r
		body.Reset(p.body)
		hr.Body = io.NopCloser(&body)
		clear(w.h)
		w.code = 0
		e.public.ServeHTTP(w, &hr)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
		i++
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(i), "cpu-ns/op")
}

// benchWriter is the least http.ResponseWriter: it keeps the status and
// drops the body.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}

// processCPU is the process's user+system CPU time in nanoseconds (GC
// included). Per operation it is steadier than ns/op on a shared machine,
// where other processes stretch the wall time but not our CPU time.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
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
