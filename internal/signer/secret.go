package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// MinSecretBytes is the shortest application secret accepted, once decoded.
// Sinch secrets are 16 random bytes; anything shorter is a typo or a placeholder.
const MinSecretBytes = 16

// Secret is a Sinch application secret. It keeps both forms the two schemes
// need: the Base64 text (hashed as text by the legacy signature scheme) and the
// decoded bytes (the key material of the registration JWT). Its String,
// LogValue, GoString and MarshalJSON methods never reveal it, so a Secret that
// ends up in a log line, an error or a panic prints as [redacted].
//
// A Secret also caches the per-day JWT signing key it derives, so issuing a
// token does not recompute HMAC(secret, date) for every request.
type Secret struct {
	text string
	raw  []byte
	day  *dayKeyCache
}

// ParseSecret validates and wraps the Base64 text of an application secret.
// The error never contains the secret.
func ParseSecret(text string) (Secret, error) {
	if text == "" {
		return Secret{}, fmt.Errorf("secret is empty")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		return Secret{}, fmt.Errorf("secret is not valid standard Base64")
	}
	if len(raw) < MinSecretBytes {
		return Secret{}, fmt.Errorf("secret decodes to %d bytes, need at least %d", len(raw), MinSecretBytes)
	}
	return Secret{text: text, raw: raw, day: &dayKeyCache{}}, nil
}

// MustParseSecret is ParseSecret for tests and examples; it panics on error.
func MustParseSecret(text string) Secret {
	s, err := ParseSecret(text)
	if err != nil {
		panic(err)
	}
	return s
}

// IsZero reports whether s holds no secret.
func (s Secret) IsZero() bool { return s.raw == nil }

// Reveal returns the Base64 text. Only the signer and the config loader's
// equality checks should need it.
func (s Secret) Reveal() string { return s.text }

// Equal reports whether two secrets are the same, in constant time.
func (s Secret) Equal(o Secret) bool { return hmac.Equal(s.raw, o.raw) }

// String implements fmt.Stringer without revealing the secret.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer (%#v) without revealing the secret.
func (Secret) GoString() string { return "[redacted]" }

// LogValue implements slog.LogValuer without revealing the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON implements json.Marshaler without revealing the secret.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// MarshalText implements encoding.TextMarshaler without revealing the secret
// (YAML and other encoders use it).
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// dayKey is the signing key of one UTC day plus a pool of HMAC states keyed
// with it, so signing a token allocates no hash state.
type dayKey struct {
	date uint32 // YYYYMMDD
	key  []byte
	pool sync.Pool
}

func (d *dayKey) mac() hash.Hash {
	if h, ok := d.pool.Get().(hash.Hash); ok {
		h.Reset()
		return h
	}
	return hmac.New(sha256.New, d.key)
}

func (d *dayKey) release(h hash.Hash) { d.pool.Put(h) }

// dayKeyCache holds the most recently used day's key. Tokens are issued for
// "today", so one entry is enough; verification of other days' tokens derives
// the key without caching it.
type dayKeyCache struct {
	cur atomic.Pointer[dayKey]
}

// signingKey returns the cached key for date, deriving it on a miss.
func (s Secret) signingKey(date uint32) *dayKey {
	if s.day != nil {
		if k := s.day.cur.Load(); k != nil && k.date == date {
			return k
		}
	}
	k := &dayKey{date: date, key: DeriveSigningKey(s.raw, date)}
	if s.day != nil {
		s.day.cur.Store(k)
	}
	return k
}

// verifyKey returns the key for date without replacing the cached day, so
// verifying old tokens does not evict today's issuing key.
func (s Secret) verifyKey(date uint32) []byte {
	if s.day != nil {
		if k := s.day.cur.Load(); k != nil && k.date == date {
			return k.key
		}
	}
	return DeriveSigningKey(s.raw, date)
}

// DeriveSigningKey returns Sinch's "hkdfv1" signing key for a UTC date given
// as YYYYMMDD: HMAC-SHA256(key = decoded secret, message = "YYYYMMDD").
func DeriveSigningKey(rawSecret []byte, date uint32) []byte {
	m := hmac.New(sha256.New, rawSecret)
	var buf [8]byte
	m.Write(appendDate(buf[:0], date))
	return m.Sum(nil)
}

// SecretLineError is ParseSecrets' error for one line (numbered from 1). It
// never contains the line: it may be a secret with a typo.
type SecretLineError struct {
	Line int
	Err  error
}

func (e *SecretLineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *SecretLineError) Unwrap() error { return e.Err }

// ErrNoSecret is ParseSecrets' error for a text with no secret line.
var ErrNoSecret = errors.New("no secret found")

// ParseSecrets parses a list of secrets as secret files, variables and
// flags hold them: one Base64 secret per line, newest first (the first
// signs, all verify); blank lines and lines starting with # are skipped.
// It is the one parser of such lists (config and the offline commands).
func ParseSecrets(text string) ([]Secret, error) {
	var out []Secret
	for i, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := ParseSecret(line)
		if err != nil {
			return nil, &SecretLineError{Line: i + 1, Err: err}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, ErrNoSecret
	}
	return out, nil
}
