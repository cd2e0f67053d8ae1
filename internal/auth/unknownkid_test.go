package auth

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
)

// TestUnknownKIDRotationAfterJunk is the attack run's lock-out: one token
// with a random kid spent the provider's only unknown-kid fetch for five
// minutes, so a key the provider started signing with right after stayed
// unusable for as long. Now the next fetch is allowed one interval later.
func TestUnknownKIDRotationAfterJunk(t *testing.T) {
	const interval = time.Second
	idp, v, claims := unknownKIDVerifier(t, interval)

	junkAt := time.Now()
	_, err := v.Verify(context.Background(), idp.SignWithKID("ES256", "junk-kid", claims))
	if te := mustTokenError(t, err); te.Reason != ReasonUnknownKID {
		t.Fatalf("junk token: Reason = %q, want %q", te.Reason, ReasonUnknownKID)
	}
	idp.Rotate()
	fresh := idp.Sign("ES256", claims)
	var tries int
	waitFor(t, interval+5*time.Second, "the rotated key to be accepted", func() bool {
		tries++
		start := time.Now()
		_, err := v.Verify(context.Background(), fresh)
		if d := time.Since(start); err != nil && d > time.Second {
			t.Errorf("a refusal during the interval took %v: requests must not wait", d)
		}
		return err == nil
	})
	// Accepted within the interval (plus scheduling slack), not minutes.
	if d := time.Since(junkAt); d > interval+2*time.Second {
		t.Errorf("new key accepted %v after the junk token, want about %v", d, interval)
	}
	t.Logf("new key accepted %v after the junk token (%d tries)", time.Since(junkAt).Round(time.Millisecond), tries)
}

// TestUnknownKIDFlood: 2,000 junk tokens (and more, sent for several
// intervals) cost the provider at most one fetch per interval.
func TestUnknownKIDFlood(t *testing.T) {
	const interval = 500 * time.Millisecond
	idp, v, claims := unknownKIDVerifier(t, interval)
	tokens := make([]string, 2000)
	for i := range tokens {
		tokens[i] = idp.SignWithKID("ES256", fmt.Sprintf("junk-%d", i), claims)
	}
	before := idp.Requests()
	start := time.Now()
	sent := 0
	for ; sent < len(tokens) || time.Since(start) < 4*interval; sent++ {
		_, err := v.Verify(context.Background(), tokens[sent%len(tokens)])
		if te := mustTokenError(t, err); te.Reason != ReasonUnknownKID {
			t.Fatalf("junk token: Reason = %q, want %q", te.Reason, ReasonUnknownKID)
		}
	}
	elapsed := time.Since(start)
	fetches := idp.Requests() - before
	budget := int(elapsed/interval) + 1
	t.Logf("%d junk tokens in %v: %d JWK Set fetches (budget %d)", sent, elapsed.Round(time.Millisecond), fetches, budget)
	if fetches < 1 || fetches > budget {
		t.Errorf("%d fetches in %v, want 1..%d (one per %v)", fetches, elapsed, budget, interval)
	}
}

// TestUnknownKIDBudgetNotSpentOnImpossibleTokens: a token that fails a check
// needing no key (audience, expiry, age, signature size) never causes a
// fetch, so it cannot delay a real rotation.
func TestUnknownKIDBudgetNotSpentOnImpossibleTokens(t *testing.T) {
	now := testNow()
	idp := oidctest.New(t)
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{TokenCacheSize: -1})
	claims := idp.Claims("alice", testAudience, now)
	truncated := idp.SignWithKID("ES256", "junk-short-sig", claims)
	truncated = truncated[:strings.LastIndexByte(truncated, '.')+1] + "AAAA"
	for _, tc := range []struct{ name, token, reason string }{
		{"wrong audience", idp.SignWithKID("ES256", "junk-aud", with(claims, "aud", "other")), ReasonBadAudience},
		{"expired", idp.SignWithKID("ES256", "junk-exp", with(claims, "exp", now.Add(-time.Hour).Unix())), ReasonExpired},
		{"too old", idp.SignWithKID("ES256", "junk-old", with(claims, "iat", now.Add(-48*time.Hour).Unix())), ReasonTooOld},
		{"no iat", idp.SignWithKID("ES256", "junk-iat", with(claims, "iat", nil)), ReasonMalformed},
		{"signature of the wrong size", truncated, ReasonBadSignature},
	} {
		before := idp.Requests()
		_, err := v.Verify(context.Background(), tc.token)
		if te := mustTokenError(t, err); te.Reason != tc.reason {
			t.Errorf("%s: Reason = %q, want %q", tc.name, te.Reason, tc.reason)
		}
		if n := idp.Requests() - before; n != 0 {
			t.Errorf("%s: %d JWK Set fetches, want 0", tc.name, n)
		}
	}
	// The budget is still there for a real new key.
	idp.Rotate()
	if _, err := v.Verify(context.Background(), idp.Sign("ES256", claims)); err != nil {
		t.Errorf("rotated key after impossible tokens: %v", err)
	}
}

func TestUnknownKIDDefaultInterval(t *testing.T) {
	idp := oidctest.New(t)
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
	if d := v.providers[0].kidInterval; d <= 0 || d > 30*time.Second {
		t.Errorf("default unknown-kid refresh interval %v, want at most 30s", d)
	}
}

// unknownKIDVerifier is a verifier of one provider that refetches for an
// unknown kid at most once per interval, with no token cache.
func unknownKIDVerifier(t *testing.T, interval time.Duration) (*oidctest.Provider, *Verifier, jwt.MapClaims) {
	t.Helper()
	idp := oidctest.New(t)
	prov := oidcProvider(idp)
	prov.UnknownKIDRefreshInterval = interval
	v := mustVerifier(t, []Provider{prov}, VerifierOptions{TokenCacheSize: -1})
	return idp, v, idp.Claims("alice", testAudience, testNow())
}
