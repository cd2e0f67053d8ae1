package httpapi

import (
	"net/http"
	"time"

	"github.com/authserver-dev/authserver/internal/core"
)

// tokenRequest is the body of POST /v1/registration-tokens; all optional.
type tokenRequest struct {
	ApplicationKey     string `json:"applicationKey"`
	UserID             string `json:"userId"`
	TTLSeconds         *int64 `json:"ttlSeconds"`
	InstanceTTLSeconds *int64 `json:"instanceTtlSeconds"`
}

// setMembers implements flatObject (see decode).
func (q *tokenRequest) setMembers(ms []member) bool {
	var out tokenRequest
	for _, m := range ms {
		switch {
		case setAppUser(m, &out.ApplicationKey, &out.UserID):
		case m.name == "ttlSeconds" && m.isNum:
			out.TTLSeconds = &m.num
		case m.name == "instanceTtlSeconds" && m.isNum:
			out.InstanceTTLSeconds = &m.num
		default:
			return false
		}
	}
	*q = out
	return true
}

// Valid checks the ranges decode can check; the Issuer checks the rest.
func (q *tokenRequest) Valid() error {
	const maxSeconds = 10 * 365 * 24 * 3600
	if q.TTLSeconds != nil && (*q.TTLSeconds < 0 || *q.TTLSeconds > maxSeconds) {
		return badField("ttlSeconds", "out of range")
	}
	if q.InstanceTTLSeconds != nil && (*q.InstanceTTLSeconds < 0 || *q.InstanceTTLSeconds > maxSeconds) {
		return badField("instanceTtlSeconds", "out of range")
	}
	return nil
}

// tokenResponse is the 200 body of POST /v1/registration-tokens.
type tokenResponse struct {
	Token             string `json:"token"`
	ApplicationKey    string `json:"applicationKey"`
	UserID            string `json:"userId"`
	IssuedAt          string `json:"issuedAt"`
	ExpiresAt         string `json:"expiresAt"`
	InstanceExpiresAt string `json:"instanceExpiresAt,omitempty"`
}

// request is the Issuer's request: the seconds as durations.
func (q *tokenRequest) request() core.TokenRequest {
	out := core.TokenRequest{ApplicationKey: q.ApplicationKey, UserID: q.UserID}
	if q.TTLSeconds != nil {
		d := time.Duration(*q.TTLSeconds) * time.Second
		out.TTL = &d
	}
	if q.InstanceTTLSeconds != nil {
		d := time.Duration(*q.InstanceTTLSeconds) * time.Second
		out.InstanceTTL = &d
	}
	return out
}

func (s *Server) handleRegistrationToken(w http.ResponseWriter, r *http.Request, c *call) error {
	var req tokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	tok, err := c.st.Issuer.IssueToken(r.Context(), c.principal, req.request())
	c.rec = tok.Record
	if err != nil {
		return err
	}
	resp := tokenResponse{
		Token: tok.JWT, ApplicationKey: tok.Application, UserID: tok.UserID,
		IssuedAt: tok.IssuedAt.Format(time.RFC3339), ExpiresAt: tok.ExpiresAt.Format(time.RFC3339),
	}
	if !tok.InstanceExpiresAt.IsZero() {
		resp.InstanceExpiresAt = tok.InstanceExpiresAt.Format(time.RFC3339)
	}
	body, err := encodeJSON(&resp)
	if err != nil {
		return err
	}
	writeCredential(w, body)
	return nil
}
