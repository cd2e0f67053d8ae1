package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
)

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.spec)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{\"status\":\"ok\"}\n"))
}

// checkTimeout bounds one readiness request's checks.
const checkTimeout = 2 * time.Second

// checkResult is one check's outcome.
type checkResult struct {
	name     string
	err      error
	required bool // /readyz fails while it fails
}

// runChecks runs the checks at idx concurrently with one deadline. A Startup
// check that passed once is not run again: being started does not end.
func (s *Server) runChecks(ctx context.Context, idx []int) []checkResult {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	out := make([]checkResult, len(idx))
	var wg sync.WaitGroup
	for j, i := range idx {
		c := s.checks[i]
		out[j] = checkResult{name: c.Name, required: c.Startup}
		if c.Startup && s.passed[i].Load() {
			continue
		}
		wg.Go(func() {
			err := c.Run(ctx)
			if err == nil && c.Startup {
				s.passed[i].Store(true)
			}
			out[j].err = err
		})
	}
	wg.Wait()
	return out
}

// handleReadyz answers the Kubernetes API server's way: "ok" (200) once
// started; with ?verbose=1 one "[+]name ok" or "[-]name failed: reason" line
// per check, dependencies included, and a summary line. Only Startup checks
// decide the status (see Check).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	verbose := r.URL.Query().Has("verbose") && r.URL.Query().Get("verbose") != "0"
	var idx []int
	for i, c := range s.checks {
		if verbose || c.Startup {
			idx = append(idx, i)
		}
	}
	results := s.runChecks(r.Context(), idx)
	ok := true
	for _, res := range results {
		ok = ok && (res.err == nil || !res.required)
	}
	var b strings.Builder
	if verbose || !ok {
		for _, res := range results {
			switch {
			case res.err == nil:
				b.WriteString("[+]" + res.name + " ok\n")
			case res.required:
				b.WriteString("[-]" + res.name + " failed: " + oneLine(res.err.Error()) + "\n")
			default:
				b.WriteString("[-]" + res.name + " failed (does not fail /readyz): " + oneLine(res.err.Error()) + "\n")
			}
		}
	}
	code := http.StatusOK
	switch {
	case !ok:
		b.WriteString("readyz check failed\n")
		code = http.StatusServiceUnavailable
	case verbose:
		b.WriteString("readyz check passed\n")
	default:
		b.WriteString("ok\n")
	}
	writeReadiness(w, code, b.String())
}

// handleReadyzCheck serves /readyz/<name>: 200 "ok" while that one check
// passes, 503 while it fails, 404 for an unknown name.
func (s *Server) handleReadyzCheck(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "check")
	for i, c := range s.checks {
		if c.Name != name {
			continue
		}
		res := s.runChecks(r.Context(), []int{i})[0]
		if res.err != nil {
			writeReadiness(w, http.StatusServiceUnavailable, "[-]"+name+" failed: "+oneLine(res.err.Error())+"\n")
			return
		}
		writeReadiness(w, http.StatusOK, "ok\n")
		return
	}
	s.writeError(w, r, newError(http.StatusNotFound, "not-found", "Not found", "no readiness check named "+name))
}

func writeReadiness(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// oneLine keeps a check's error on its line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
