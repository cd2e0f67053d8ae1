package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrInvalidAPIKey is returned by APIKeys.Authenticate for a key that is
// empty or matches no configured key. It says nothing about which.
var ErrInvalidAPIKey = errors.New("auth: invalid API key")

// APIKey is one configured API key. Only the SHA-256 of the key is kept, so
// the configuration never holds a usable key.
type APIKey struct {
	// Name identifies the key in logs and becomes Principal.Name.
	Name string
	// SHA256 is the hex-encoded SHA-256 digest of the key (64 hex digits).
	SHA256 string
	// Applications are the application keys the key may use; "*" allows all.
	Applications []string
}

// APIKeys authenticates presented API keys against a fixed set. It is safe
// for concurrent use.
type APIKeys struct {
	bySum map[[sha256.Size]byte]*apiKey
}

type apiKey struct {
	name string
	apps []string
}

// NewAPIKeys checks keys (CheckAPIKeys) and returns the set.
func NewAPIKeys(keys []APIKey) (*APIKeys, error) {
	set := &APIKeys{bySum: make(map[[sha256.Size]byte]*apiKey, len(keys))}
	names := make(map[string]bool, len(keys))
	for i, k := range keys {
		bad := func(field, problem string) error {
			return &APIKeyError{Index: i, Field: field, Problem: problem}
		}
		if k.Name == "" {
			return nil, bad("name", "is required")
		}
		if names[k.Name] {
			return nil, bad("name", fmt.Sprintf("%q is used twice", k.Name))
		}
		names[k.Name] = true
		sum, ok := parseDigest(k.SHA256)
		if !ok {
			return nil, bad("sha256", "must be the 64-character hex SHA-256 of the key (printf %s KEY | sha256sum)")
		}
		if other, dup := set.bySum[sum]; dup {
			// Two names for one key would make the principal ambiguous.
			return nil, bad("sha256", fmt.Sprintf("is also the sha256 of %q: one key cannot have two names", other.name))
		}
		if len(k.Applications) == 0 {
			return nil, bad("applications", `is required (use ["*"] for all applications)`)
		}
		if !validApplications(k.Applications) {
			return nil, bad("applications", "must not list an empty application key")
		}
		set.bySum[sum] = &apiKey{name: k.Name, apps: cloneApplications(k.Applications)}
	}
	return set, nil
}

// CheckAPIKeys returns what NewAPIKeys refuses in keys, as an
// *APIKeyError, or nil: every name present and unique, every digest 64 hex
// digits and unique, every allow-list non-empty without an empty entry.
// config validates api_keys with it, so the two cannot disagree.
func CheckAPIKeys(keys []APIKey) error {
	_, err := NewAPIKeys(keys)
	return err
}

// APIKeyError is the first problem found in a list of API keys: keys[Index]'s
// Field ("name", "sha256" or "applications"). Problem never repeats the
// digest, which could be a key pasted in clear.
type APIKeyError struct {
	Index   int
	Field   string
	Problem string
}

func (e *APIKeyError) Error() string {
	return fmt.Sprintf("auth: api key #%d: %s %s", e.Index+1, e.Field, e.Problem)
}

// parseDigest decodes a SHA-256 digest of 64 hex digits, either case.
func parseDigest(s string) (sum [sha256.Size]byte, ok bool) {
	if len(s) != hex.EncodedLen(sha256.Size) {
		return sum, false
	}
	_, err := hex.Decode(sum[:], []byte(s))
	return sum, err == nil
}

// Authenticate returns the principal for the presented key, or
// ErrInvalidAPIKey. The key is looked up by its SHA-256 digest in a map, in
// the same time whether 1 or 1,000 keys are configured.
//
// A map lookup is as safe here as a constant-time comparison with every
// configured digest: what the lookup's timing could reveal (how a bucket's
// hash, or how many leading bytes of a stored digest, matched) is about the
// digest, and a caller cannot choose a digest: finding a key whose SHA-256
// starts with given bytes is a preimage search, so a caller learning "the
// first bytes of some configured digest are X" cannot use it to build a
// key, nor learn anything about a key's own bytes. (Comparing the presented
// key itself with stored keys is what must be constant-time, and the
// configuration never holds keys.)
func (k *APIKeys) Authenticate(presented string) (Principal, error) {
	if presented == "" {
		return Principal{}, ErrInvalidAPIKey
	}
	key := k.bySum[sha256.Sum256([]byte(presented))]
	if key == nil {
		return Principal{}, ErrInvalidAPIKey
	}
	return Principal{Kind: KindAPIKey, Name: key.name, Applications: key.apps}, nil
}
