package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/golang-jwt/jwt/v5"
)

const testAudience = "my-app"

// testNow is the fixed clock of these tests.
func testNow() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }

// testHS256Secret is the shared secret of the HS256 test provider.
func testHS256Secret() []byte { return []byte("0123456789abcdef0123456789abcdef-hs256-test") }

const testHS256Issuer = "internal-hs256"

func oidcProvider(idp *oidctest.Provider) Provider {
	return Provider{Issuer: idp.Issuer(), Audience: testAudience, Applications: []string{"*"}}
}

func hs256Provider() Provider {
	return Provider{
		Issuer:       testHS256Issuer,
		HS256Secret:  testHS256Secret(),
		Audience:     testAudience,
		Applications: []string{"app-1", "app-2"},
	}
}

func mustVerifier(tb testing.TB, providers []Provider, opts VerifierOptions) *Verifier {
	tb.Helper()
	if opts.Now == nil {
		opts.Now = testNow
	}
	v, err := NewVerifier(context.Background(), providers, opts)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	tb.Cleanup(v.Close)
	return v
}

// oidcAndHS256Verifier returns a fresh OIDC test provider and a Verifier
// (mustVerifier, with opts) that trusts it and the HS256 provider.
func oidcAndHS256Verifier(tb testing.TB, opts VerifierOptions) (*oidctest.Provider, *Verifier) {
	tb.Helper()
	idp := oidctest.New(tb)
	return idp, mustVerifier(tb, []Provider{oidcProvider(idp), hs256Provider()}, opts)
}

func signHS256(tb testing.TB, secret []byte, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		tb.Fatalf("sign HS256: %v", err)
	}
	return s
}

func hsClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testHS256Issuer,
		"sub": "hs-user",
		"aud": testAudience,
		"iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
}

// with returns a copy of c with the given changes; a nil value deletes.
var with = oidctest.WithClaims

func mustTokenError(tb testing.TB, err error) *TokenError {
	tb.Helper()
	var te *TokenError
	if !errors.As(err, &te) {
		tb.Fatalf("error %v (%T) is not a *TokenError", err, err)
	}
	return te
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkSafeDescription fails if d is empty, could break out of a quoted
// WWW-Authenticate parameter, or contains any of the secrets.
func checkSafeDescription(tb testing.TB, d string, secrets ...string) {
	tb.Helper()
	if d == "" {
		tb.Error("empty Description")
	}
	for _, r := range d {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			tb.Errorf("Description %q has character %q unsafe in a header", d, r)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(d, s) {
			tb.Errorf("Description %q contains secret material %q", d, s)
		}
	}
}
