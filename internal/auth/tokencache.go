package auth

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// defaultTokenCacheSize is how many verified identity tokens a Verifier
// remembers unless VerifierOptions.TokenCacheSize says otherwise. An entry
// is about 260 bytes with the map's overhead, so the default is ~2.6 MB.
const defaultTokenCacheSize = 10_000

// tokenCache remembers identity tokens that verified, by the SHA-256 of
// their exact bytes, with the Principal Verify returned and the window of
// time in which the token's time claims hold. A hit skips the signature
// check (≈30 µs for RS256) and the claim parsing; the time claims are
// checked again against the Verifier's clock on every hit, so a cached
// token stops working at exactly the instant an uncached one would.
//
// Only successes are stored: a refusal is never cached, so made-up tokens
// cannot fill the cache, and a bad token never shadows a good one. A hit
// returns the same Principal as the first verification; what callers check
// on it (the provider's applications, the user id) still runs per request.
//
// Trade-off: the signature of a cached token is not checked again, so a
// cached token stays accepted as long as the key that signed it is in the
// key set the Verifier holds. When a refresh of a provider's JWK Set (every
// refresh interval, or on an unknown kid) drops a key id, the whole cache is
// forgotten (cacheStore.onRemoved), so tokens of a removed key are refused
// from that refresh on, as they would be without the cache. A Verifier
// starts with an empty cache (a reload that changes identity_providers), and
// ForgetTokens empties it. The cache holds hashes, never tokens.
//
// The cache holds at most max entries, split by key over up to 16 shards,
// each with its own mutex, so that concurrent hits rarely wait for each
// other and a sweep (below) holds up only the hits of one shard. Shards hold
// at least minShardSize entries each (a smaller cache has one shard).
// When a shard is full, an insertion first drops its expired entries and
// then, if that freed too little, random ones, down to 7/8 of the shard's
// size; the sweep is O(shard size) (≈20 µs for 625 entries, a 10,000-entry
// cache) but happens at most once per 1/8 of the shard's size insertions,
// and every insertion follows a full verification.
type tokenCache struct {
	shards []tokenShard // a power of two of them
}

// Sharding of the token cache.
const (
	maxShards    = 16
	minShardSize = 256
)

// tokenShard is one part of a tokenCache.
type tokenShard struct {
	mu  sync.Mutex
	max int
	m   map[[sha256.Size]byte]cachedToken
	_   [40]byte // one shard per cache line: no false sharing of mu
}

// cachedToken is what a hit needs: the answer, and when it holds.
type cachedToken struct {
	principal Principal
	// notBefore is the later of nbf and iat less the provider's leeway; the
	// zero time when the token has neither. The token is refused before it.
	notBefore time.Time
	// expires is exp plus the provider's leeway. The token is refused from
	// this instant on.
	expires time.Time
}

// newTokenCache returns a cache of at most max (> 0) entries.
func newTokenCache(max int) *tokenCache {
	n := 1
	for n < maxShards && max/(2*n) >= minShardSize {
		n *= 2
	}
	c := &tokenCache{shards: make([]tokenShard, n)}
	for i := range c.shards {
		// Shard sizes add up to max exactly.
		c.shards[i].max = max / n
		if i < max%n {
			c.shards[i].max++
		}
		c.shards[i].m = make(map[[sha256.Size]byte]cachedToken)
	}
	return c
}

// shard returns the shard of key. SHA-256 output is uniform, so one byte
// of it picks evenly among up to 256 shards.
func (c *tokenCache) shard(key *[sha256.Size]byte) *tokenShard {
	return &c.shards[int(key[0])&(len(c.shards)-1)]
}

// tokenKey is the cache key of rawToken.
func tokenKey(rawToken string) [sha256.Size]byte {
	// Sum256 only reads the bytes, so it may see the string's own:
	// []byte(rawToken) would copy the token to the heap on every call
	// (measured: one allocation, ~100 ns, on a path that makes none).
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(rawToken), len(rawToken)))
}

// validAt reports whether the token's time claims hold at now, with the
// comparisons jwt.Validator makes: now < exp+leeway, now >= nbf-leeway and
// now >= iat-leeway.
func (c *cachedToken) validAt(now time.Time) bool {
	return now.Before(c.expires) && !now.Before(c.notBefore)
}

// get returns the principal of the token with key if it is cached and its
// time claims hold at now. An expired entry is dropped. A miss for any
// reason sends the token through full verification, which gives the exact
// error an uncached token gets.
func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) (Principal, bool) {
	s := c.shard(&key)
	s.mu.Lock()
	e, ok := s.m[key]
	if ok && !now.Before(e.expires) {
		delete(s.m, key)
	}
	s.mu.Unlock()
	if !ok || !e.validAt(now) {
		return Principal{}, false
	}
	return e.principal, true
}

// put stores a verified token's entry, making room first when its shard is
// full. now is the Verifier's clock, to tell expired entries.
func (c *tokenCache) put(key [sha256.Size]byte, e cachedToken, now time.Time) {
	s := c.shard(&key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= s.max {
		s.evictLocked(now)
	}
	s.m[key] = e
}

// evictLocked drops every expired entry, then random entries until at most
// 7/8 of max remain (at least one slot is freed).
func (s *tokenShard) evictLocked(now time.Time) {
	for k, e := range s.m {
		if !now.Before(e.expires) {
			delete(s.m, k)
		}
	}
	target := s.max - max(s.max/8, 1)
	for k := range s.m { // map iteration starts at a random entry
		if len(s.m) <= target {
			break
		}
		delete(s.m, k)
	}
}

// len returns the number of entries (tests).
func (c *tokenCache) len() int {
	n := 0
	c.eachShard(func(m map[[sha256.Size]byte]cachedToken) { n += len(m) })
	return n
}

// clear drops every entry.
func (c *tokenCache) clear() {
	c.eachShard(func(m map[[sha256.Size]byte]cachedToken) { clear(m) })
}

// eachShard calls f with each shard's map, under that shard's lock.
func (c *tokenCache) eachShard(f func(map[[sha256.Size]byte]cachedToken)) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		f(s.m)
		s.mu.Unlock()
	}
}

// newCachedToken builds the entry of a token whose claims the provider's
// parser has just validated: the times are read from the claims as the
// validator read them, so a hit holds exactly when validation would.
func newCachedToken(principal Principal, claims jwt.MapClaims, leeway, maxAge time.Duration) cachedToken {
	exp, err0 := claims.GetExpirationTime()
	nbf, err1 := claims.GetNotBefore()
	iat, err2 := claims.GetIssuedAt()
	if exp == nil || err0 != nil || err1 != nil || err2 != nil {
		// Cannot happen after validation (exp is required). An entry
		// whose expires is the zero time never hits.
		return cachedToken{}
	}
	e := cachedToken{principal: principal, expires: exp.Add(leeway)}
	if iat != nil && iat.Add(maxAge+leeway).Before(e.expires) {
		e.expires = iat.Add(maxAge + leeway) // the token's age limit comes first
	}
	for _, t := range [...]*jwt.NumericDate{nbf, iat} {
		if t != nil && t.Add(-leeway).After(e.notBefore) {
			e.notBefore = t.Add(-leeway)
		}
	}
	return e
}
