package auth

import (
	"crypto/sha256"
	"crypto/subtle"
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
	keys []apiKey
}

type apiKey struct {
	name string
	sum  [sha256.Size]byte
	apps []string
}

// NewAPIKeys checks keys (non-empty unique names, 64-hex-digit digests that
// are unique, a non-empty allow-list) and returns the set.
func NewAPIKeys(keys []APIKey) (*APIKeys, error) {
	set := &APIKeys{keys: make([]apiKey, 0, len(keys))}
	names := make(map[string]bool, len(keys))
	sums := make(map[[sha256.Size]byte]string, len(keys))
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
		if other, dup := sums[sum]; dup {
			// Two names for one key would make the principal ambiguous.
			return nil, fmt.Errorf("auth: api keys %q and %q have the same sha256", other, k.Name)
		}
		sums[sum] = k.Name
		if !validApplications(k.Applications) {
			return nil, fmt.Errorf(`auth: api key %q: applications must list at least one non-empty key (or "*")`, k.Name)
		}
		set.keys = append(set.keys, apiKey{name: k.Name, sum: sum, apps: cloneApplications(k.Applications)})
	}
	return set, nil
}

// Authenticate returns the principal for the presented key, or
// ErrInvalidAPIKey. The key's digest is compared in constant time with every
// configured digest, without stopping at a match, so the time taken does not
// reveal which key matched or how much of a digest did.
func (k *APIKeys) Authenticate(presented string) (Principal, error) {
	if presented == "" {
		return Principal{}, ErrInvalidAPIKey
	}
	sum := sha256.Sum256([]byte(presented))
	match := -1
	for i := range k.keys {
		eq := subtle.ConstantTimeCompare(sum[:], k.keys[i].sum[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return Principal{}, ErrInvalidAPIKey
	}
	key := &k.keys[match]
	return Principal{Kind: KindAPIKey, Name: key.name, Applications: key.apps}, nil
}
