package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/authserver-dev/authserver/internal/signer"
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
		case m.name == "applicationKey" && !m.isNum:
			out.ApplicationKey = m.str
		case m.name == "userId" && !m.isNum:
			out.UserID = m.str
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

// Valid checks what can be checked without the config.
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

func (s *Server) handleRegistrationToken(w http.ResponseWriter, r *http.Request, c *call) error {
	var req tokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.resolve(c, req.ApplicationKey, req.UserID); err != nil {
		return err
	}
	ttl := c.app.TokenTTL
	if req.TTLSeconds != nil {
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	inst := c.app.InstanceTTL
	if req.InstanceTTLSeconds != nil {
		inst = time.Duration(*req.InstanceTTLSeconds) * time.Second
	}
	// Validate before counting against the user's limit, so a typo does not
	// cost a request.
	if err := signer.CheckTTL(ttl, c.app.MaxTokenTTL); err != nil {
		return err
	}
	if err := signer.CheckInstanceTTL(inst); err != nil {
		return err
	}
	if err := s.limit(c.st.userLimit, "user", c.app.Key+"/"+c.userID); err != nil {
		return err
	}
	tok, err := s.signer.IssueToken(signer.TokenParams{
		ApplicationKey: c.app.Key, Secret: c.app.Secrets[0], UserID: c.userID,
		TTL: ttl, MaxTTL: c.app.MaxTokenTTL, InstanceTTL: inst,
	})
	if err != nil {
		return err
	}
	resp := tokenResponse{
		Token: tok.JWT, ApplicationKey: c.app.Key, UserID: c.userID,
		IssuedAt: tok.IssuedAt.Format(time.RFC3339), ExpiresAt: tok.ExpiresAt.Format(time.RFC3339),
	}
	if !tok.InstanceExpiresAt.IsZero() {
		resp.InstanceExpiresAt = tok.InstanceExpiresAt.Format(time.RFC3339)
	}
	c.detail = slog.String("kid", tok.KeyID)
	writeCredential(w, resp.appendJSON(make([]byte, 0, len(tok.JWT)+256)))
	return nil
}
