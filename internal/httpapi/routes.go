package httpapi

import (
	"net/http"
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authserver-dev/authserver/internal/core"
)

// Public is the HTTPS listener's handler: the whole public surface.
func (s *Server) Public() http.Handler {
	r := chi.NewRouter()
	if len(s.proxies) > 0 {
		r.Use(s.clientIPFromXFF())
	}
	r.Use(s.front, s.cors, s.limitIP)
	r.Use(middleware.GetHead) // HEAD wherever GET is
	s.routes = r              // routeOf: observe labels 405s and preflights, cors answers them
	r.NotFound(notFound(s))
	r.MethodNotAllowed(methodNotAllowed(s, r))

	r.Post("/v1/registration-tokens", s.credential(core.CredentialJWT, s.handleRegistrationToken))
	r.Post("/v1/registration-signatures", s.credential(core.CredentialSignature, s.handleRegistrationSignature))
	r.Get("/openapi.yaml", s.handleOpenAPI)
	return r
}

// Admin is the admin listener's handler: metrics, health, and pprof when
// enabled. It is plain HTTP and meant for localhost or a private network.
func (s *Server) Admin() http.Handler {
	r := chi.NewRouter()
	r.Use(s.withRequestID, s.recoverer, middleware.GetHead)
	r.NotFound(notFound(s))
	r.MethodNotAllowed(methodNotAllowed(s, r))

	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.m.Registry, promhttp.HandlerOpts{Registry: s.m.Registry}))
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Get("/readyz/{check}", s.handleReadyzCheck)
	if s.pprof {
		r.HandleFunc("/debug/pprof/*", pprof.Index)
		r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		r.HandleFunc("/debug/pprof/profile", pprof.Profile)
		r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		r.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return r
}

// clientIPFromXFF finds the client address behind the configured trusted
// proxies in X-Forwarded-For (chi's middleware; front reads it). Without
// trusted proxies the client is the peer, which front takes itself. The
// proxy list is fixed at start: changing it needs a restart.
func (s *Server) clientIPFromXFF() func(http.Handler) http.Handler {
	prefixes := make([]string, len(s.proxies))
	for i, p := range s.proxies {
		prefixes[i] = p.String()
	}
	return middleware.ClientIPFromXFF(prefixes...)
}
