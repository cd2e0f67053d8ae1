package signer

import (
	"fmt"
	"time"
)

// Limits Sinch puts on registration credentials.
const (
	MaxUserIDBytes  = 255
	MinTokenTTL     = 60 * time.Second
	DefaultTokenTTL = 10 * time.Minute
	MinInstanceTTL  = 48 * time.Hour
	MaxAppKeyBytes  = 255
	MaxNonceBytes   = 128
)

// ValidUserID reports whether id follows Sinch's user id rule: 1–255 bytes of
// A-Z a-z 0-9 - _ =. The rule also guarantees that an id needs no escaping in
// JSON, which the hand-built claims rely on.
func ValidUserID(id string) bool {
	return plainToken(id, MaxUserIDBytes, '=')
}

// UserID is a user id that follows Sinch's rule, made by ParseUserID. The
// id is checked once, where it enters (core.Issuer for a request, the
// offline commands for a flag), and the signer builds the claims and the
// legacy signature's string from a UserID without checking it again: it
// cannot hold an id the rule refuses, such as one with a quote that would
// break out of the hand-built JSON. The zero UserID is the one invalid
// value; IssueToken and LegacySignature refuse it.
type UserID struct{ id string }

// ParseUserID returns id as a UserID, or an InputError for an id that
// breaks Sinch's rule (ValidUserID).
func ParseUserID(id string) (UserID, error) {
	if !ValidUserID(id) {
		return UserID{}, inputErr("userId", fmt.Sprintf("must be 1-%d characters of A-Z a-z 0-9 - _ =", MaxUserIDBytes))
	}
	return UserID{id}, nil
}

// MustParseUserID is ParseUserID for ids known to be valid (tests,
// examples); it panics on an invalid one.
func MustParseUserID(id string) UserID {
	u, err := ParseUserID(id)
	if err != nil {
		panic(err)
	}
	return u
}

// String returns the id.
func (u UserID) String() string { return u.id }

// IsZero reports whether u is the zero UserID, which no ParseUserID returns.
func (u UserID) IsZero() bool { return u.id == "" }

// ValidAppKey reports whether key is a plausible application key: 1–255 bytes
// of A-Z a-z 0-9 - _ . (Sinch keys are UUIDs). Like user ids, keys need no JSON
// escaping.
func ValidAppKey(key string) bool {
	return plainToken(key, MaxAppKeyBytes, '.')
}

// CheckTTL validates a token lifetime against Sinch's minimum and max (0 = no
// upper bound beyond Sinch's).
func CheckTTL(ttl, max time.Duration) error {
	if ttl < MinTokenTTL {
		return inputErr("ttlSeconds", fmt.Sprintf("must be at least %d seconds", int(MinTokenTTL/time.Second)))
	}
	if max > 0 && ttl > max {
		return inputErr("ttlSeconds", fmt.Sprintf("must be at most %d seconds", int(max/time.Second)))
	}
	return nil
}

// CheckInstanceTTL validates the registration lifetime: 0 (none) or ≥ 48 h.
func CheckInstanceTTL(ttl time.Duration) error {
	if ttl != 0 && ttl < MinInstanceTTL {
		return inputErr("instanceTtlSeconds", fmt.Sprintf("must be 0 or at least %d seconds (48 h)", int(MinInstanceTTL/time.Second)))
	}
	if ttl < 0 {
		return inputErr("instanceTtlSeconds", "must not be negative")
	}
	return nil
}

// plainToken reports whether s is 1 to max bytes of A-Z a-z 0-9 - _ and
// the byte extra: the alphabets of user ids ('='), application keys and
// nonces ('.'), none of which needs escaping in JSON.
func plainToken(s string, max int, extra byte) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != extra {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
