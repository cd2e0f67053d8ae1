package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/authserver-dev/authserver/internal/signer"
)

// Credential kinds, as the audit record and the metrics name them.
const (
	CredentialJWT       = "jwt"
	CredentialSignature = "signature"
)

// TokenRequest asks for one registration JWT. Empty fields take the
// defaults: the default application, the caller's own user id, the
// application's lifetimes.
type TokenRequest struct {
	ApplicationKey string
	UserID         string
	TTL            *time.Duration
	InstanceTTL    *time.Duration
}

// SignatureRequest asks for one legacy signature and its sequence.
type SignatureRequest struct {
	ApplicationKey string
	UserID         string
}

// Record is the audit record of one credential decision: what the Issuer
// settled before it issued or refused. It names the application and the
// user, never a token, secret or key; the transport adds who asked from
// where and the outcome.
type Record struct {
	Credential  string    // CredentialJWT or CredentialSignature
	Application string    // empty when refused before it was settled
	UserID      string    // empty when refused before it was settled
	Detail      slog.Attr // the kid or the sequence of an issued credential
}

// Token is an issued registration JWT.
type Token struct {
	Record
	signer.Token
}

// Signature is an issued legacy signature.
type Signature struct {
	Record
	Sequence  uint64
	Signature string
}

// IssuerOptions are an Issuer's parts: the applications and the per-user
// limit come from the configuration (a reload builds a new Issuer), the
// signer and the store live as long as the process.
type IssuerOptions struct {
	Applications []Application
	Signer       *signer.Signer
	Store        SequenceStore
	UserLimit    Limiter // nil: no per-user limit
}

// Issuer decides and issues credentials. It is immutable; safe for
// concurrent use.
type Issuer struct {
	apps []Application
	// byKey and defaultApp index apps, so that resolving a request's
	// application costs the same with 1 or 1,000 applications configured.
	byKey      map[string]*Application
	defaultApp *Application
	signer     *signer.Signer
	store      SequenceStore
	userLimit  Limiter
}

// NewIssuer returns an Issuer over o.
func NewIssuer(o IssuerOptions) *Issuer {
	i := &Issuer{apps: o.Applications, signer: o.Signer, store: o.Store, userLimit: o.UserLimit}
	i.byKey = make(map[string]*Application, len(i.apps))
	for j := range i.apps {
		a := &i.apps[j]
		if _, dup := i.byKey[a.Key]; !dup { // the first wins, as the scan did
			i.byKey[a.Key] = a
		}
		if a.Default && i.defaultApp == nil {
			i.defaultApp = a
		}
	}
	return i
}

// Applications returns the configured applications (read only).
func (i *Issuer) Applications() []Application { return i.apps }

// IssueToken issues a registration JWT for p. The returned Token's Record is
// filled as far as the request got, on a refusal too, for the audit fields
// of the request's log record.
// The order: settle the application and user (resolve), check the
// lifetimes, spend the per-user limit (so a typo costs no request), sign.
func (i *Issuer) IssueToken(_ context.Context, p Principal, req TokenRequest) (Token, error) {
	t := Token{Record: Record{Credential: CredentialJWT}}
	app, user, err := i.resolve(&t.Record, p, req.ApplicationKey, req.UserID)
	if err != nil {
		return t, err
	}
	ttl, inst := app.TokenTTL, app.InstanceTTL
	if req.TTL != nil {
		ttl = *req.TTL
	}
	if req.InstanceTTL != nil {
		inst = *req.InstanceTTL
	}
	if err := signer.CheckTTL(ttl, app.MaxTokenTTL); err != nil {
		return t, err
	}
	if err := signer.CheckInstanceTTL(inst); err != nil {
		return t, err
	}
	if err := i.limit(app.Key, t.UserID); err != nil {
		return t, err
	}
	tok, err := i.signer.IssueToken(signer.TokenParams{
		ApplicationKey: app.Key, Secret: app.Secrets[0], UserID: user,
		TTL: ttl, MaxTTL: app.MaxTokenTTL, InstanceTTL: inst,
	})
	if err != nil {
		return t, err
	}
	t.Token = tok
	t.Detail = slog.String("kid", tok.KeyID)
	return t, nil
}

// IssueSignature issues a legacy signature for p with a fresh sequence. The
// sequence is committed by the store before it is used: a store failure is
// a StoreError, never a guessed value. The Record is filled as in
// IssueToken.
func (i *Issuer) IssueSignature(ctx context.Context, p Principal, req SignatureRequest) (Signature, error) {
	s := Signature{Record: Record{Credential: CredentialSignature}}
	app, user, err := i.resolve(&s.Record, p, req.ApplicationKey, req.UserID)
	if err != nil {
		return s, err
	}
	if !app.Signatures {
		return s, ErrSignaturesDisabled
	}
	if err := i.limit(app.Key, s.UserID); err != nil {
		return s, err
	}
	seq, err := i.store.Next(ctx, app.Key, s.UserID)
	if err != nil {
		return s, &StoreError{Err: err}
	}
	sig, err := signer.LegacySignature(app.Key, app.Secrets[0], user, seq)
	if err != nil {
		return s, err
	}
	s.Sequence, s.Signature = seq, sig
	s.Detail = slog.Uint64("sequence", seq)
	return s, nil
}

// resolve settles the application and the user of a request and checks the
// caller may have it: end users only for themselves, API keys for any valid
// user id, both only for the applications they are allowed. The user id is
// validated here, once (signer.ParseUserID): the token's for an end user,
// the request's for an API key; the signer takes the parsed id.
func (i *Issuer) resolve(rec *Record, p Principal, appKey, userID string) (*Application, signer.UserID, error) {
	app, err := i.application(appKey)
	if err != nil {
		return nil, signer.UserID{}, err
	}
	rec.Application = app.Key
	if !p.MayUse(app.Key) {
		return nil, signer.UserID{}, ErrApplicationNotAllowed
	}
	var user signer.UserID
	if p.Kind == KindAPIKey {
		if userID == "" {
			return nil, user, &signer.InputError{Field: "userId", Reason: "is required when calling with an API key"}
		}
		if user, err = signer.ParseUserID(userID); err != nil {
			return nil, user, err
		}
	} else {
		if user, err = signer.ParseUserID(p.UserID); err != nil {
			return nil, user, ErrInvalidTokenUserID
		}
		if userID != "" && userID != p.UserID {
			return nil, user, ErrOtherUser
		}
	}
	rec.UserID = user.String()
	return app, user, nil
}

// application returns the application named by key, or the default one for
// an empty key.
func (i *Issuer) application(key string) (*Application, error) {
	if key == "" {
		if i.defaultApp != nil {
			return i.defaultApp, nil
		}
		return nil, &signer.InputError{Field: "applicationKey", Reason: "is required: no default application is configured"}
	}
	if a := i.byKey[key]; a != nil {
		return a, nil
	}
	return nil, ErrUnknownApplication
}

// limit spends one request of the user's budget in app.
func (i *Issuer) limit(app, user string) error {
	if i.userLimit == nil {
		return nil
	}
	return Spend(i.userLimit, "user", app+"/"+user)
}
