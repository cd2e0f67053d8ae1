// Package auth decides who is calling: it turns the credentials of a request
// (an end user's identity token, or a backend's API key) into a
// core.Principal.
//
// It knows nothing of the service's configuration or HTTP layer; the caller
// converts its configuration into Provider and APIKey values and maps the
// errors (TokenError, ErrInvalidAPIKey) to responses.
package auth

import (
	"slices"

	"github.com/authserver-dev/authserver/internal/core"
)

// Principal, Kind and their values are the domain's (core); the names here
// keep auth's API readable on its own.
type (
	// Principal is an authenticated caller (core.Principal).
	Principal = core.Principal
	// Kind is the kind of caller a Principal stands for (core.Kind).
	Kind = core.Kind
)

const (
	// KindUser is an end user who presented an identity token.
	KindUser = core.KindUser
	// KindAPIKey is a trusted backend that presented an API key.
	KindAPIKey = core.KindAPIKey
	// AllApplications in an allow-list grants every application.
	AllApplications = core.AllApplications
)

// cloneApplications copies an allow-list from configuration so later changes
// to the caller's slice cannot widen what a principal may use, and clips it
// so an append by a reader cannot write into the shared backing array.
func cloneApplications(apps []string) []string {
	return slices.Clip(slices.Clone(apps))
}

// validApplications reports whether apps is a usable allow-list: at least one
// entry, none empty.
func validApplications(apps []string) bool {
	return len(apps) > 0 && !slices.Contains(apps, "")
}
