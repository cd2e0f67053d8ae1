package auth

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/authserver-dev/authserver/internal/servertest"
)

// TestDiscoveredJWKSURIWithQuery: Azure AD B2C's discovery document gives a
// jwks_uri ending in "?p=<policy>". It must load, not be refused as a
// configuration error and retried forever.
func TestDiscoveredJWKSURIWithQuery(t *testing.T) {
	idp := oidctest.NewWithOptions(t, oidctest.Options{
		IssuerPath: "/tfp/contoso.onmicrosoft.com/b2c_1_signin/v2.0/",
		JWKSQuery:  "p=b2c_1_signin",
	})
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	p, err := v.Verify(t.Context(), idp.Sign("RS256", idp.Claims("b2c-user", testAudience, testNow())))
	if err != nil || p.UserID != "b2c-user" {
		t.Fatalf("Verify: %+v, %v", p, err)
	}
}

// TestJWKSURLWithQuery: a configured jwks_url may have a query too.
func TestJWKSURLWithQuery(t *testing.T) {
	idp := oidctest.NewWithOptions(t, oidctest.Options{JWKSQuery: "p=b2c_1_signin"})
	v := mustVerifier(t, []Provider{{Issuer: idp.Issuer(), JWKSURL: idp.JWKSURL(), Audience: testAudience, Applications: []string{"*"}}}, VerifierOptions{})
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if _, err := NewVerifier(t.Context(), []Provider{{Issuer: idp.Issuer(), JWKSURL: idp.JWKSURL() + "#frag", Audience: testAudience, Applications: []string{"*"}}}, VerifierOptions{}); err == nil {
		t.Error("a JWKS URL with a fragment was accepted")
	}
}

// TestMisconfiguredProviderNotRetried: a discovery document naming another
// issuer is a configuration mistake. It is logged once, as an error, Ready
// says what is wrong, and the document is not fetched again and again.
func TestMisconfiguredProviderNotRetried(t *testing.T) {
	idp := oidctest.NewWithOptions(t, oidctest.Options{DiscoveryIssuer: "https://elsewhere.example/"})
	logs := &servertest.Buffer{}
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	err := v.Ready()
	if err == nil || !strings.Contains(err.Error(), "misconfigured") || !strings.Contains(err.Error(), "https://elsewhere.example/") {
		t.Fatalf("Ready = %v, want it to say the provider is misconfigured and why", err)
	}
	// The old behaviour retried after 250 ms, 500 ms, 1 s, …: within this
	// wait it would have fetched the document at least three times.
	time.Sleep(4 * retryMinDelay)
	if n := idp.DiscoveryRequests(); n != 1 {
		t.Errorf("discovery fetched %d times, want 1 (no retries of a configuration error)", n)
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d error lines, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "retrying") {
		t.Errorf("the log says it retries:\n%s", logs)
	}
}

// TestEncryptionKeysSkipped: Keycloak's JWK Set also holds RSA-OAEP keys
// marked "use": "enc". They are skipped; the signing keys work, and a token
// whose kid names an encryption key is refused.
func TestEncryptionKeysSkipped(t *testing.T) {
	idp := oidctest.NewWithOptions(t, oidctest.Options{IssuerPath: "/realms/demo", EncryptionKeys: true})
	v := mustVerifier(t, []Provider{oidcProvider(idp)}, VerifierOptions{})
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	for _, alg := range []string{"RS256", "ES256"} {
		if _, err := v.Verify(t.Context(), idp.Sign(alg, idp.Claims("kc-user", testAudience, testNow()))); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
	if _, err := v.Verify(t.Context(), idp.SignWithKID("RS256", "enc-1", idp.Claims("kc-user", testAudience, testNow()))); err == nil {
		t.Error("a token naming the encryption key's kid was accepted")
	}
}

func TestTransformUserID(t *testing.T) {
	// Expected values computed outside Go:
	//   printf %s 'auth0|5f7c8ec7c33c6c004bbafe82' | base64 | tr '+/' '-_' | tr -d =
	//   printf %s 'auth0|5f7c8ec7c33c6c004bbafe82' | sha256sum
	const sub = "auth0|5f7c8ec7c33c6c004bbafe82"
	for _, tc := range []struct{ transform, want string }{
		{"", sub},
		{TransformNone, sub},
		{TransformBase64URL, "YXV0aDB8NWY3YzhlYzdjMzNjNmMwMDRiYmFmZTgy"},
		{TransformSHA256, "41aa487887e3c45c19b2448b2f036552f00b2c78e23946d390a7e846f6ad58e1"},
	} {
		got, err := TransformUserID(tc.transform, sub)
		if err != nil || got != tc.want {
			t.Errorf("TransformUserID(%q) = %q, %v; want %q", tc.transform, got, err, tc.want)
		}
	}
	if _, err := TransformUserID("md5", sub); err == nil {
		t.Error("unknown transform accepted")
	}
	if _, err := NewVerifier(t.Context(), []Provider{with2(hs256Provider(), func(p *Provider) { p.UserIDTransform = "hex" })}, VerifierOptions{}); err == nil {
		t.Error("NewVerifier accepted an unknown transform")
	}
}

func with2(p Provider, f func(*Provider)) Provider { f(&p); return p }

// TestProviderClaimShapes checks issuer aliases, issuer templates, another
// audience claim and required claims at the Verify level, with the reason
// each refusal reports.
func TestProviderClaimShapes(t *testing.T) {
	idp := oidctest.NewWithOptions(t, oidctest.Options{
		IssuerPath: "/{tenantid}/v2.0", DiscoveryPath: "/common/v2.0/.well-known/openid-configuration",
	})
	google := oidctest.NewWithOptions(t, oidctest.Options{JWKSPath: "/google-keys"})
	cognito := oidctest.NewWithOptions(t, oidctest.Options{IssuerPath: "/pool"})
	bare := strings.TrimPrefix(google.Issuer(), "http://")
	v := mustVerifier(t, []Provider{
		{Issuer: idp.Issuer(), DiscoveryURL: idp.DiscoveryURL(), Audience: testAudience, Applications: []string{"*"}},
		{Issuer: google.Issuer(), IssuerAliases: []string{bare}, JWKSURL: google.JWKSURL(), Audience: testAudience, Applications: []string{"*"}},
		{Issuer: cognito.Issuer(), Audience: "client-1", AudienceClaim: "client_id",
			RequiredClaims: map[string]string{"token_use": "access"}, Applications: []string{"*"}, UserIDTransform: TransformSHA256},
	}, VerifierOptions{})
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	now := testNow()
	tenant := idp.BaseURL() + "/tenant-a/v2.0"
	entra := with(idp.Claims("u1", testAudience, now), "iss", tenant, "tid", "tenant-a")
	cog := with(cognito.Claims("u3", "", now), "aud", nil, "client_id", "client-1", "token_use", "access")
	for _, tc := range []struct {
		name   string
		tok    string
		reason string // "" accepts
		user   string
	}{
		{"entra: iss matches tid", idp.Sign("RS256", entra), "", "u1"},
		{"entra: iss of another tenant than tid", idp.Sign("RS256", with(entra, "tid", "tenant-b")), ReasonUnknownIssuer, ""},
		{"entra: no tid", idp.Sign("RS256", with(entra, "tid", nil)), ReasonUnknownIssuer, ""},
		{"entra: template itself as iss", idp.Sign("RS256", with(entra, "iss", idp.Issuer())), ReasonBadIssuer, ""},
		{"entra: wrong audience", idp.Sign("RS256", with(entra, "aud", "x")), ReasonBadAudience, ""},
		{"google: issuer", google.Sign("RS256", google.Claims("u2", testAudience, now)), "", "u2"},
		{"google: alias", google.Sign("RS256", with(google.Claims("u2", testAudience, now), "iss", bare)), "", "u2"},
		{"cognito access", cognito.Sign("RS256", cog), "", "011e39efe22590f4a339ad19cd180f4d855e32feba602d1ec8e154780838c99c"}, // printf %s u3 | sha256sum
		{"cognito: wrong client_id", cognito.Sign("RS256", with(cog, "client_id", "client-2")), ReasonBadAudience, ""},
		{"cognito: client_id not a string", cognito.Sign("RS256", with(cog, "client_id", []string{"client-1"})), ReasonBadAudience, ""},
		{"cognito: token_use id", cognito.Sign("RS256", with(cog, "token_use", "id")), ReasonBadClaim, ""},
		{"cognito: no token_use", cognito.Sign("RS256", with(cog, "token_use", nil)), ReasonBadClaim, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(t.Context(), tc.tok)
			if tc.reason == "" {
				if err != nil || p.UserID != tc.user {
					t.Fatalf("got %+v, %v; want user %q", p, err, tc.user)
				}
				return
			}
			if te := mustTokenError(t, err); te.Reason != tc.reason {
				t.Errorf("reason %q, want %q (%v)", te.Reason, tc.reason, err)
			}
		})
	}
}
