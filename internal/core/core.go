// Package core is authserver's domain: the applications it issues for, the
// callers (Principal), the sequence store it needs (declared here, by its
// consumer), and the Issuer, which owns the policy of who may obtain which
// credential. It knows nothing of HTTP or the configuration file: transports
// decode a request, call the Issuer, and map its errors to responses;
// internal/app builds it from the configuration.
//
// core imports no other internal package but signer.
package core

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/authserver-dev/authserver/internal/signer"
)

// Kind is the kind of caller a Principal stands for.
type Kind int

const (
	// KindUser is an end user who presented an identity token.
	KindUser Kind = iota + 1
	// KindAPIKey is a trusted backend that presented an API key.
	KindAPIKey
)

// String returns "user" or "api_key", the labels used in logs and metrics.
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindAPIKey:
		return "api_key"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// AllApplications in an allow-list grants every application.
const AllApplications = "*"

// Principal is an authenticated caller.
type Principal struct {
	// Kind says whether this is an end user or an API key.
	Kind Kind
	// Name is the API key's name, or the issuer of the user's token.
	Name string
	// UserID is the user's id from the identity token; empty for API keys.
	UserID string
	// Applications are the application keys the caller may use;
	// AllApplications ("*") allows all. Shared between principals: read only.
	Applications []string
}

// MayUse reports whether the principal may obtain credentials for the
// application appKey. An empty appKey is never allowed.
func (p Principal) MayUse(appKey string) bool {
	if appKey == "" {
		return false
	}
	return slices.ContainsFunc(p.Applications, func(a string) bool {
		return a == AllApplications || a == appKey
	})
}

// Application is one Sinch application whose credentials authserver issues.
type Application struct {
	Key         string
	Default     bool
	TokenTTL    time.Duration
	MaxTokenTTL time.Duration // 0: no bound beyond Sinch's
	InstanceTTL time.Duration // 0: no instance expiry
	// Signatures says whether legacy signatures are issued.
	Signatures bool
	// Secrets: the first signs, all verify (newest first).
	Secrets []signer.Secret
}

// SequenceStore hands out legacy-signature sequences. Next returns the next
// number of user in application app, durably committed before it returns;
// any error means no number was handed out, and the Issuer reports a
// StoreError. internal/sequence adapts Postgres and bbolt to it.
type SequenceStore interface {
	Next(ctx context.Context, app, user string) (uint64, error)
}

// Limiter is a per-key request budget. Allow spends one request of key's
// budget, or reports how long until there is room. A nil Limiter is no limit.
type Limiter interface {
	Allow(key string) (ok bool, retry time.Duration)
}
