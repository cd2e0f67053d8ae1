package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/signer"
)

const (
	kindJWT       = "jwt"
	kindSignature = "signature"
)

// call is what the credential wrapper knows about one request, for the
// handler and for the audit line.
type call struct {
	kind      string
	st        *State
	principal auth.Principal
	app       *config.Application
	userID    string
	detail    slog.Attr // kid or sequence of the issued credential
}

// credential wraps a credential endpoint: authenticate, run the handler, and
// on any error answer problem+json. Every request ends in exactly one audit
// line, issued or refused.
func (s *Server) credential(kind string, h func(http.ResponseWriter, *http.Request, *call) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := &call{kind: kind, st: s.state()}
		err := s.authenticate(w, r, c)
		if err == nil {
			err = h(w, r, c)
		}
		if err == nil {
			s.m.CredentialsIssued.WithLabelValues(c.app.Key, kind).Inc()
			s.audit(r, c, "issued", nil)
			return
		}
		ae := s.writeError(w, r, err)
		s.m.CredentialsRefused.WithLabelValues(ae.slug).Inc()
		s.audit(r, c, "refused", ae)
	}
}

// audit writes the one structured line per credential decision. It names the
// caller and the user, never a token, secret or key.
func (s *Server) audit(r *http.Request, c *call, outcome string, ae *apiError) {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("request_id", requestID(r.Context())),
		slog.String("outcome", outcome),
		slog.String("kind", c.kind),
	)
	if c.principal.Kind != 0 {
		attrs = append(attrs, slog.String("principal_kind", c.principal.Kind.String()), slog.String("principal", c.principal.Name))
	}
	if c.app != nil {
		attrs = append(attrs, slog.String("application", c.app.Key))
	}
	if c.userID != "" {
		attrs = append(attrs, slog.String("user_id", c.userID))
	}
	if c.detail.Key != "" {
		attrs = append(attrs, c.detail)
	}
	if ae != nil {
		attrs = append(attrs, slog.String("reason", ae.slug), slog.Int("status", ae.status))
	}
	attrs = append(attrs, slog.String("client_ip", clientIP(r)))
	s.logRequestLine(r.Context(), "credential", attrs...)
}

// authenticate finds the caller: an API key (trusted backend) or a bearer
// identity token (end user), never both. The per-IP limit has already been
// applied (limitIP); a client address that has used up its failed-
// authentication budget is refused before its credentials are looked at, and
// every 401 spends from that budget.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, c *call) error {
	ip := clientIP(r)
	if l := c.st.failLimit; l != nil {
		if spent, retry := l.exhausted(ip); spent {
			return s.rateLimited("failed_auth", "failed authentications from this address", retry)
		}
	}
	err := s.identify(w, r, c)
	if err != nil && c.st.failLimit != nil && classify(err).status == http.StatusUnauthorized {
		c.st.failLimit.spend(ip)
	}
	return err
}

// identify checks the request's one credential.
func (s *Server) identify(w http.ResponseWriter, r *http.Request, c *call) error {
	keys, hasKey := r.Header["X-Api-Key"]
	authzs := r.Header["Authorization"]
	authz := firstValue(authzs)
	switch {
	case len(keys) > 1 || len(authzs) > 1:
		// A proxy and a client may each add one; which one counts must not
		// depend on who reads the header.
		s.m.AuthFailures.WithLabelValues("ambiguous_credentials").Inc()
		return badRequest("send one X-API-Key or one Authorization header, not several")
	case hasKey && len(authzs) > 0:
		s.m.AuthFailures.WithLabelValues("ambiguous_credentials").Inc()
		return badRequest("send either X-API-Key or Authorization, not both")
	case hasKey:
		p, err := c.st.APIKeys.Authenticate(firstValue(keys))
		if err != nil {
			s.m.AuthFailures.WithLabelValues("invalid_api_key").Inc()
			return err
		}
		c.principal = p
		// Backends are limited per key, not per address: give back what
		// limitIP took.
		refundIP(r)
		return s.limit(c.st.keyLimit, "api_key", p.Name)
	case authz == "":
		s.m.AuthFailures.WithLabelValues("missing_credentials").Inc()
		return unauthenticated("send Authorization: Bearer <identity token>, or X-API-Key from a trusted backend", bearerChallenge("", ""))
	}
	scheme, token, ok := strings.Cut(authz, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		s.m.AuthFailures.WithLabelValues("malformed_header").Inc()
		return unauthenticated("the Authorization header must be \"Bearer <identity token>\"", bearerChallenge("invalid_request", "the Authorization header must be Bearer followed by a token"))
	}
	if c.st.Verifier == nil {
		s.m.AuthFailures.WithLabelValues("no_identity_provider").Inc()
		return unauthenticated("this server accepts no identity tokens (no identity_providers configured)", bearerChallenge("invalid_token", "no identity provider is configured"))
	}
	p, err := c.st.Verifier.Verify(r.Context(), token)
	if err != nil {
		var te *auth.TokenError
		reason := "invalid_token"
		if errors.As(err, &te) {
			reason = te.Reason
		}
		s.m.AuthFailures.WithLabelValues(reason).Inc()
		return err
	}
	c.principal = p
	return nil
}

func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// limit spends one request of key's budget in l; nil means that limit is off.
func (s *Server) limit(l *keyedLimiter, scope, key string) error {
	if l == nil {
		return nil
	}
	ok, retry := l.allow(key)
	if ok {
		return nil
	}
	return s.rateLimited(scope, "the "+scope+" rate limit", retry)
}

// rateLimited is the 429 answer for scope (the metric label), with the
// whole seconds until the budget has room again in Retry-After.
func (s *Server) rateLimited(scope, what string, retry time.Duration) error {
	s.m.RateLimited.WithLabelValues(scope).Inc()
	return newError(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		what+" is reached; retry after the Retry-After seconds").
		with("Retry-After", strconv.Itoa(retryAfterSeconds(retry)))
}

// resolve settles the application and the user of a credential request and
// checks the caller may have it: users only for themselves, API keys for any
// valid user id but only of their applications.
func (s *Server) resolve(c *call, appKey, userID string) error {
	if appKey == "" {
		c.app = c.st.defaultApplication()
		if c.app == nil {
			return badField("applicationKey", "is required: no default application is configured")
		}
	} else if c.app = c.st.application(appKey); c.app == nil {
		return newError(http.StatusNotFound, "unknown-application", "Unknown application", "no application with this key is configured")
	}
	if !c.principal.MayUse(c.app.Key) {
		return forbidden("the caller may not obtain credentials for this application")
	}
	switch c.principal.Kind {
	case auth.KindAPIKey:
		if userID == "" {
			return badField("userId", "is required when calling with an API key")
		}
	default:
		if err := signer.CheckUserID(c.principal.UserID); err != nil {
			return badRequest("the identity token's user id is not a valid Sinch user id (1-255 characters of A-Z a-z 0-9 - _ =)")
		}
		if userID == "" {
			userID = c.principal.UserID
		} else if userID != c.principal.UserID {
			return forbidden("an end user may only obtain credentials for their own user id")
		}
	}
	if err := signer.CheckUserID(userID); err != nil {
		return err
	}
	c.userID = userID
	return nil
}

// writeCredential sends a credential response: never cached by anyone.
// The header values share one allocation (as http.Header.Clone does); the
// names are canonical, so assigning is what Set would do.
func writeCredential(w http.ResponseWriter, body []byte) {
	v := make([]string, 4)
	v[0], v[1], v[2], v[3] = "application/json", "no-store", "no-cache", strconv.Itoa(len(body))
	h := w.Header()
	h["Content-Type"], h["Cache-Control"], h["Pragma"], h["Content-Length"] = v[0:1:1], v[1:2:2], v[2:3:3], v[3:4:4]
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
