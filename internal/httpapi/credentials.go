package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/core"
)

// call is what the credential wrapper knows about one request, for the
// handler and for the audit fields of the log record.
type call struct {
	st        *State
	principal core.Principal
	rec       core.Record // the Issuer's record of its decision
}

// credential wraps a credential endpoint: authenticate, run the handler
// (decode → Issuer → encode), and on any error answer problem+json. Every
// request ends in exactly one audit record, issued or refused: the request's
// log record (logRecord) carries the decision.
func (s *Server) credential(kind string, h func(http.ResponseWriter, *http.Request, *call) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ri := infoOf(r.Context())
		c := &ri.call
		c.st, c.rec = ri.st, core.Record{Credential: kind}
		err := s.authenticate(w, r, c)
		if err == nil {
			err = h(w, r, c)
		}
		if err == nil {
			s.m.CredentialsIssued.WithLabelValues(c.rec.Application, kind).Inc()
			ri.outcome = "issued"
			return
		}
		ae := s.writeError(w, r, err)
		s.m.CredentialsRefused.WithLabelValues(ae.slug).Inc()
		ri.outcome, ri.reason = "refused", ae.slug
	}
}

// authenticate finds the caller: an API key (trusted backend) or a bearer
// identity token (end user), never both. The per-IP limit has already been
// applied (limitIP); a client address that has used up its failed-
// authentication budget is refused before its credentials are looked at, and
// every 401 spends from that budget.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, c *call) error {
	ip := clientIP(r)
	if l := c.st.FailedAuthLimit; l != nil {
		if spent, retry := l.exhausted(ip); spent {
			return rateLimited("failed_auth", "failed authentications from this address", retry)
		}
	}
	err := s.identify(w, r, c)
	if err != nil && c.st.FailedAuthLimit != nil && classify(err).status == http.StatusUnauthorized {
		c.st.FailedAuthLimit.spend(ip)
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
		return core.Spend(c.st.APIKeyLimit, "api_key", p.Name) // a nil *Limiter allows all
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

// rateLimited is the refusal of a spent budget: scope is the metric label;
// writeError answers 429 with the whole seconds until the budget has room
// again in Retry-After.
func rateLimited(scope, what string, retry time.Duration) error {
	return &core.LimitError{Scope: scope, What: what, Retry: retry}
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
