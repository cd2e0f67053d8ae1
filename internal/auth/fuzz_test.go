package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
)

// FuzzVerify feeds arbitrary bearer tokens to Verify: it must never panic,
// and must either accept with a user id or refuse with a *TokenError.
func FuzzVerify(f *testing.F) {
	now := testNow()
	idp := oidctest.New(f)
	v := mustVerifier(f, []Provider{oidcProvider(idp), hs256Provider()}, VerifierOptions{})
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
		var te *TokenError
		if !errors.As(err, &te) {
			t.Fatalf("error %v (%T) is not a *TokenError", err, err)
		}
		if te.Reason == "" || te.Description == "" {
			t.Fatalf("TokenError without reason or description: %+v", te)
		}
		if len(raw) > 16 && strings.Contains(te.Error(), raw) {
			t.Fatalf("error text repeats the token: %q", te.Error())
		}
	})
}
