package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

type ctxKey int

const requestIDKey ctxKey = 1

// requestID returns the id the requestID middleware gave this request.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
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
// client's id shows up in our logs) or makes one, and echoes it.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = s.ids.next()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
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
			s.logRequestLine(r.Context(), "request",
				slog.String("request_id", requestID(r.Context())),
				slog.String("method", method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Duration("duration", d),
				slog.String("client_ip", clientIP(r)),
				slog.Int("bytes", ww.BytesWritten()))
		}
	})
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

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// clientIP is the address chi's client-IP middleware settled on: the peer,
// or the first untrusted hop of X-Forwarded-For behind trusted proxies.
func clientIP(r *http.Request) string {
	if ip := middleware.GetClientIP(r.Context()); ip != "" {
		return ip
	}
	return "unknown"
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
// browser header.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := s.state().originAllowed(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
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
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
		}
		next.ServeHTTP(w, r)
	})
}

func (st *State) originAllowed(origin string) bool {
	for _, o := range st.Config.CORS.AllowedOrigins {
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
