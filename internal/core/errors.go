package core

import (
	"errors"
	"time"
)

// The Issuer's refusals. Transports map them (errors.Is / errors.As) to
// their answers; the texts are written for the caller.
var (
	// ErrUnknownApplication: no application has the requested key.
	ErrUnknownApplication = errors.New("no application with this key is configured")
	// ErrApplicationNotAllowed: the caller's allow-list does not name the
	// application.
	ErrApplicationNotAllowed = errors.New("the caller may not obtain credentials for this application")
	// ErrOtherUser: an end user asked for another user's credential.
	ErrOtherUser = errors.New("an end user may only obtain credentials for their own user id")
	// ErrSignaturesDisabled: the application issues no legacy signatures.
	ErrSignaturesDisabled = errors.New("legacy signatures are disabled for this application (legacy_signatures: false); use /v1/registration-tokens")
	// ErrInvalidTokenUserID: the identity token's user id breaks Sinch's
	// rule, so no credential can carry it.
	ErrInvalidTokenUserID = errors.New("the identity token's user id is not a valid Sinch user id (1-255 characters of A-Z a-z 0-9 - _ =)")
)

// LimitError is a spent budget: Scope names the limit ("user", "ip",
// "api_key", "failed_auth"), Retry is how long until there is room again.
type LimitError struct {
	Scope string
	What  string // for the caller, e.g. "the user rate limit"
	Retry time.Duration
}

func (e *LimitError) Error() string { return e.What + " is reached" }

// Spend takes one request from key's budget in l and, when it is spent,
// returns a *LimitError of scope ("the <scope> rate limit").
func Spend(l Limiter, scope, key string) error {
	if ok, retry := l.Allow(key); !ok {
		return &LimitError{Scope: scope, What: "the " + scope + " rate limit", Retry: retry}
	}
	return nil
}

// StoreError is a failure of the sequence store: no sequence was committed
// and no credential issued; trying again later is the remedy.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }
