package httpapi

import (
	"net/http"

	"github.com/authserver-dev/authserver/internal/core"
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
		if !setAppUser(m, &out.ApplicationKey, &out.UserID) {
			return false
		}
	}
	*q = out
	return true
}

// Valid has nothing to check: the Issuer checks both fields.
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
	sig, err := c.st.Issuer.IssueSignature(r.Context(), c.principal,
		core.SignatureRequest{ApplicationKey: req.ApplicationKey, UserID: req.UserID})
	c.rec = sig.Record
	if err != nil {
		return err
	}
	resp := signatureResponse{ApplicationKey: sig.Application, UserID: sig.UserID, Sequence: sig.Sequence, Signature: sig.Signature}
	body, err := encodeJSON(&resp)
	if err != nil {
		return err
	}
	writeCredential(w, body)
	return nil
}
