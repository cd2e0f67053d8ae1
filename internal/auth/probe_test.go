package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
)

// TestProbe: Probe follows the provider's availability now, while Ready (keys
// loaded) and Verify keep working with the keys loaded at start.
func TestProbe(t *testing.T) {
	discovered, direct := oidctest.New(t), oidctest.New(t)
	withJWKS := oidcProvider(direct)
	withJWKS.JWKSURL = direct.JWKSURL()
	v := mustVerifier(t, []Provider{oidcProvider(discovered), withJWKS, hs256Provider()}, VerifierOptions{})
	if err := v.Probe(context.Background()); err != nil {
		t.Fatalf("Probe with both providers up: %v", err)
	}
	discovered.SetAvailable(false)
	err := v.Probe(context.Background())
	if err == nil || !strings.Contains(err.Error(), discovered.Issuer()+": GET "+discovered.DiscoveryURL()+": HTTP status 503") ||
		strings.Contains(err.Error(), direct.Issuer()+":") {
		t.Errorf("Probe with the discovered provider down: %v", err)
	}
	if err := v.Ready(); err != nil {
		t.Errorf("Ready during the outage: %v (the keys loaded at start are still there)", err)
	}
	tok := discovered.Sign("RS256", discovered.Claims("alice", testAudience, testNow()))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("Verify during the outage: %v", err)
	}
	discovered.SetAvailable(true)
	direct.Close()
	err = v.Probe(context.Background())
	if err == nil || !strings.Contains(err.Error(), direct.Issuer()+": GET "+direct.JWKSURL()+": ") {
		t.Errorf("Probe with the JWKS provider closed: %v", err)
	}
}

// TestProbeUsesDiscoveryURL: a provider with discovery_url (an issuer
// template, Azure B2C) is probed there, as its keys are fetched, not at the
// issuer's own well-known path (for a template, a URL with "{tenantid}" in
// it, which would keep the check failing).
func TestProbeUsesDiscoveryURL(t *testing.T) {
	idp := oidctest.NewWithOptions(t, oidctest.Options{
		IssuerPath: "/{tenantid}/v2.0", DiscoveryPath: "/common/v2.0/.well-known/openid-configuration",
	})
	v := mustVerifier(t, []Provider{
		{Issuer: idp.Issuer(), DiscoveryURL: idp.DiscoveryURL(), Audience: testAudience, Applications: []string{"*"}},
	}, VerifierOptions{})
	if err := v.Probe(context.Background()); err != nil {
		t.Fatalf("Probe of a template provider that is up: %v", err)
	}
}
