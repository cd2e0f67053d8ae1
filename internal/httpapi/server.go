// Package httpapi is authserver's HTTP surface: the public credential API
// (routes.go lists it all) and the admin listener (metrics, health, pprof).
package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/core"
	"github.com/authserver-dev/authserver/internal/metrics"
)

// APIKeyAuthenticator checks a trusted backend's X-API-Key.
type APIKeyAuthenticator interface {
	Authenticate(key string) (auth.Principal, error)
}

// TokenVerifier checks an end user's identity token.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (auth.Principal, error)
}

// Check is one readiness check, served at /readyz/<Name> and listed by
// /readyz?verbose=1.
//
// A Startup check is a condition of having started (say, each identity
// provider's keys loaded once): /readyz fails until it has passed, and once
// it has passed it is not run for /readyz again. Every other check is a
// shared dependency (the sequence store, the identity providers): /readyz
// does not fail for it, since every replica shares the outage and a balancer
// that dropped them all would also stop the JWTs that still work;
// /readyz/<Name> does, for operators who want to route on it.
type Check struct {
	Name    string
	Run     func(ctx context.Context) error
	Startup bool
}

// State is everything a reload may replace, built by internal/app from the
// configuration. The first middleware loads it once per request and every
// later step reads that one (stateOf), so a reload never shows a request
// half of each. It is immutable once passed to the Server.
type State struct {
	Issuer   *core.Issuer // the policy, with the applications and the per-user limit
	APIKeys  APIKeyAuthenticator
	Verifier TokenVerifier // nil: bearer tokens are not accepted

	// CORSOrigins are the browser origins allowed to call the public API.
	CORSOrigins []string

	// The rate limiters of the transport; nil when off. Only Retry-After is
	// sent (on a 429): X-RateLimit-* headers would cost header values on
	// every response and tell anyone the configured limits.
	IPLimit, APIKeyLimit, FailedAuthLimit *Limiter
}

// Options are the Server's dependencies, all passed in.
type Options struct {
	State   *State
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Records, when set, receives each request's info record as a JSON
	// line formatted by hand (record.go), byte for byte what Logger's
	// JSONHandler would write; it must be the writer behind that handler.
	// Nil: records go through Logger (the text format).
	Records io.Writer
	Now     func() time.Time
	Checks  []Check
	Pprof   bool
	Spec    []byte // openapi.yaml, served at /openapi.yaml
	// TrustedProxies may set X-Forwarded-For; fixed at start (a change
	// needs a restart).
	TrustedProxies []netip.Prefix
}

// Server serves both listeners' handlers.
type Server struct {
	st      atomic.Pointer[State]
	m       *metrics.Metrics
	log     *slog.Logger
	records *jsonRecords // nil: through log
	now     func() time.Time
	checks  []Check
	passed  []atomic.Bool // per check: a Startup check has passed once
	pprof   bool
	spec    []byte
	ids     *idSource
	routes  chi.Routes // the public router, set by Public
	proxies []netip.Prefix
}

// New returns a Server; Public and Admin give its two handlers.
func New(o Options) *Server {
	s := &Server{
		m: o.Metrics, proxies: o.TrustedProxies, log: o.Logger, now: o.Now,
		checks: o.Checks, pprof: o.Pprof, spec: o.Spec, ids: newIDSource(),
		passed: make([]atomic.Bool, len(o.Checks)),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.Records != nil {
		s.records = newJSONRecords(o.Records)
	}
	s.st.Store(o.State)
	s.initMetrics()
	return s
}

// SetState swaps in a reloaded configuration; requests in flight finish with
// the state they started with.
func (s *Server) SetState(st *State) { s.st.Store(st) }

// State returns the current state (for /readyz and tests); a request uses
// the one its first middleware loaded (stateOf).
func (s *Server) State() *State { return s.st.Load() }

// Handler helpers for plain responses.
func notFound(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, newError(http.StatusNotFound, "not-found", "Not found", "no such endpoint"))
	}
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires;
// chi sets it only in its own default handler, so it is rebuilt from routes.
func methodNotAllowed(s *Server, routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
			http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) ||
				m == http.MethodHead && routes.Match(chi.NewRouteContext(), http.MethodGet, r.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, newError(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
			"this endpoint does not accept "+r.Method))
	}
}
