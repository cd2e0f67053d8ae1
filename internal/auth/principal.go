// Package auth decides who is calling: it turns the credentials of a request
// (an end user's identity token, or a backend's API key) into a Principal.
//
// It knows nothing of the service's configuration or HTTP layer; the caller
// converts its configuration into Provider and APIKey values and maps the
// errors (TokenError, ErrInvalidAPIKey) to responses.
package auth

import (
	"slices"
	"strconv"
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
