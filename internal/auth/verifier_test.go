package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyAccepts(t *testing.T) {
	now := testNow()
	idp, v := oidcAndHS256Verifier(t, VerifierOptions{})
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	claims := idp.Claims("alice", testAudience, now)

	tests := []struct {
		name     string
		token    string
		wantUser string
		wantIss  string
		wantApps []string
	}{
		{"RS256", idp.Sign("RS256", claims), "alice", idp.Issuer(), []string{"*"}},
		{"ES256", idp.Sign("ES256", claims), "alice", idp.Issuer(), []string{"*"}},
		{"audience list", idp.Sign("RS256", with(claims, "aud", []string{"other", testAudience})), "alice", idp.Issuer(), []string{"*"}},
		{"expired within leeway", idp.Sign("ES256", with(claims, "exp", now.Add(-30*time.Second).Unix())), "alice", idp.Issuer(), []string{"*"}},
		{"nbf within leeway", idp.Sign("ES256", with(claims, "nbf", now.Add(30*time.Second).Unix())), "alice", idp.Issuer(), []string{"*"}},
		{"HS256 provider", signHS256(t, testHS256Secret(), hsClaims(now)), "hs-user", testHS256Issuer, []string{"app-1", "app-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Kind != KindUser || p.UserID != tt.wantUser || p.Name != tt.wantIss || !slices.Equal(p.Applications, tt.wantApps) {
				t.Errorf("Principal = %+v, want user %q of %q with %v", p, tt.wantUser, tt.wantIss, tt.wantApps)
			}
		})
	}
}

// FuzzVerify feeds arbitrary bearer tokens to Verify: it must never panic,
// and must either accept with a user id or refuse with a *TokenError.
func FuzzVerify(f *testing.F) {
	now := testNow()
	idp, v := oidcAndHS256Verifier(f, VerifierOptions{})
	claims := idp.Claims("alice", testAudience, now)
	rs := idp.Sign("RS256", claims)
	for _, seed := range []string{
		"",
		".",
		"..",
		"...",
		"a.b.c",
		"e30.e30.",
		"eyJhbGciOiJub25lIn0.e30.",
		rs,
		idp.Sign("ES256", claims),
		idp.SignWithKID("RS256", "", claims),
		signHS256(f, testHS256Secret(), hsClaims(now)),
		rs[:len(rs)-1],
		strings.Replace(rs, ".", "..", 1),
		"Bearer " + rs,
		"eyJhbGciOiJSUzI1NiIsImtpZCI6WzFdfQ.eyJpc3MiOnt9fQ.AA",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.Verify(context.Background(), raw)
		if err == nil {
			if p.Kind != KindUser || p.UserID == "" || p.Name == "" {
				t.Fatalf("accepted with an incomplete principal %+v", p)
			}
			return
		}
		te := mustTokenError(t, err)
		if te.Reason == "" || te.Description == "" {
			t.Fatalf("TokenError without reason or description: %+v", te)
		}
		if len(raw) > 16 && strings.Contains(te.Error(), raw) {
			t.Fatalf("error text repeats the token: %q", te.Error())
		}
	})
}

func TestVerifyCustomUserIDClaim(t *testing.T) {
	now := testNow()
	idp := oidctest.New(t)
	cfg := oidcProvider(idp)
	cfg.UserIDClaim = "user_id"
	v := mustVerifier(t, []Provider{cfg}, VerifierOptions{})
	claims := with(idp.Claims("opaque-subject", testAudience, now), "user_id", "bob_42")

	p, err := v.Verify(context.Background(), idp.Sign("RS256", claims))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.UserID != "bob_42" {
		t.Errorf("UserID = %q, want the user_id claim %q", p.UserID, "bob_42")
	}
	// The sub claim alone is not enough when another claim is configured.
	_, err = v.Verify(context.Background(), idp.Sign("RS256", with(claims, "user_id", nil)))
	if te := mustTokenError(t, err); te.Reason != ReasonMissingUserClaim {
		t.Errorf("Reason = %q, want %q", te.Reason, ReasonMissingUserClaim)
	}
}

func TestVerifyRefusals(t *testing.T) {
	now := testNow()
	idp, v := oidcAndHS256Verifier(t, VerifierOptions{})
	other := oidctest.New(t) // a different key pair with the same kids
	claims := idp.Claims("alice", testAudience, now)
	good := idp.Sign("RS256", claims)
	goodParts := strings.Split(good, ".")
	pem := idp.RSAPublicKeyPEM()
	rsaKID := idp.KID("RS256")

	hmacWith := func(key []byte, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := func(c jwt.MapClaims, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tamperedPayload := goodParts[0] + "." + base64.RawURLEncoding.EncodeToString(
		[]byte(strings.Replace(mustDecode(t, goodParts[1]), `"alice"`, `"mallory"`, 1))) + "." + goodParts[2]
	sig := []byte(goodParts[2])
	// Change a middle character (every bit of it counts) to another valid
	// base64url character.
	if mid := len(sig) / 2; sig[mid] == 'A' {
		sig[mid] = 'B'
	} else {
		sig[mid] = 'A'
	}
	tamperedSig := goodParts[0] + "." + goodParts[1] + "." + string(sig)

	tests := []struct {
		name   string
		token  string
		reason string
		// maxFetches, when >= 0, is how many JWK Set fetches the refusal
		// may cause.
		maxFetches int
		// maxTime, when set, bounds how long the refusal may take.
		maxTime time.Duration
	}{
		{name: "missing token", token: "", reason: ReasonMalformed, maxFetches: 0},
		{name: "blank", token: "   ", reason: ReasonMalformed, maxFetches: 0},
		{name: "not a JWT", token: "not-a-jwt", reason: ReasonMalformed, maxFetches: 0},
		{name: "two segments", token: goodParts[0] + "." + goodParts[1], reason: ReasonMalformed, maxFetches: 0},
		{name: "four segments", token: good + ".x", reason: ReasonMalformed, maxFetches: 0},
		{name: "bad base64 header", token: "!!!." + goodParts[1] + "." + goodParts[2], reason: ReasonMalformed, maxFetches: 0},
		{name: "header not JSON", token: seg("{alg") + "." + goodParts[1] + "." + goodParts[2], reason: ReasonMalformed, maxFetches: 0},
		{name: "payload not an object", token: goodParts[0] + "." + seg(`[1,2]`) + "." + goodParts[2], reason: ReasonMalformed, maxFetches: 0},
		{name: "bad base64 signature", token: goodParts[0] + "." + goodParts[1] + ".***", reason: ReasonMalformed, maxFetches: 0},
		{name: "too large", token: idp.Sign("RS256", with(claims, "pad", strings.Repeat("x", maxTokenLen))), reason: ReasonMalformed, maxFetches: 0},
		{name: "crit header", token: seg(`{"alg":"RS256","kid":"`+rsaKID+`","crit":["exp"]}`) + "." + goodParts[1] + "." + goodParts[2], reason: ReasonMalformed, maxFetches: 0},
		{name: "alg none", token: none(claims, ""), reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "alg none with kid", token: none(claims, rsaKID), reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "kid not a string", token: seg(`{"alg":"RS256","kid":7}`) + "." + goodParts[1] + "." + goodParts[2], reason: ReasonMalformed, maxFetches: 0},
		{name: "kid null", token: seg(`{"alg":"RS256","kid":null}`) + "." + goodParts[1] + "." + goodParts[2], reason: ReasonMalformed, maxFetches: 0},
		{name: "alg missing", token: seg(`{"kid":"`+rsaKID+`"}`) + "." + goodParts[1] + "." + goodParts[2], reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "HS256 signed with RSA public key PEM (alg confusion)", token: hmacWith(pem, rsaKID, claims), reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "HS256 signed with RSA public key PEM, no kid", token: hmacWith(pem, "", claims), reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "HS256 provider's token claiming a JWKS issuer", token: hmacWith(testHS256Secret(), "", claims), reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "PS256 under an RS256 key", token: idp.Sign("PS256", claims), reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "ES256 with the kid of the RSA key", token: idp.SignWithKID("ES256", rsaKID, claims), reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "RS256 token claiming the HS256 issuer", token: idp.Sign("RS256", hsClaims(now)), reason: ReasonBadAlgorithm, maxFetches: 0},
		{name: "HS256 with wrong secret", token: signHS256(t, []byte("another-secret-another-secret-!!!"), hsClaims(now)), reason: ReasonBadSignature, maxFetches: 0},
		{name: "expired", token: idp.Sign("RS256", with(claims, "iat", now.Add(-20*time.Minute).Unix(), "exp", now.Add(-2*time.Minute).Unix())), reason: ReasonExpired, maxFetches: 0},
		{name: "no exp", token: idp.Sign("RS256", with(claims, "exp", nil)), reason: ReasonMalformed, maxFetches: 0},
		{name: "exp not a number", token: idp.Sign("RS256", with(claims, "exp", "tomorrow")), reason: ReasonMalformed, maxFetches: 0},
		{name: "nbf in the future", token: idp.Sign("ES256", with(claims, "nbf", now.Add(5*time.Minute).Unix())), reason: ReasonNotYetValid, maxFetches: 0},
		{name: "iat far in the future", token: idp.Sign("ES256", with(claims, "iat", now.Add(time.Hour).Unix(), "exp", now.Add(2*time.Hour).Unix())), reason: ReasonIssuedInFuture, maxFetches: 0},
		{name: "no iat", token: idp.Sign("RS256", with(claims, "iat", nil)), reason: ReasonMalformed, maxFetches: 0},
		{name: "iat older than the max token age, exp in year 3000", token: idp.Sign("RS256", with(claims, "iat", now.Add(-25*time.Hour).Unix(), "exp", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).Unix())), reason: ReasonTooOld, maxFetches: 0},
		{name: "unknown iss", token: idp.Sign("RS256", with(claims, "iss", "https://evil.example.com")), reason: ReasonUnknownIssuer, maxFetches: 0},
		{name: "iss with trailing slash", token: idp.Sign("RS256", with(claims, "iss", idp.Issuer()+"/")), reason: ReasonUnknownIssuer, maxFetches: 0},
		{name: "no iss", token: idp.Sign("RS256", with(claims, "iss", nil)), reason: ReasonUnknownIssuer, maxFetches: 0},
		{name: "iss not a string", token: idp.Sign("RS256", with(claims, "iss", 7)), reason: ReasonMalformed, maxFetches: 0},
		{name: "iss spelled differently from the claim validated", token: idp.Sign("RS256", with(claims, "iss", nil, "ISS", idp.Issuer())), reason: ReasonBadIssuer, maxFetches: 0},
		{name: "wrong aud", token: idp.Sign("RS256", with(claims, "aud", "someone-else")), reason: ReasonBadAudience, maxFetches: 0},
		{name: "no aud", token: idp.Sign("RS256", with(claims, "aud", nil)), reason: ReasonBadAudience, maxFetches: 0},
		{name: "tampered payload", token: tamperedPayload, reason: ReasonBadSignature, maxFetches: 0},
		{name: "tampered signature", token: tamperedSig, reason: ReasonBadSignature, maxFetches: 0},
		{name: "signed by another key under a known kid", token: other.Sign("RS256", claims), reason: ReasonBadSignature, maxFetches: 0},
		{name: "missing user id claim", token: idp.Sign("ES256", with(claims, "sub", nil)), reason: ReasonMissingUserClaim, maxFetches: 0},
		{name: "empty user id claim", token: idp.Sign("ES256", with(claims, "sub", "")), reason: ReasonMissingUserClaim, maxFetches: 0},
		{name: "user id claim not a string", token: idp.Sign("ES256", with(claims, "sub", 42)), reason: ReasonMissingUserClaim, maxFetches: 0},
		// These two run in this order: the first unknown kid may refetch
		// the JWK Set once; the next one, right after, must not refetch
		// and must not wait for the rate limiter.
		{name: "unknown kid", token: idp.SignWithKID("RS256", "no-such-kid", claims), reason: ReasonUnknownKID, maxFetches: 1, maxTime: 2 * time.Second},
		{name: "second unknown kid right after", token: idp.SignWithKID("ES256", "another-bad-kid", claims), reason: ReasonUnknownKID, maxFetches: 0, maxTime: 500 * time.Millisecond},
	}
	secrets := []string{string(pem), string(testHS256Secret()), rsaKID, "no-such-kid"}
	for _, line := range strings.Split(string(pem), "\n") {
		if len(line) > 8 {
			secrets = append(secrets, line)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := idp.Requests()
			start := time.Now()
			p, err := v.Verify(context.Background(), tt.token)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", p)
			}
			if p.Kind != 0 || p.Name != "" || p.UserID != "" || p.Applications != nil {
				t.Errorf("Principal = %+v with an error, want zero", p)
			}
			te := mustTokenError(t, err)
			if te.Reason != tt.reason {
				t.Errorf("Reason = %q (%v), want %q", te.Reason, errors.Unwrap(err), tt.reason)
			}
			tokenSecrets := append([]string{tt.token}, secrets...)
			for _, s := range strings.Split(tt.token, ".") {
				if len(s) > 8 {
					tokenSecrets = append(tokenSecrets, s)
				}
			}
			checkSafeDescription(t, te.Description, tokenSecrets...)
			checkSafeDescription(t, te.Error(), tokenSecrets...)
			if fetched := idp.Requests() - before; tt.maxFetches >= 0 && fetched > tt.maxFetches {
				t.Errorf("JWK Set fetched %d times, want at most %d", fetched, tt.maxFetches)
			}
			if tt.maxTime > 0 && elapsed > tt.maxTime {
				t.Errorf("refusal took %v, want at most %v", elapsed, tt.maxTime)
			}
		})
	}
}

func mustDecode(tb testing.TB, seg string) string {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestVerifyErrorsUnwrap(t *testing.T) {
	now := testNow()
	idp := oidctest.New(t)
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
	claims := idp.Claims("alice", testAudience, now)
	_, err := v.Verify(context.Background(), idp.Sign("RS256", with(claims, "exp", now.Add(-time.Hour).Unix())))
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("errors.Is(%v, jwt.ErrTokenExpired) = false", err)
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	now := testNow()
	idp := oidctest.New(t)
	// Without the token cache: with it, the old token stays valid until it
	// expires (TestTokenCacheKeyRemoved).
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{TokenCacheSize: -1})
	claims := idp.Claims("alice", testAudience, now)
	old := idp.Sign("RS256", claims)
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatalf("token before rotation: %v", err)
	}

	idp.Rotate()
	before := idp.Requests()
	if _, err := v.Verify(context.Background(), idp.Sign("RS256", claims)); err != nil {
		t.Fatalf("token with the new RSA kid: %v", err)
	}
	if got := idp.Requests() - before; got != 1 {
		t.Errorf("JWK Set fetched %d times for the new kid, want 1", got)
	}
	// The one refresh brought the new EC key too.
	if _, err := v.Verify(context.Background(), idp.Sign("ES256", claims)); err != nil {
		t.Fatalf("token with the new EC kid: %v", err)
	}
	// The old key is gone from the set, and the limiter allows no refetch.
	_, err := v.Verify(context.Background(), old)
	if te := mustTokenError(t, err); te.Reason != ReasonUnknownKID {
		t.Errorf("old kid after rotation: Reason = %q, want %q", te.Reason, ReasonUnknownKID)
	}
	if got := idp.Requests() - before; got != 1 {
		t.Errorf("JWK Set fetched %d times in all, want 1", got)
	}
}

func TestVerifyBackgroundRefresh(t *testing.T) {
	idp, log, v, claims := refreshingVerifier(t)
	// Use up the unknown-kid allowance so only the background refresh can
	// bring the new keys.
	_, _ = v.Verify(context.Background(), idp.SignWithKID("RS256", "nope", claims))

	idp.Rotate()
	tok := idp.Sign("ES256", claims)
	waitFor(t, 5*time.Second, "the background refresh to load the new key", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return err == nil
	})
	if n := log.count(idp.Issuer(), "ok"); n < 2 {
		t.Errorf("OnRefresh reported %d successes, want at least 2 (load + refresh)", n)
	}
}

func TestVerifyProviderDownLater(t *testing.T) {
	idp, log, v, claims := refreshingVerifier(t)
	rs, es := idp.Sign("RS256", claims), idp.Sign("ES256", claims)

	idp.Close()
	waitFor(t, 5*time.Second, "a failed refresh", func() bool { return log.count(idp.Issuer(), "error") > 0 })
	for _, tok := range []string{rs, es} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("Verify with cached keys: %v", err)
		}
	}
	if err := v.Ready(); err != nil {
		t.Errorf("Ready with cached keys: %v", err)
	}
	start := time.Now()
	_, err := v.Verify(context.Background(), idp.SignWithKID("RS256", "new-kid", claims))
	if te := mustTokenError(t, err); te.Reason != ReasonUnknownKID {
		t.Errorf("unknown kid while down: Reason = %q, want %q", te.Reason, ReasonUnknownKID)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("unknown kid while down took %v", d)
	}
}

func TestNewVerifierProviderUnreachable(t *testing.T) {
	now := testNow()
	idp := oidctest.New(t)
	idp.SetAvailable(false)
	var log refreshLog
	v := mustVerifier(t, []Provider{oidcProvider(idp), hs256Provider()}, VerifierOptions{OnRefresh: log.record})

	err := v.Ready()
	if err == nil {
		t.Fatal("Ready = nil with the identity provider down")
	}
	if !strings.Contains(err.Error(), idp.Issuer()) || strings.Contains(err.Error(), testHS256Issuer) {
		t.Errorf("Ready = %q, want it to name %q only", err, idp.Issuer())
	}
	if log.count(idp.Issuer(), "error") == 0 {
		t.Error("OnRefresh did not report the failed load")
	}
	tok := idp.Sign("RS256", idp.Claims("alice", testAudience, now))
	_, err = v.Verify(context.Background(), tok)
	if te := mustTokenError(t, err); te.Reason != ReasonProviderUnavailable {
		t.Errorf("Reason = %q, want %q", te.Reason, ReasonProviderUnavailable)
	}
	// Other providers work meanwhile.
	if _, err := v.Verify(context.Background(), signHS256(t, testHS256Secret(), hsClaims(now))); err != nil {
		t.Errorf("HS256 provider while the other is down: %v", err)
	}

	idp.SetAvailable(true)
	waitFor(t, 10*time.Second, "Ready after the provider came up", func() bool { return v.Ready() == nil })
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("Verify after the provider came up: %v", err)
	}
	if log.count(idp.Issuer(), "ok") == 0 {
		t.Error("OnRefresh did not report the successful load")
	}
}

func TestNewVerifierNothingListening(t *testing.T) {
	idp := oidctest.New(t)
	issuer := idp.Issuer()
	idp.Close() // the port is now closed: connections are refused
	v := mustVerifier(t, []Provider{{Issuer: issuer, Audience: testAudience, Applications: []string{"*"}}}, VerifierOptions{})
	if err := v.Ready(); err == nil || !strings.Contains(err.Error(), issuer) {
		t.Errorf("Ready = %v, want an error naming %s", err, issuer)
	}
}

func TestDiscovery(t *testing.T) {
	now := testNow()
	t.Run("issuer with path and trailing slash", func(t *testing.T) {
		idp := oidctest.NewWithOptions(t, oidctest.Options{IssuerPath: "/tenant/"})
		v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
		if err := v.Ready(); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		if _, err := v.Verify(context.Background(), idp.Sign("RS256", idp.Claims("alice", testAudience, now))); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if idp.DiscoveryRequests() != 1 {
			t.Errorf("discovery fetched %d times, want 1", idp.DiscoveryRequests())
		}
	})
	t.Run("document for another issuer", func(t *testing.T) {
		idp := oidctest.New(t)
		cfg := oidcProvider(idp)
		cfg.Issuer += "/" // same discovery URL, but the document says no slash
		v := mustVerifier(t, []Provider{cfg}, VerifierOptions{})
		if err := v.Ready(); err == nil {
			t.Error("Ready = nil, want an error: discovery named another issuer")
		}
		if idp.Requests() != 0 {
			t.Errorf("JWK Set fetched %d times from an unverified document", idp.Requests())
		}
	})
	t.Run("JWKS URL skips discovery", func(t *testing.T) {
		idp := oidctest.New(t)
		cfg := oidcProvider(idp)
		cfg.JWKSURL = idp.JWKSURL()
		v := mustVerifier(t, []Provider{cfg}, VerifierOptions{})
		if _, err := v.Verify(context.Background(), idp.Sign("ES256", idp.Claims("alice", testAudience, now))); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if idp.DiscoveryRequests() != 0 {
			t.Errorf("discovery fetched %d times, want 0", idp.DiscoveryRequests())
		}
	})
}

func TestDiscoveryURL(t *testing.T) {
	tests := []struct{ issuer, want string }{
		{"https://idp.example.com", "https://idp.example.com/.well-known/openid-configuration"},
		{"https://idp.example.com/", "https://idp.example.com/.well-known/openid-configuration"},
		{"https://idp.example.com/tenant", "https://idp.example.com/tenant/.well-known/openid-configuration"},
		{"https://idp.example.com/tenant/", "https://idp.example.com/tenant/.well-known/openid-configuration"},
		{"https://idp.example.com//", "https://idp.example.com//.well-known/openid-configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			if got := discoveryURL(tt.issuer); got != tt.want {
				t.Errorf("discoveryURL(%q) = %q, want %q", tt.issuer, got, tt.want)
			}
		})
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	base := Provider{Issuer: "https://idp.example.com", Audience: testAudience, Applications: []string{"*"}}
	mod := func(f func(*Provider)) []Provider {
		p := base
		f(&p)
		return []Provider{p}
	}
	shortSecret := []byte("short-secret-do-not-print")
	tests := []struct {
		name      string
		providers []Provider
		opts      VerifierOptions
	}{
		{"no issuer", mod(func(p *Provider) { p.Issuer = "" }), VerifierOptions{}},
		{"no audience", mod(func(p *Provider) { p.Audience = "" }), VerifierOptions{}},
		{"no applications", mod(func(p *Provider) { p.Applications = nil }), VerifierOptions{}},
		{"empty application", mod(func(p *Provider) { p.Applications = []string{"app", ""} }), VerifierOptions{}},
		{"negative leeway", mod(func(p *Provider) { p.Leeway = -time.Second }), VerifierOptions{}},
		{"short HS256 secret", mod(func(p *Provider) { p.HS256Secret = shortSecret }), VerifierOptions{}},
		{"HS256 secret and JWKS URL", mod(func(p *Provider) {
			p.HS256Secret = testHS256Secret()
			p.JWKSURL = "https://idp.example.com/jwks"
		}), VerifierOptions{}},
		{"JWKS URL not http", mod(func(p *Provider) { p.JWKSURL = "ftp://idp.example.com/jwks" }), VerifierOptions{}},
		{"JWKS URL relative", mod(func(p *Provider) { p.JWKSURL = "/jwks" }), VerifierOptions{}},
		{"discovery issuer not a URL", mod(func(p *Provider) { p.Issuer = "my-issuer" }), VerifierOptions{}},
		{"discovery issuer with query", mod(func(p *Provider) { p.Issuer = "https://idp.example.com/?x=1" }), VerifierOptions{}},
		{"discovery issuer with fragment", mod(func(p *Provider) { p.Issuer = "https://idp.example.com/#x" }), VerifierOptions{}},
		{"duplicate issuer", []Provider{base, base}, VerifierOptions{}},
		{"negative refresh interval", []Provider{base}, VerifierOptions{RefreshInterval: -time.Second}},
		{"negative unknown-kid rate", []Provider{base}, VerifierOptions{UnknownKIDRateLimit: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(context.Background(), tt.providers, tt.opts)
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier accepted invalid configuration")
			}
			if strings.Contains(err.Error(), string(shortSecret)) || strings.Contains(err.Error(), string(testHS256Secret())) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestVerifierWithoutJWKSProviders(t *testing.T) {
	v := mustVerifier(t, nil, VerifierOptions{})
	if err := v.Ready(); err != nil {
		t.Errorf("Ready with no providers: %v", err)
	}
	_, err := v.Verify(context.Background(), signHS256(t, testHS256Secret(), hsClaims(testNow())))
	if te := mustTokenError(t, err); te.Reason != ReasonUnknownIssuer {
		t.Errorf("Reason = %q, want %q", te.Reason, ReasonUnknownIssuer)
	}

	// A non-URL issuer is fine for a shared-secret provider, which needs no
	// discovery, and such a provider is ready at once.
	v = mustVerifier(t, []Provider{hs256Provider()}, VerifierOptions{})
	if err := v.Ready(); err != nil {
		t.Errorf("Ready with an HS256 provider: %v", err)
	}
}

func TestVerifierClose(t *testing.T) {
	idp := oidctest.New(t)
	v, err := NewVerifier(context.Background(), []Provider{oidcProvider(idp)},
		VerifierOptions{Now: testNow, RefreshInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a background refresh", func() bool { return idp.Requests() >= 2 })
	v.Close()
	time.Sleep(200 * time.Millisecond) // let a refresh that was in flight finish
	n := idp.Requests()
	time.Sleep(100 * time.Millisecond)
	if got := idp.Requests(); got != n {
		t.Errorf("JWK Set fetched %d more times after Close", got-n)
	}
	// Cached keys still verify after Close.
	if _, err := v.Verify(context.Background(), idp.Sign("RS256", idp.Claims("alice", testAudience, testNow()))); err != nil {
		t.Errorf("Verify after Close: %v", err)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	now := testNow()
	idp, v := oidcAndHS256Verifier(t, VerifierOptions{RefreshInterval: 5 * time.Millisecond})
	claims := idp.Claims("alice", testAudience, now)
	tokens := []string{
		idp.Sign("RS256", claims),
		idp.Sign("ES256", claims),
		signHS256(t, testHS256Secret(), hsClaims(now)),
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				tok := tokens[(g+i)%len(tokens)]
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				if i%10 == 0 {
					_, _ = v.Verify(context.Background(), idp.SignWithKID("ES256", "unknown", claims))
					_ = v.Ready()
				}
			}
		})
	}
	wg.Wait()
}

// TestAlgConfusionLayers checks that each defence below Verify's own alg
// check refuses an HS256 token signed with the provider's RSA public key:
// the parser's WithValidMethods, and, without it, the key type check (an
// RSA public key is not an HMAC secret).
func TestAlgConfusionLayers(t *testing.T) {
	idp := oidctest.New(t)
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
	p := v.byIssuer[idp.Issuer()]
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, idp.Claims("alice", testAudience, testNow()))
	tok.Header["kid"] = idp.KID("RS256")
	raw, err := tok.SignedString(idp.RSAPublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	kf := p.keys.Load().kf.KeyfuncCtx(context.Background())

	_, err = p.parser.ParseWithClaims(raw, jwt.MapClaims{}, kf)
	if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("provider parser: err = %v, want the method refused", err)
	}

	bare := jwt.NewParser(jwt.WithTimeFunc(testNow)) // no WithValidMethods
	_, err = bare.ParseWithClaims(raw, jwt.MapClaims{}, kf)
	if err == nil {
		t.Fatal("parser without WithValidMethods accepted the token")
	}
	if te := classify(err, nil); te.Reason != ReasonBadAlgorithm {
		t.Errorf("without WithValidMethods: Reason = %q (%v), want %q", te.Reason, err, ReasonBadAlgorithm)
	}
}

func TestVerifyTokenWithoutKID(t *testing.T) {
	idp := oidctest.New(t)
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
	claims := idp.Claims("alice", testAudience, testNow())
	// Without a kid, keyfunc offers every key of the set; each is tried
	// with the token's algorithm only, so only the right key can match.
	for _, alg := range []string{"RS256", "ES256"} {
		if _, err := v.Verify(context.Background(), idp.SignWithKID(alg, "", claims)); err != nil {
			t.Errorf("%s token without kid: %v", alg, err)
		}
	}
	other := oidctest.New(t)
	_, err := v.Verify(context.Background(), other.SignWithKID("RS256", "", claims))
	if te := mustTokenError(t, err); te.Reason != ReasonBadSignature {
		t.Errorf("foreign key without kid: Reason = %q, want %q", te.Reason, ReasonBadSignature)
	}
}

// refreshingVerifier is a verifier of one provider that refreshes its keys
// in the background every 20 ms, recording each refresh.
func refreshingVerifier(t *testing.T) (*oidctest.Provider, *refreshLog, *Verifier, jwt.MapClaims) {
	t.Helper()
	idp := oidctest.New(t)
	log := &refreshLog{}
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{
		RefreshInterval: 20 * time.Millisecond,
		OnRefresh:       log.record,
	})
	return idp, log, v, idp.Claims("alice", testAudience, testNow())
}

// refreshLog records OnRefresh calls.
type refreshLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *refreshLog) record(provider, result string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, provider+" "+result)
}

func (l *refreshLog) count(provider, result string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if c == provider+" "+result {
			n++
		}
	}
	return n
}
