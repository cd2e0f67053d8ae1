// Package httpapi is authserver's HTTP surface: the public credential API
// (routes.go lists it all) and the admin listener (metrics, health, pprof).
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/metrics"
	"github.com/authserver-dev/authserver/internal/signer"
)

// SequenceStore hands out legacy-signature sequences; any error means no
// sequence was committed, and the API answers 503.
type SequenceStore interface {
	Next(ctx context.Context, app, user string) (uint64, error)
}

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

// State is everything a reload may replace: the config and what is built
// from it. Requests read it once, through an atomic pointer, so a reload
// never shows a request half of each.
type State struct {
	Config   *config.Config
	APIKeys  APIKeyAuthenticator
	Verifier TokenVerifier // nil: bearer tokens are not accepted

	// The rate limiters; nil when off. Only Retry-After is sent (on a
	// 429): X-RateLimit-* headers would cost header values on every
	// response and tell anyone the configured limits.
	userLimit, ipLimit, keyLimit, failLimit *keyedLimiter

	// apps indexes Config.Applications by key and defaultApp is the
	// default one, so that resolving a request's application costs the
	// same with 1 or 1,000 applications configured.
	apps       map[string]*config.Application
	defaultApp *config.Application
}

// indexApps fills st's application index from st.Config.
func (st *State) indexApps() *State {
	st.apps = make(map[string]*config.Application, len(st.Config.Applications))
	for i := range st.Config.Applications {
		a := &st.Config.Applications[i]
		st.apps[a.Key] = a
	}
	st.defaultApp = st.Config.DefaultApplication()
	return st
}

// application returns the configured application with key, or nil.
func (st *State) application(key string) *config.Application {
	if st.apps == nil {
		return st.Config.Application(key)
	}
	return st.apps[key]
}

// defaultApplication returns the default application, or nil.
func (st *State) defaultApplication() *config.Application {
	if st.apps == nil {
		return st.Config.DefaultApplication()
	}
	return st.defaultApp
}

// NewState builds the per-config parts (rate limiters) around cfg.
func NewState(cfg *config.Config, keys APIKeyAuthenticator, verifier TokenVerifier) *State {
	return (&State{
		Config: cfg, APIKeys: keys, Verifier: verifier,
		userLimit: newKeyedLimiter(cfg.RateLimits.User, time.Now),
		ipLimit:   newKeyedLimiter(cfg.RateLimits.IP, time.Now),
		keyLimit:  newKeyedLimiter(cfg.RateLimits.APIKey, time.Now),
		failLimit: newKeyedLimiter(cfg.RateLimits.IPFailedAuth, time.Now),
	}).indexApps()
}

// Options are the Server's dependencies, all passed in.
type Options struct {
	State   *State
	Signer  *signer.Signer
	Store   SequenceStore
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
	Checks  []Check
	Pprof   bool
	Spec    []byte // openapi.yaml, served at /openapi.yaml
}

// Server serves both listeners' handlers.
type Server struct {
	st     atomic.Pointer[State]
	signer *signer.Signer
	store  SequenceStore
	m      *metrics.Metrics
	log    *slog.Logger
	now    func() time.Time
	checks []Check
	passed []atomic.Bool // per check: a Startup check has passed once
	pprof  bool
	spec   []byte
	ids    *idSource
	routes chi.Routes // the public router, set by Public
}

// New returns a Server; Public and Admin give its two handlers.
func New(o Options) *Server {
	s := &Server{
		signer: o.Signer, store: o.Store, m: o.Metrics, log: o.Logger, now: o.Now,
		checks: o.Checks, pprof: o.Pprof, spec: o.Spec, ids: newIDSource(),
		passed: make([]atomic.Bool, len(o.Checks)),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.st.Store(o.State)
	s.initMetrics()
	return s
}

// SetState swaps in a reloaded configuration; requests in flight finish with
// the state they started with.
func (s *Server) SetState(st *State) { s.st.Store(st) }

func (s *Server) state() *State { return s.st.Load() }

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
