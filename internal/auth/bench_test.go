package auth

import (
	"context"
	"testing"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
)

func benchmarkVerify(b *testing.B, alg string) {
	idp := oidctest.New(b)
	v := mustVerifier(b, []Provider{oidcProvider(idp)}, VerifierOptions{})
	tok := idp.Sign(alg, idp.Claims("alice", testAudience, testNow()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, "RS256") }

func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, "ES256") }

func BenchmarkVerifyHS256(b *testing.B) {
	v := mustVerifier(b, []Provider{hs256Provider()}, VerifierOptions{})
	tok := signHS256(b, testHS256Secret(), hsClaims(testNow()))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAPIKeysAuthenticate(b *testing.B) {
	var cfg []APIKey
	for _, name := range []string{"a", "b", "c", "d"} {
		cfg = append(cfg, APIKey{Name: name, SHA256: sha256Hex("key-" + name), Applications: []string{"*"}})
	}
	keys, err := NewAPIKeys(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.Authenticate("key-c"); err != nil {
			b.Fatal(err)
		}
	}
}
