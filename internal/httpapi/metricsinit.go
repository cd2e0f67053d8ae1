package httpapi

import (
	"net/http"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/core"
)

// initMetrics creates at 0 the counter series the shipped dashboard and
// alerts read, so that a fresh server shows 0 rather than "No data" and a
// rate() over its first increase is not lost.
func (s *Server) initMetrics() {
	if s.m == nil {
		return
	}
	for _, route := range []string{"/v1/registration-tokens", "/v1/registration-signatures"} {
		s.m.HTTPRequests.WithLabelValues(route, http.MethodPost, "200")
		s.m.HTTPDuration.WithLabelValues(route, http.MethodPost)
	}
	if st := s.State(); st != nil && st.Issuer != nil {
		for _, a := range st.Issuer.Applications() {
			s.m.CredentialsIssued.WithLabelValues(a.Key, core.CredentialJWT)
			if a.Signatures {
				s.m.CredentialsIssued.WithLabelValues(a.Key, core.CredentialSignature)
			}
		}
	}
	for _, reason := range []string{"unauthenticated", "forbidden", "invalid-request", "rate-limited", "store-unavailable"} {
		s.m.CredentialsRefused.WithLabelValues(reason)
	}
	for _, reason := range []string{"missing_credentials", "invalid_api_key", auth.ReasonExpired, auth.ReasonBadSignature} {
		s.m.AuthFailures.WithLabelValues(reason)
	}
	for _, scope := range []string{"user", "ip", "api_key"} {
		s.m.RateLimited.WithLabelValues(scope)
	}
}
