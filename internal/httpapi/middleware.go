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

const requestKey ctxKey = iota + 1 // *requestInfo

// requestInfo is what the first middleware (front) settles for the whole
// request, in one context value and one allocation: its id, the State
// (loaded once), the response's status and size, the client address when it
// fell back to the peer, the per-IP refund, and the credential decision the
// request's one log record reports.
type requestInfo struct {
	id    string
	st    *State
	start time.Time
	w     respWriter

	ip       string // the client address (clientIP)
	fallback string // why it is the peer behind a trusted proxy (client_ip_fallback), or ""
	refund   func() // gives back the per-IP request (limitIP), once

	call    call   // the credential endpoints' state (credential)
	outcome string // "issued" or "refused" once a credential was decided
	reason  string // the refusal's problem slug
}

func infoOf(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestKey).(*requestInfo)
	return ri
}

// requestID returns the id the first middleware gave this request.
func requestID(ctx context.Context) string {
	if ri := infoOf(ctx); ri != nil {
		return ri.id
	}
	return ""
}

// stateOf returns the State the first middleware loaded for r: every step
// of one request sees the same configuration, even across a reload.
func stateOf(r *http.Request) *State { return infoOf(r.Context()).st }

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
	var b [32]byte
	return string(strconv.AppendUint(append(b[:0], s.prefix...), s.n.Add(1), 36))
}

// respWriter remembers the status and size of the response, for the
// metrics and the log record.
type respWriter struct {
	http.ResponseWriter
	status, bytes int
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// front is the public API's first middleware (after chi's X-Forwarded-For
// one when proxies are trusted). It does in one step, with one context
// value, what every request needs: the request id (requestIDFor, echoed),
// the State loaded once, the client address, the security headers (HSTS
// only over TLS), a 500 problem for a panic, and at the end the request
// metrics and the request's one log record (logRecord).
func (s *Server) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &requestInfo{id: s.requestIDFor(r), st: s.State(), start: s.now()}
		ri.w.ResponseWriter = w
		h := w.Header()
		if r.TLS != nil {
			v := make([]string, 3) // one allocation for the three, as in writeCredential
			v[0], v[1], v[2] = ri.id, "nosniff", "max-age=63072000; includeSubDomains"
			h["X-Request-Id"], h["X-Content-Type-Options"], h["Strict-Transport-Security"] = v[0:1:1], v[1:2:2], v[2:3:3]
		} else {
			h.Set("X-Request-Id", ri.id)
			h.Set("X-Content-Type-Options", "nosniff")
		}
		switch {
		case len(s.proxies) == 0:
			ri.ip = peerAddr(r.RemoteAddr)
		default:
			// chi's ClientIPFromXFF ran before front (routes.go).
			if ri.ip = middleware.GetClientIP(r.Context()); ri.ip == "" {
				ri.ip, ri.fallback = peerAddr(r.RemoteAddr), fallbackReason(r)
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), requestKey, ri))
		defer s.finish(r, ri)
		next.ServeHTTP(&ri.w, r)
	})
}

// finish turns a panic into a 500 problem (panicked), then records the
// metrics and writes the log record.
func (s *Server) finish(r *http.Request, ri *requestInfo) {
	if v := recover(); v != nil {
		if ri.call.rec.Credential != "" && ri.outcome == "" {
			// A credential request that panicked is audited as refused.
			ri.outcome, ri.reason = "refused", errInternal.slug
		}
		if ri.w.status != 0 && v != http.ErrAbortHandler {
			// The response has begun and cannot become a problem: record
			// the failure, then have net/http drop the connection rather
			// than finish a truncated 200.
			s.logPanic(r, v)
			ri.w.status = http.StatusInternalServerError
			s.observe(r, ri)
			panic(http.ErrAbortHandler)
		}
		s.panicked(&ri.w, r, v)
	}
	s.observe(r, ri)
}

// panicked answers a recovered panic with a 500 problem; the log line
// carries the panic value's type and the stack, not the value (it could
// hold request data). http.ErrAbortHandler is net/http's, passed on.
func (s *Server) panicked(w http.ResponseWriter, r *http.Request, v any) {
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.logPanic(r, v)
	writeProblem(w, r, errInternal)
}

func (s *Server) logPanic(r *http.Request, v any) {
	s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
		slog.String("request_id", requestID(r.Context())),
		slog.String("panic_type", fmt.Sprintf("%T", v)),
		slog.String("stack", string(debug.Stack())))
}

// withRequestID is the admin listener's first middleware: the request id,
// no State (nothing there reads it), metrics or log record.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &requestInfo{id: s.requestIDFor(r)}
		w.Header().Set("X-Request-Id", ri.id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey, ri)))
	})
}

// requestIDFor is the caller's X-Request-Id when it is well-formed (so a
// client's id shows up in our logs), or a new one.
func (s *Server) requestIDFor(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); validRequestID(id) {
		return id
	}
	return s.ids.next()
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

// recoverer turns a panic into a 500 problem on the admin listener (front
// does it for the public one).
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				s.panicked(w, r, v)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// observe records the request metrics and writes the request's one log
// record. The route label is chi's pattern, never the raw path.
func (s *Server) observe(r *http.Request, ri *requestInfo) {
	d := s.now().Sub(ri.start)
	route := "unmatched"
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		route = rc.RoutePattern()
	} else if p := s.routeOf(r.URL.Path); p != "" {
		// A 405 or a CORS preflight: the path is a route's, the
		// method is not (or was answered before routing).
		route = p
	}
	status := ri.w.status
	if status == 0 {
		status = http.StatusOK
	}
	method := r.Method
	if !knownMethod(method) {
		method = "other"
	}
	s.m.HTTPRequests.WithLabelValues(route, method, statusLabel(status)).Inc()
	s.m.HTTPDuration.WithLabelValues(route, method).Observe(d.Seconds())
	s.logRecord(r.Context(), ri, method, route, status, d)
}

// logRecord writes the one info record of a request: "request" with the
// access fields, or for a credential decision "credential" with the access
// fields and the audit fields (the Issuer's record, who asked, the outcome).
// It names the caller and the user, never a token, secret or key. It is
// Logger.LogAttrs without the caller's program counter, which costs a
// runtime.Callers per record and is never printed (the handler adds no
// source).
func (s *Server) logRecord(ctx context.Context, ri *requestInfo, method, route string, status int, d time.Duration) {
	h := s.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	msg := "request"
	if ri.outcome != "" {
		msg = "credential"
	}
	var buf [17]slog.Attr // the most a record has: one AddAttrs, one allocation
	attrs := append(buf[:0],
		slog.String("request_id", ri.id),
		slog.String("method", method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Nanoseconds())/1e6),
		slog.String("client_ip", ri.ip),
		slog.Int("bytes", ri.w.bytes),
	)
	if ri.fallback != "" {
		attrs = append(attrs, slog.String("client_ip_fallback", ri.fallback))
	}
	if ri.outcome != "" {
		c := &ri.call
		attrs = append(attrs, slog.String("outcome", ri.outcome), slog.String("kind", c.rec.Credential))
		if c.principal.Kind != 0 {
			attrs = append(attrs, slog.String("principal_kind", c.principal.Kind.String()), slog.String("principal", c.principal.Name))
		}
		if c.rec.Application != "" {
			attrs = append(attrs, slog.String("application", c.rec.Application))
		}
		if c.rec.UserID != "" {
			attrs = append(attrs, slog.String("user_id", c.rec.UserID))
		}
		if c.rec.Detail.Key != "" {
			attrs = append(attrs, c.rec.Detail)
		}
		if ri.reason != "" {
			attrs = append(attrs, slog.String("reason", ri.reason))
		}
	}
	now := time.Now()
	if s.records != nil && s.records.write(now, msg, attrs) {
		return
	}
	rec := slog.NewRecord(now, slog.LevelInfo, msg, 0)
	rec.AddAttrs(attrs...)
	_ = h.Handle(ctx, rec)
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

// statusLabel is strconv.Itoa(status) without an allocation for the codes
// the API answers.
func statusLabel(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case http.StatusNoContent:
		return "204"
	case http.StatusBadRequest:
		return "400"
	case http.StatusUnauthorized:
		return "401"
	case http.StatusForbidden:
		return "403"
	case http.StatusNotFound:
		return "404"
	case http.StatusTooManyRequests:
		return "429"
	}
	return strconv.Itoa(status)
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// clientIP is the client's address as front settled it: the peer, or
// behind trusted proxies the first untrusted hop of X-Forwarded-For (chi's
// ClientIPFromXFF), or the proxy itself when X-Forwarded-For named none.
func clientIP(r *http.Request) string { return infoOf(r.Context()).ip }

// fallbackReason says why the client address is the peer although the
// request came through a trusted proxy: its X-Forwarded-For named no
// untrusted address (missing, unparsable, or every hop trusted). Sharing one
// bucket per proxy is better than one "unknown" bucket for everybody; the
// reason goes in the log record (client_ip_fallback).
func fallbackReason(r *http.Request) string {
	switch xff := r.Header.Values("X-Forwarded-For"); {
	case len(xff) == 0:
		return "xff_missing"
	case !xffParses(xff):
		return "xff_unparsable"
	}
	return "xff_all_trusted"
}

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

// refundIP gives back the per-IP request a credential request spent, once
// it authenticated with an API key (backends are limited per key).
func refundIP(r *http.Request) {
	if ri := infoOf(r.Context()); ri != nil && ri.refund != nil {
		ri.refund()
		ri.refund = nil
	}
}

// limitIP applies the per-IP limit to every request of the public API,
// before anything else looks at it: the credential endpoints, the spec,
// unknown paths. A request that then authenticates with a valid API key
// gets its share back (refundIP).
func (s *Server) limitIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoOf(r.Context())
		if l := ri.st.IPLimit; l != nil {
			refund, retry := l.reserve(ri.ip)
			if refund == nil {
				s.writeError(w, r, rateLimited("ip", "the ip rate limit", retry))
				return
			}
			ri.refund = refund
		}
		next.ServeHTTP(w, r)
	})
}

// cors answers preflights and marks responses for allow-listed browser
// origins. Requests without Origin (native apps, curl, backends) pass
// untouched. API keys are for backends, so X-API-Key is not an allowed
// browser header. A preflight for a path that does not exist is a 404, as
// the request itself would be (routeOf tells).
func (s *Server) cors(next http.Handler) http.Handler {
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
			if s.routeOf(r.URL.Path) == "" {
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
