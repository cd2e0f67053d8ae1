package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

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
		w.code = 200
	}
	return len(p), nil
}

func cpuNow() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func BenchmarkLeanMint(b *testing.B) {
	r := chi.NewRouter()
	r.Post("/v1/registration-tokens", mint("bench-app", []byte("0123456789abcdef0123456789abcdef"), 10*time.Minute))
	type prepared struct {
		r    *http.Request
		body []byte
	}
	reqs := make([]prepared, 64)
	for i := range reqs {
		body := `{"userId":"user-` + strconv.Itoa(i) + `"}`
		hr := httptest.NewRequest(http.MethodPost, "/v1/registration-tokens", strings.NewReader(body))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("X-API-Key", "whatever-key-of-some-length-123456")
		reqs[i] = prepared{hr, []byte(body)}
	}
	w := &benchWriter{h: http.Header{}}
	var body bytes.Reader
	b.ReportAllocs()
	cpu := cpuNow()
	i := 0
	for b.Loop() {
		p := &reqs[i%len(reqs)]
		hr := *p.r
		body.Reset(p.body)
		hr.Body = io.NopCloser(&body)
		clear(w.h)
		w.code = 0
		r.ServeHTTP(w, &hr)
		if w.code != 200 {
			b.Fatal(w.code)
		}
		i++
	}
	b.ReportMetric(float64(cpuNow()-cpu)/float64(i), "cpu-ns/op")
}
