package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/authserver-dev/authserver/internal/signer"
)

// signatureRequest is the body of POST /v1/registration-signatures.
type signatureRequest struct {
	ApplicationKey string `json:"applicationKey"`
	UserID         string `json:"userId"`
}

// setMembers implements flatObject (see decode).
func (q *signatureRequest) setMembers(ms []member) bool {
	var out signatureRequest
	for _, m := range ms {
		switch {
		case m.name == "applicationKey" && !m.isNum:
			out.ApplicationKey = m.str
		case m.name == "userId" && !m.isNum:
			out.UserID = m.str
		default:
			return false
		}
	}
	*q = out
	return true
}

// Valid has nothing to check beyond what resolve does.
func (q *signatureRequest) Valid() error { return nil }

// signatureResponse is the 200 body of POST /v1/registration-signatures.
type signatureResponse struct {
	ApplicationKey string `json:"applicationKey"`
	UserID         string `json:"userId"`
	Sequence       uint64 `json:"sequence"`
	Signature      string `json:"signature"`
}

func (s *Server) handleRegistrationSignature(w http.ResponseWriter, r *http.Request, c *call) error {
	var req signatureRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.resolve(c, req.ApplicationKey, req.UserID); err != nil {
		return err
	}
	if !c.app.SignaturesEnabled() {
		return forbidden("legacy signatures are disabled for this application (legacy_signatures: false); use /v1/registration-tokens")
	}
	if err := s.limit(c.st.userLimit, "user", c.app.Key+"/"+c.userID); err != nil {
		return err
	}
	// The sequence is committed before it is used: a failure here is a 503,
	// never a guessed value.
	seq, err := s.store.Next(r.Context(), c.app.Key, c.userID)
	if err != nil {
		return storeUnavailable(err)
	}
	sig, err := signer.LegacySignature(c.app.Key, c.app.Secrets[0], c.userID, seq)
	if err != nil {
		return err
	}
	resp := signatureResponse{ApplicationKey: c.app.Key, UserID: c.userID, Sequence: seq, Signature: sig}
	c.detail = slog.Uint64("sequence", seq)
	writeCredential(w, resp.appendJSON(make([]byte, 0, 256+len(c.app.Key)+len(c.userID))))
	return nil
}
