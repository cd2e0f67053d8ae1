package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
)

// Token cache settings of the Verify benchmarks.
const (
	cacheOff  = -1 // every call verifies in full: the figures before the cache
	cacheHit  = 0  // the default cache; the one token is a hit after the first call
	cacheMiss = 1  // a one-entry cache and two tokens in turn: every call misses
)

// benchmarkVerify verifies alg tokens with the token cache set to cache.
func benchmarkVerify(b *testing.B, alg string, cache int) {
	idp := oidctest.New(b)
	v := mustVerifier(b, []Provider{oidcProvider(idp)}, VerifierOptions{TokenCacheSize: cache})
	claims := idp.Claims("alice", testAudience, testNow())
	tokens := []string{idp.Sign(alg, claims), idp.Sign(alg, with(claims, "sub", "bob"))}
	benchmarkVerifyTokens(b, v, tokens, cache)
}

func benchmarkVerifyTokens(b *testing.B, v *Verifier, tokens []string, cache int) {
	if cache != cacheMiss {
		tokens = tokens[:1]
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, tokens[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 1
	for b.Loop() {
		if _, err := v.Verify(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerifyRS256(b *testing.B)          { benchmarkVerify(b, "RS256", cacheOff) }
func BenchmarkVerifyRS256Cached(b *testing.B)    { benchmarkVerify(b, "RS256", cacheHit) }
func BenchmarkVerifyRS256CacheMiss(b *testing.B) { benchmarkVerify(b, "RS256", cacheMiss) }

func BenchmarkVerifyES256(b *testing.B)          { benchmarkVerify(b, "ES256", cacheOff) }
func BenchmarkVerifyES256Cached(b *testing.B)    { benchmarkVerify(b, "ES256", cacheHit) }
func BenchmarkVerifyES256CacheMiss(b *testing.B) { benchmarkVerify(b, "ES256", cacheMiss) }

func benchmarkVerifyHS256(b *testing.B, cache int) {
	v := mustVerifier(b, []Provider{hs256Provider()}, VerifierOptions{TokenCacheSize: cache})
	claims := hsClaims(testNow())
	tokens := []string{signHS256(b, testHS256Secret(), claims), signHS256(b, testHS256Secret(), with(claims, "sub", "other"))}
	benchmarkVerifyTokens(b, v, tokens, cache)
}

func BenchmarkVerifyHS256(b *testing.B)          { benchmarkVerifyHS256(b, cacheOff) }
func BenchmarkVerifyHS256Cached(b *testing.B)    { benchmarkVerifyHS256(b, cacheHit) }
func BenchmarkVerifyHS256CacheMiss(b *testing.B) { benchmarkVerifyHS256(b, cacheMiss) }

// BenchmarkVerifyRS256CachedParallel is cache hits from GOMAXPROCS
// goroutines, each with its own token, all through the cache's one mutex.
func BenchmarkVerifyRS256CachedParallel(b *testing.B) {
	idp := oidctest.New(b)
	v := mustVerifier(b, []Provider{oidcProvider(idp)}, VerifierOptions{})
	claims := idp.Claims("alice", testAudience, testNow())
	var tokens []string
	for i := range runtime.GOMAXPROCS(0) {
		tok := idp.Sign("RS256", with(claims, "sub", "user-"+strconv.Itoa(i)))
		if _, err := v.Verify(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		tok := tokens[int(next.Add(1)-1)%len(tokens)]
		ctx := context.Background()
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAPIKeysAuthenticate looks up the last of 1 and of 1,000
// configured keys by digest, next to the constant-time scan over every
// digest it replaced (scanAuthenticate, the old code), in the same run: the
// map's cost is flat, the scan's grows with the number of keys.
func BenchmarkAPIKeysAuthenticate(b *testing.B) {
	for _, n := range []int{1, 1000} {
		var cfg []APIKey
		for i := range n {
			name := fmt.Sprintf("k%d", i)
			cfg = append(cfg, APIKey{Name: name, SHA256: sha256Hex("key-" + name), Applications: []string{"*"}})
		}
		keys, err := NewAPIKeys(cfg)
		if err != nil {
			b.Fatal(err)
		}
		last := fmt.Sprintf("key-k%d", n-1)
		b.Run(fmt.Sprintf("keys=%d/map", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := keys.Authenticate(last); err != nil {
					b.Fatal(err)
				}
			}
		})
		sums := make([][sha256.Size]byte, n)
		for i, k := range cfg {
			_, _ = hex.Decode(sums[i][:], []byte(k.SHA256))
		}
		b.Run(fmt.Sprintf("keys=%d/scan", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if scanAuthenticate(sums, last) < 0 {
					b.Fatal("no match")
				}
			}
		})
	}
}

// scanAuthenticate is the lookup APIKeys.Authenticate did before the map:
// a constant-time comparison with every configured digest.
func scanAuthenticate(sums [][sha256.Size]byte, presented string) int {
	sum := sha256.Sum256([]byte(presented))
	match := -1
	for i := range sums {
		eq := subtle.ConstantTimeCompare(sum[:], sums[i][:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	return match
}

// BenchmarkTokenCachePutFull is an insertion into a full default-size cache
// of live entries with distinct keys: the amortized cost of eviction (one
// O(max) sweep per max/8 insertions).
func BenchmarkTokenCachePutFull(b *testing.B) {
	c := newTokenCache(defaultTokenCacheSize)
	now := testNow()
	e := cachedToken{principal: Principal{Kind: KindUser, Name: "iss", UserID: "u"}, expires: now.Add(time.Hour)}
	var key [32]byte
	n := uint64(0)
	put := func() {
		n++
		binary.LittleEndian.PutUint64(key[:], n)
		c.put(key, e, now)
	}
	for range defaultTokenCacheSize {
		put()
	}
	b.ReportAllocs()
	for b.Loop() {
		put()
	}
}

// BenchmarkTokenCacheSweep is one eviction sweep of a full shard of a
// default-size cache of live entries: the longest a shard's mutex is held.
func BenchmarkTokenCacheSweep(b *testing.B) {
	c := newTokenCache(defaultTokenCacheSize)
	s := &c.shards[0]
	b.ReportMetric(float64(len(c.shards)), "shards")
	b.ReportMetric(float64(s.max), "entries/shard")
	now := testNow()
	e := cachedToken{principal: Principal{Kind: KindUser, Name: "iss", UserID: "u"}, expires: now.Add(time.Hour)}
	var key [32]byte
	n := uint64(0)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for len(s.m) < s.max {
			n++
			binary.LittleEndian.PutUint64(key[:], n)
			s.m[key] = e
		}
		b.StartTimer()
		s.evictLocked(now)
	}
}
