package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/core"
	"github.com/authserver-dev/authserver/internal/signer"
)

// ProblemTypeBase prefixes every problem type URI; openapi.yaml lists them.
const ProblemTypeBase = "urn:authserver:problem:"

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	RequestID string         `json:"requestId,omitempty"`
	Field     string         `json:"field,omitempty"`
	Extra     map[string]any `json:"-"`
}

// apiError is an error that knows its HTTP answer. Handlers and middleware
// return or build these; writeError is the one place that turns any error
// into a response.
type apiError struct {
	status int
	slug   string // problem type suffix and refusal reason
	title  string
	detail string
	field  string
	header http.Header // extra response headers (WWW-Authenticate, Retry-After)
	cause  error       // logged for 5xx only, never sent
}

func (e *apiError) Error() string { return e.slug + ": " + e.detail }
func (e *apiError) Unwrap() error { return e.cause }

func newError(status int, slug, title, detail string) *apiError {
	return &apiError{status: status, slug: slug, title: title, detail: detail}
}

func (e *apiError) with(key, value string) *apiError {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Set(key, value)
	return e
}

func badRequest(detail string) *apiError {
	return newError(http.StatusBadRequest, "invalid-request", "Invalid request", detail)
}

func badField(field, detail string) *apiError {
	e := badRequest(field + ": " + detail)
	e.field = field
	return e
}

func forbidden(detail string) *apiError {
	return newError(http.StatusForbidden, "forbidden", "Forbidden", detail)
}

func unauthenticated(detail, challenge string) *apiError {
	return newError(http.StatusUnauthorized, "unauthenticated", "Authentication required", detail).
		with("WWW-Authenticate", challenge)
}

func storeUnavailable(cause error) *apiError {
	e := newError(http.StatusServiceUnavailable, "store-unavailable", "Sequence store unavailable",
		"no sequence could be committed; no credential was issued; retry later")
	e.cause = cause
	return e.with("Retry-After", "1")
}

var errInternal = newError(http.StatusInternalServerError, "internal", "Internal error", "the server failed; the request id identifies it in the logs")

// classify maps any error to its apiError: the single error → status table
// (the domain's refusals from core, auth's, signer's input errors).
func classify(err error) *apiError {
	var ae *apiError
	var ie *signer.InputError
	var te *auth.TokenError
	var mbe *http.MaxBytesError
	var le *core.LimitError
	var se *core.StoreError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ie):
		return badField(ie.Field, ie.Reason)
	case errors.Is(err, core.ErrUnknownApplication):
		return newError(http.StatusNotFound, "unknown-application", "Unknown application", err.Error())
	case errors.Is(err, core.ErrApplicationNotAllowed), errors.Is(err, core.ErrOtherUser), errors.Is(err, core.ErrSignaturesDisabled):
		return forbidden(err.Error())
	case errors.Is(err, core.ErrInvalidTokenUserID):
		return badRequest(err.Error())
	case errors.As(err, &le):
		return newError(http.StatusTooManyRequests, "rate-limited", "Too many requests",
			le.Error()+"; retry after the Retry-After seconds").
			with("Retry-After", strconv.Itoa(retryAfterSeconds(le.Retry)))
	case errors.As(err, &se):
		return storeUnavailable(se.Err)
	case errors.As(err, &te):
		if te.Reason == auth.ReasonProviderUnavailable {
			return newError(http.StatusServiceUnavailable, "provider-unavailable", "Identity provider unavailable", te.Description).
				with("Retry-After", "5")
		}
		return unauthenticated(te.Description, bearerChallenge("invalid_token", te.Description))
	case errors.Is(err, auth.ErrInvalidAPIKey):
		return unauthenticated("the API key is not valid", `APIKey realm="authserver"`)
	case errors.As(err, &mbe):
		return newError(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			"the request body must be at most "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
	}
	e := *errInternal
	e.cause = err
	return &e
}

// bearerChallenge builds an RFC 6750 challenge. desc comes from fixed texts
// (auth.TokenError.Description), never from the request; quotes are dropped
// anyway so it cannot break the header's syntax.
func bearerChallenge(code, desc string) string {
	if code == "" {
		return `Bearer realm="authserver"`
	}
	clean := make([]byte, 0, len(desc))
	for i := 0; i < len(desc); i++ {
		if c := desc[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			clean = append(clean, c)
		}
	}
	return `Bearer realm="authserver", error="` + code + `", error_description="` + string(clean) + `"`
}

// writeError answers with problem+json. Only 5xx are logged as errors here;
// refusals are audited in the request's log record (logRecord).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) *apiError {
	ae := classify(err)
	if le := (*core.LimitError)(nil); errors.As(err, &le) {
		s.m.RateLimited.WithLabelValues(le.Scope).Inc()
	}
	if ae.status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(r.Context())),
			slog.String("problem", ae.slug),
			slog.String("error", errString(ae.cause)))
	}
	for k, v := range ae.header {
		w.Header()[k] = v
	}
	writeProblem(w, r, ae)
	return ae
}

func writeProblem(w http.ResponseWriter, r *http.Request, ae *apiError) {
	p := Problem{
		Type: ProblemTypeBase + ae.slug, Title: ae.title, Status: ae.status,
		Detail: ae.detail, RequestID: requestID(r.Context()), Field: ae.field,
	}
	body, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(ae.status)
	_, _ = w.Write(append(body, '\n'))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
