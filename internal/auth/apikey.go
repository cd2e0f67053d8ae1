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

// NewAPIKeys checks keys (non-empty unique names, 64-hex-digit digests that
// are unique, a non-empty allow-list) and returns the set.
func NewAPIKeys(keys []APIKey) (*APIKeys, error) {
	set := &APIKeys{bySum: make(map[[sha256.Size]byte]*apiKey, len(keys))}
	names := make(map[string]bool, len(keys))
	for i, k := range keys {
		if k.Name == "" {
			return nil, fmt.Errorf("auth: api key #%d: empty name", i+1)
		}
		if names[k.Name] {
			return nil, fmt.Errorf("auth: api key %q: duplicate name", k.Name)
		}
		names[k.Name] = true
		if len(k.SHA256) != hex.EncodedLen(sha256.Size) {
			return nil, fmt.Errorf("auth: api key %q: sha256 must be %d hex digits, got %d characters",
				k.Name, hex.EncodedLen(sha256.Size), len(k.SHA256))
		}
		var sum [sha256.Size]byte
		if _, err := hex.Decode(sum[:], []byte(k.SHA256)); err != nil {
			return nil, fmt.Errorf("auth: api key %q: sha256 is not hex", k.Name)
		}
		if other, dup := set.bySum[sum]; dup {
			// Two names for one key would make the principal ambiguous.
			return nil, fmt.Errorf("auth: api keys %q and %q have the same sha256", other.name, k.Name)
		}
		if !validApplications(k.Applications) {
			return nil, fmt.Errorf(`auth: api key %q: applications must list at least one non-empty key (or "*")`, k.Name)
		}
		set.bySum[sum] = &apiKey{name: k.Name, apps: cloneApplications(k.Applications)}
	}
	return set, nil
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
