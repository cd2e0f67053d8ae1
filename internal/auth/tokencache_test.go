package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/golang-jwt/jwt/v5"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.Set(t)
	return c
}

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// countHS256 makes v's HS256 provider count its signature checks: every
// full verification of one of its tokens asks the keyfunc once.
func countHS256(tb testing.TB, v *Verifier) *atomic.Int64 {
	tb.Helper()
	p := v.byIssuer[testHS256Issuer]
	if p == nil || p.hmacKeyfunc == nil {
		tb.Fatal("no HS256 provider")
	}
	var n atomic.Int64
	kf := p.hmacKeyfunc
	p.hmacKeyfunc = func(t *jwt.Token) (any, error) {
		n.Add(1)
		return kf(t)
	}
	return &n
}

// outcome is what Verify answered, comparable between two verifiers.
type outcome struct {
	principal string
	reason    string
}

func verifyOutcome(v *Verifier, tok string) outcome {
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return outcome{reason: te.Reason}
		}
		return outcome{reason: "not a TokenError: " + err.Error()}
	}
	return outcome{principal: fmt.Sprintf("%v %s %s %v", p.Kind, p.Name, p.UserID, p.Applications)}
}

func TestTokenCacheHitSkipsVerification(t *testing.T) {
	v := mustVerifier(t, []Provider{hs256Provider()}, VerifierOptions{})
	checks := countHS256(t, v)
	tok := signHS256(t, testHS256Secret(), hsClaims(testNow()))

	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for range 5 {
		p, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify again: %v", err)
		}
		if p.Kind != first.Kind || p.Name != first.Name || p.UserID != first.UserID ||
			strings.Join(p.Applications, ",") != strings.Join(first.Applications, ",") {
			t.Errorf("cached Principal = %+v, want %+v", p, first)
		}
	}
	if n := checks.Load(); n != 1 {
		t.Errorf("signature checked %d times for 6 Verify calls of one token, want 1", n)
	}
	// The cache holds what Verify returns, never the token.
	if n := v.tokens.len(); n != 1 {
		t.Errorf("cache has %d entries, want 1", n)
	}

	// Without the cache every call checks the signature.
	u := mustVerifier(t, []Provider{hs256Provider()}, VerifierOptions{TokenCacheSize: -1})
	uchecks := countHS256(t, u)
	for range 3 {
		if _, err := u.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := uchecks.Load(); n != 3 || u.tokens != nil {
		t.Errorf("cache off: signature checked %d times for 3 calls, want 3", n)
	}
}

// TestTokenCacheKeyRemoved: once a refresh of the JWK Set drops a key id,
// tokens that key signed are refused even if they were cached, as they
// would be without the cache; a new Verifier (a reload) refuses them too,
// and ForgetTokens empties the cache.
func TestTokenCacheKeyRemoved(t *testing.T) {
	idp := oidctest.New(t)
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
	claims := idp.Claims("alice", testAudience, testNow())
	tokens := []string{idp.Sign("RS256", claims), idp.Sign("ES256", claims)}
	for _, tok := range tokens {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	// Cached: presenting them again fetches nothing.
	before := idp.Requests()
	for _, tok := range tokens {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("cached token: %v", err)
		}
	}
	if n := idp.Requests() - before; n != 0 {
		t.Errorf("JWK Set fetched %d times for cached tokens, want 0", n)
	}

	idp.Rotate() // both kids leave the set
	before = idp.Requests()
	// A token under a new kid makes the Verifier fetch the new set.
	if _, err := v.Verify(context.Background(), idp.Sign("RS256", claims)); err != nil {
		t.Fatalf("token under the new kid: %v", err)
	}
	if n := idp.Requests() - before; n != 1 {
		t.Fatalf("JWK Set fetched %d times for the new kid, want 1", n)
	}
	for _, tok := range tokens {
		_, err := v.Verify(context.Background(), tok)
		if te := mustTokenError(t, err); te.Reason != ReasonUnknownKID {
			t.Errorf("cached token after the refresh removed its key: Reason = %q, want %q", te.Reason, ReasonUnknownKID)
		}
	}

	reloaded := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
	for _, tok := range tokens {
		_, err := reloaded.Verify(context.Background(), tok)
		if te := mustTokenError(t, err); te.Reason != ReasonUnknownKID {
			t.Errorf("new Verifier: Reason = %q, want %q", te.Reason, ReasonUnknownKID)
		}
	}

	v.ForgetTokens()
	if n := v.tokens.len(); n != 0 {
		t.Errorf("after ForgetTokens the cache has %d entries", n)
	}
	_, err := v.Verify(context.Background(), tokens[0])
	if te := mustTokenError(t, err); te.Reason != ReasonUnknownKID {
		t.Errorf("after ForgetTokens: Reason = %q, want %q", te.Reason, ReasonUnknownKID)
	}
}

// TestTokenCacheTimeClaims checks that a cached token is refused at exactly
// the instant an uncached one is: one verifier with the cache and one
// without share a fake clock, which walks across each token's boundary
// (exp + leeway forwards; nbf - leeway and iat - leeway backwards, as a
// clock stepped back would), and both must always answer alike.
func TestTokenCacheTimeClaims(t *testing.T) {
	start := testNow()
	const leeway = 5 * time.Second
	prov := hs256Provider()
	prov.Leeway = leeway
	base := hsClaims(start) // iat = start, exp = start + 10 min

	tests := []struct {
		name   string
		claims jwt.MapClaims
		// boundary is the first instant refused (forwards: exp + leeway)
		// or the first accepted (backwards: nbf or iat - leeway).
		boundary time.Time
		forwards bool
		reason   string
	}{
		{"exp", base, start.Add(10*time.Minute + leeway), true, ReasonExpired},
		{"fractional exp", with(base, "exp", float64(start.Add(10*time.Minute).Unix())+0.75),
			start.Add(10*time.Minute + leeway), true, ReasonExpired},
		{"nbf", with(base, "iat", start.Add(-time.Minute).Unix(), "nbf", start.Add(-time.Minute).Unix()), start.Add(-time.Minute - leeway), false, ReasonNotYetValid},
		{"iat", with(base, "iat", start.Add(-time.Minute).Unix()), start.Add(-time.Minute - leeway), false, ReasonIssuedInFuture},
		{"nbf after iat", with(base, "iat", start.Add(-2*time.Minute).Unix(), "nbf", start.Add(-time.Minute).Unix()),
			start.Add(-time.Minute - leeway), false, ReasonNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock(start)
			cached := mustVerifier(t, []Provider{prov}, VerifierOptions{Now: clock.Now})
			uncached := mustVerifier(t, []Provider{prov}, VerifierOptions{Now: clock.Now, TokenCacheSize: -1})
			checks := countHS256(t, cached)
			tok := signHS256(t, testHS256Secret(), tt.claims)
			if o := verifyOutcome(cached, tok); o.reason != "" {
				t.Fatalf("at the start: refused (%s)", o.reason)
			}
			offsets := []time.Duration{-time.Second, -time.Nanosecond, 0, time.Nanosecond, time.Second}
			if !tt.forwards {
				offsets = []time.Duration{time.Second, time.Nanosecond, 0, -time.Nanosecond, -time.Second}
			}
			refusals := 0
			for _, d := range offsets {
				at := tt.boundary.Add(d)
				clock.Set(at)
				want := verifyOutcome(uncached, tok)
				got := verifyOutcome(cached, tok)
				if got != want {
					t.Errorf("at boundary%+v: with cache %+v, without %+v", d, got, want)
				}
				refused := tt.forwards && d >= 0 || !tt.forwards && d < 0
				if refused {
					refusals++
				}
				if refused != (want.reason != "") || refused && want.reason != tt.reason {
					t.Errorf("at boundary%+v: %+v, want refused=%v (%s)", d, want, refused, tt.reason)
				}
			}
			// Accepted instants were answered from the cache; each refused
			// one was refused by the claim checks, which run before the
			// signature's.
			if refusals == 0 {
				t.Fatal("no refusal checked")
			}
			if n := checks.Load(); n != 1 {
				t.Errorf("signature checked %d times, want 1 (to fill the cache; refusals need no signature check)", n)
			}
		})
	}
}

func TestTokenCacheNotYetValidNotServed(t *testing.T) {
	clock := newFakeClock(testNow())
	v := mustVerifier(t, []Provider{hs256Provider()}, VerifierOptions{Now: clock.Now})
	checks := countHS256(t, v)
	tok := signHS256(t, testHS256Secret(), with(hsClaims(testNow()), "nbf", testNow().Add(5*time.Minute).Unix()))
	for range 3 {
		if o := verifyOutcome(v, tok); o.reason != ReasonNotYetValid {
			t.Fatalf("before nbf: %+v, want %s", o, ReasonNotYetValid)
		}
	}
	if n := v.tokens.len(); n != 0 {
		t.Errorf("cache has %d entries after refusals", n)
	}
	clock.Add(5 * time.Minute)
	if o := verifyOutcome(v, tok); o.reason != "" {
		t.Fatalf("at nbf: refused (%s)", o.reason)
	}
	clock.Set(testNow()) // stepped back: the cached entry must not answer
	if o := verifyOutcome(v, tok); o.reason != ReasonNotYetValid {
		t.Errorf("clock stepped back before nbf: %+v, want %s", o, ReasonNotYetValid)
	}
	// Only the accepted call checks the signature: the refusals come from
	// the claim checks before any key is used, and none from the cache.
	if n := checks.Load(); n != 1 {
		t.Errorf("signature checked %d times, want 1", n)
	}
}

func TestTokenCacheFailuresNotCached(t *testing.T) {
	idp, v := oidcAndHS256Verifier(t, VerifierOptions{})
	checks := countHS256(t, v)
	good := signHS256(t, testHS256Secret(), hsClaims(testNow()))
	sig := []byte(good)
	if mid := len(good) - 20; sig[mid] == 'A' { // a character of the signature
		sig[mid] = 'B'
	} else {
		sig[mid] = 'A'
	}
	tampered := string(sig)
	wrongKey := signHS256(t, []byte("another-secret-another-secret-!!!"), hsClaims(testNow()))
	noUser := signHS256(t, testHS256Secret(), with(hsClaims(testNow()), "sub", nil))
	rsNoUser := idp.Sign("RS256", with(idp.Claims("alice", testAudience, testNow()), "sub", nil))

	for round := range 3 {
		for _, tok := range []string{tampered, wrongKey, noUser, rsNoUser, "", "x.y.z"} {
			if o := verifyOutcome(v, tok); o.reason == "" {
				t.Fatalf("round %d: a bad token was accepted: %+v", round, o)
			}
		}
		if n := v.tokens.len(); n != 0 {
			t.Fatalf("round %d: cache has %d entries after refusals only", round, n)
		}
	}
	// tampered, wrongKey and noUser reach the signature check every time.
	if n := checks.Load(); n != 9 {
		t.Errorf("signature checked %d times for 3 rounds of 3 HS256 refusals, want 9", n)
	}

	// A good token after bad ones works, and bad ones stay refused after it.
	if o := verifyOutcome(v, good); o.reason != "" {
		t.Fatalf("good token after bad ones: %s", o.reason)
	}
	if o := verifyOutcome(v, tampered); o.reason != ReasonBadSignature {
		t.Errorf("tampered token after the good one was cached: %+v", o)
	}
	if o := verifyOutcome(v, good+" "); o.reason == "" {
		t.Error("the good token with a trailing space was accepted")
	}
	if n := v.tokens.len(); n != 1 {
		t.Errorf("cache has %d entries, want 1", n)
	}
}

func TestTokenCacheBound(t *testing.T) {
	const max = 16
	clock := newFakeClock(testNow())
	v := mustVerifier(t, []Provider{hs256Provider()}, VerifierOptions{Now: clock.Now, TokenCacheSize: max})
	checks := countHS256(t, v)
	token := func(i int, exp time.Duration) string {
		return signHS256(t, testHS256Secret(), with(hsClaims(testNow()),
			"sub", fmt.Sprintf("user-%d", i), "exp", testNow().Add(exp).Unix()))
	}
	for i := range 2 * max {
		if o := verifyOutcome(v, token(i, 10*time.Minute)); o.principal == "" {
			t.Fatalf("token %d: %s", i, o.reason)
		}
		if n := v.tokens.len(); n > max {
			t.Fatalf("after %d tokens the cache has %d entries, max %d", i+1, n, max)
		}
	}
	// The newest token is cached.
	before := checks.Load()
	_ = verifyOutcome(v, token(2*max-1, 10*time.Minute))
	if checks.Load() != before {
		t.Error("the newest token was not answered from the cache")
	}

	// Expired entries go first: fill the cache with short-lived tokens
	// and one long-lived one, let the short ones expire, add more.
	v.ForgetTokens()
	long := token(1000, time.Hour)
	_ = verifyOutcome(v, long)
	for i := range max - 1 {
		_ = verifyOutcome(v, token(i, time.Minute))
	}
	if n := v.tokens.len(); n != max {
		t.Fatalf("cache has %d entries, want %d", n, max)
	}
	clock.Add(time.Minute + DefaultLeeway)
	for i := range max - 1 {
		_ = verifyOutcome(v, token(100+i, time.Hour))
	}
	before = checks.Load()
	if o := verifyOutcome(v, long); o.principal == "" || checks.Load() != before {
		t.Errorf("the live entry was evicted while expired ones could go (%+v)", o)
	}
	if n := v.tokens.len(); n != max {
		t.Errorf("cache has %d entries, want %d", n, max)
	}
}

func TestTokenCacheSizeOne(t *testing.T) {
	v := mustVerifier(t, []Provider{hs256Provider()}, VerifierOptions{TokenCacheSize: 1})
	a := signHS256(t, testHS256Secret(), with(hsClaims(testNow()), "sub", "a"))
	b := signHS256(t, testHS256Secret(), with(hsClaims(testNow()), "sub", "b"))
	for range 3 {
		for _, tok := range []string{a, b} {
			if o := verifyOutcome(v, tok); o.principal == "" {
				t.Fatal(o.reason)
			}
			if n := v.tokens.len(); n != 1 {
				t.Fatalf("cache has %d entries, want 1", n)
			}
		}
	}
}

func TestTokenCacheConcurrent(t *testing.T) {
	clock := newFakeClock(testNow())
	idp, v := oidcAndHS256Verifier(t, VerifierOptions{Now: clock.Now, TokenCacheSize: 8, RefreshInterval: 5 * time.Millisecond})
	claims := idp.Claims("alice", testAudience, testNow())
	var good []string
	for i := range 6 {
		c := with(claims, "sub", fmt.Sprintf("user-%d", i))
		good = append(good, idp.Sign("RS256", c), idp.Sign("ES256", c),
			signHS256(t, testHS256Secret(), with(hsClaims(testNow()), "sub", fmt.Sprintf("hs-%d", i))))
	}
	bad := []string{good[0][:len(good[0])-4] + "AAAA", signHS256(t, []byte("another-secret-another-secret-!!!"), hsClaims(testNow())), "a.b.c"}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tok := good[(g*7+i)%len(good)]
				p, err := v.Verify(context.Background(), tok)
				if err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				if p.UserID == "" {
					t.Errorf("Principal %+v", p)
					return
				}
				if i%17 == 0 {
					if _, err := v.Verify(context.Background(), bad[(g+i)%len(bad)]); err == nil {
						t.Error("a bad token was accepted")
						return
					}
				}
				if g == 0 && i%50 == 0 {
					v.ForgetTokens()
					clock.Add(time.Second) // well within exp
				}
			}
		})
	}
	wg.Wait()
	if n := v.tokens.len(); n > 8 {
		t.Errorf("cache has %d entries, max 8", n)
	}
}

func TestTokenCacheShards(t *testing.T) {
	for _, size := range []int{1, 2, 255, 511, 512, 1000, 4097, defaultTokenCacheSize, 1 << 20} {
		c := newTokenCache(size)
		n := len(c.shards)
		if n < 1 || n > maxShards || n&(n-1) != 0 {
			t.Errorf("size %d: %d shards, want a power of two up to %d", size, n, maxShards)
		}
		sum := 0
		for i := range c.shards {
			s := &c.shards[i]
			sum += s.max
			if s.max < min(size, minShardSize) {
				t.Errorf("size %d: shard %d holds %d", size, i, s.max)
			}
		}
		if sum != size {
			t.Errorf("size %d: shards hold %d in all", size, sum)
		}
	}
	if n := len(newTokenCache(defaultTokenCacheSize).shards); n != maxShards {
		t.Errorf("the default cache has %d shards, want %d", n, maxShards)
	}
}

// TestTokenCacheBoundSharded is the bound with several shards: 2×max
// distinct tokens never make the cache hold more than max.
func TestTokenCacheBoundSharded(t *testing.T) {
	const max = 1000
	v := mustVerifier(t, []Provider{hs256Provider()}, VerifierOptions{TokenCacheSize: max})
	if n := len(v.tokens.shards); n < 2 {
		t.Fatalf("%d shards, want several", n)
	}
	claims := hsClaims(testNow())
	for i := range 2 * max {
		tok := signHS256(t, testHS256Secret(), with(claims, "sub", "user-"+strconv.Itoa(i)))
		if o := verifyOutcome(v, tok); o.principal == "" {
			t.Fatalf("token %d: %s", i, o.reason)
		}
		if n := v.tokens.len(); n > max {
			t.Fatalf("after %d tokens the cache has %d entries, max %d", i+1, n, max)
		}
	}
	if n := v.tokens.len(); n < max*3/4 {
		t.Errorf("the cache has %d entries after %d tokens, want most of %d", n, 2*max, max)
	}
}
