package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

type ctxKey int

const (
	requestKey  ctxKey = iota + 1 // *requestInfo
	clientIPKey                   // string: the peer, when X-Forwarded-For gave no address
	ipRefundKey                   // *ipRefund
)

// requestInfo is what the first middleware (withRequestID) settles for the
// whole request, in one context value: its id and the State, loaded once.
type requestInfo struct {
	id string
	st *State
}

// requestID returns the id the requestID middleware gave this request.
func requestID(ctx context.Context) string {
	if ri, _ := ctx.Value(requestKey).(*requestInfo); ri != nil {
		return ri.id
	}
	return ""
}

// stateOf returns the State the first middleware loaded for r: every step
// of one request sees the same configuration, even across a reload.
func stateOf(r *http.Request) *State {
	ri, _ := r.Context().Value(requestKey).(*requestInfo)
	return ri.st
}

// idSource makes request ids: a random per-process prefix plus a counter, so
// an id costs no syscall and is unique across replicas.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &idSource{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (s *idSource) next() string {
	return s.prefix + strconv.FormatUint(s.n.Add(1), 36)
}

// withRequestID takes a well-formed X-Request-Id from the caller (so a
// client's id shows up in our logs) or makes one, and echoes it. It is the
// first middleware: it also loads the State for the request (stateOf).
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = s.ids.next()
		}
		w.Header().Set("X-Request-Id", id)
		ri := &requestInfo{id: id, st: s.State()}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey, ri)))
	})
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// recoverer turns a panic into a 500 problem. The log line carries the panic
// value's type and the stack, not the value: a value could hold request data.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
					slog.String("request_id", requestID(r.Context())),
					slog.String("panic_type", fmt.Sprintf("%T", v)),
					slog.String("stack", string(debug.Stack())))
				writeProblem(w, r, errInternal)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// observe records the request metrics and writes the access log line. The
// route label is chi's pattern, never the raw path.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		d := s.now().Sub(start)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		} else if p := s.routeOf(r.URL.Path); p != "" {
			// A 405 or a CORS preflight: the path is a route's, the
			// method is not (or was answered before routing).
			route = p
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		method := r.Method
		if !knownMethod(method) {
			method = "other"
		}
		s.m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		s.m.HTTPDuration.WithLabelValues(route, method).Observe(d.Seconds())
		if s.log.Enabled(r.Context(), slog.LevelInfo) {
			attrs := []slog.Attr{
				slog.String("request_id", requestID(r.Context())),
				slog.String("method", method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(d.Nanoseconds())/1e6),
				slog.String("client_ip", clientIP(r)),
				slog.Int("bytes", ww.BytesWritten()),
			}
			if why := fallbackReason(r); why != "" {
				attrs = append(attrs, slog.String("client_ip_fallback", why))
			}
			s.logRequestLine(r.Context(), "request", attrs...)
		}
	})
}

// routeOf returns the pattern of the public route path belongs to under any
// method, or "".
func (s *Server) routeOf(path string) string {
	if s.routes == nil {
		return ""
	}
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		if p := s.routes.Find(chi.NewRouteContext(), m, path); p != "" {
			return p
		}
	}
	return ""
}

// logRequestLine writes one of the two info lines every request produces
// (the access line above and the audit line of credentials.go). It is
// Logger.LogAttrs without the caller's program counter, which costs a
// runtime.Callers per line and is never printed (the handler adds no
// source).
func (s *Server) logRequestLine(ctx context.Context, msg string, attrs ...slog.Attr) {
	h := s.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, msg, 0)
	rec.AddAttrs(attrs...)
	_ = h.Handle(ctx, rec)
}

// fallbackReason is why the client address is the peer despite trusted
// proxies, or "" when it is not.
func fallbackReason(r *http.Request) string {
	why, _ := r.Context().Value(clientIPFallbackKey{}).(string)
	return why
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// clientIP is the address chi's client-IP middleware settled on (the peer,
// or the first untrusted hop of X-Forwarded-For behind trusted proxies), or
// the peer when X-Forwarded-For gave none (peerFallback).
func clientIP(r *http.Request) string {
	if ip := middleware.GetClientIP(r.Context()); ip != "" {
		return ip
	}
	if ip, _ := r.Context().Value(clientIPKey).(string); ip != "" {
		return ip
	}
	return "unknown" // RemoteAddr is not an address: never from net/http
}

// peerFallback runs after chi's ClientIPFromXFF. When the request came
// through a trusted proxy but X-Forwarded-For named no untrusted address
// (missing, unparsable, or every hop trusted), the client is taken to be the
// peer, the proxy itself: sharing one bucket per proxy is better than one
// "unknown" bucket for everybody. Which case it was goes in the access log
// line (client_ip_fallback).
func peerFallback(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if middleware.GetClientIP(r.Context()) == "" {
			why := "xff_all_trusted"
			switch xff := r.Header.Values("X-Forwarded-For"); {
			case len(xff) == 0:
				why = "xff_missing"
			case !xffParses(xff):
				why = "xff_unparsable"
			}
			ctx := context.WithValue(r.Context(), clientIPKey, peerAddr(r.RemoteAddr))
			ctx = context.WithValue(ctx, clientIPFallbackKey{}, why)
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

type clientIPFallbackKey struct{}

// peerAddr is RemoteAddr without the port.
func peerAddr(remote string) string {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().String()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().String()
	}
	return "unknown"
}

// xffParses reports whether every X-Forwarded-For entry is an address.
func xffParses(values []string) bool {
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			e = strings.TrimSpace(e)
			if _, err := netip.ParseAddr(e); err != nil {
				if _, err := netip.ParseAddrPort(e); err != nil {
					return false
				}
			}
		}
	}
	return true
}

// ipRefund gives back the per-IP request a credential request spent, once
// it authenticated with an API key (backends are limited per key).
type ipRefund struct{ refund func() }

func refundIP(r *http.Request) {
	if rf, _ := r.Context().Value(ipRefundKey).(*ipRefund); rf != nil && rf.refund != nil {
		rf.refund()
		rf.refund = nil
	}
}

// limitIP applies the per-IP limit to every request of the public API,
// before anything else looks at it: the credential endpoints, the spec,
// unknown paths. A request that then authenticates with a valid API key
// gets its share back (refundIP).
func (s *Server) limitIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := stateOf(r).IPLimit
		if l == nil {
			next.ServeHTTP(w, r)
			return
		}
		refund, retry := l.reserve(clientIP(r))
		if refund == nil {
			s.writeError(w, r, rateLimited("ip", "the ip rate limit", retry))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ipRefundKey, &ipRefund{refund: refund})))
	})
}

// securityHeaders sets headers every response gets; HSTS only over TLS.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.TLS != nil {
			v := make([]string, 2) // one allocation for both, as in writeCredential
			v[0], v[1] = "nosniff", "max-age=63072000; includeSubDomains"
			h["X-Content-Type-Options"], h["Strict-Transport-Security"] = v[0:1:1], v[1:2:2]
		} else {
			h.Set("X-Content-Type-Options", "nosniff")
		}
		next.ServeHTTP(w, r)
	})
}

// cors answers preflights and marks responses for allow-listed browser
// origins. Requests without Origin (native apps, curl, backends) pass
// untouched. API keys are for backends, so X-API-Key is not an allowed
// browser header. A preflight for a path that does not exist is a 404, as
// the request itself would be. routes is the router, to tell.
func (s *Server) cors(routes chi.Routes) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			allowed := stateOf(r).originAllowed(origin)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				if !routes.Match(chi.NewRouteContext(), http.MethodPost, r.URL.Path) &&
					!routes.Match(chi.NewRouteContext(), http.MethodGet, r.URL.Path) {
					notFound(s)(w, r)
					return
				}
				if allowed {
					h.Set("Access-Control-Allow-Origin", origin)
					h.Set("Access-Control-Allow-Methods", "POST")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
					h.Set("Access-Control-Max-Age", "600")
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if allowed {
				h.Set("Access-Control-Allow-Origin", origin)
				// Browsers hide every other response header from scripts:
				// a web client needs the challenge of a 401 and the wait
				// of a 429 or 503.
				h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, WWW-Authenticate")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// originAllowed reports whether origin may call the API from a browser.
// "null" never may, not even with "*": it is the origin of sandboxed
// iframes, data: and file: pages, which anyone can create.
func (st *State) originAllowed(origin string) bool {
	if strings.EqualFold(origin, "null") {
		return false
	}
	for _, o := range st.CORSOrigins {
		if o == "*" || strings.EqualFold(o, origin) || anyPortMatch(o, origin) {
			return true
		}
	}
	return false
}

// anyPortMatch reports whether pattern ends in ":*" (any port, as `dev`
// allows for http://localhost:*) and origin is that scheme and host with a
// port of 1-5 digits.
func anyPortMatch(pattern, origin string) bool {
	prefix, ok := strings.CutSuffix(pattern, ":*")
	if !ok || len(origin) <= len(prefix)+1 || !strings.EqualFold(origin[:len(prefix)], prefix) || origin[len(prefix)] != ':' {
		return false
	}
	port := origin[len(prefix)+1:]
	if len(port) > 5 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
