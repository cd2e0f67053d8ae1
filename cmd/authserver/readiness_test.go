package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/authserver-dev/authserver/internal/pgtest"
)

// TestReadinessForReplicas: with Postgres stopped and then the identity
// provider stopped, JWTs keep being issued, so /readyz (what a balancer
// routes on) stays 200 and `healthcheck` passes; each dependency's own
// endpoint, `healthcheck --check`, the verbose list and the
// authserver_dependency_up metric show the outage.
func TestReadinessForReplicas(t *testing.T) {
	t.Parallel()
	cluster, dbURL := pgtest.New(t)
	idp := oidctest.New(t)
	f := newServeFixture(t)
	_, s := f.serve(t, f.config()+"database_url: "+dbURL+"\nidentity_providers:\n  - issuer: "+idp.Issuer()+"\n    audience: my-app\n")

	healthcheck := func(args ...string) error {
		var out bytes.Buffer
		return run(context.Background(), append([]string{"healthcheck", "--url", s.adminURL + "/readyz"}, args...), envOf(nil), &out, &out)
	}
	status := func(path string) (int, string) {
		resp, body := s.get(t, s.adminURL+path)
		return resp.StatusCode, string(body)
	}
	dependencyUp := func(dep string) string {
		_, body := status("/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, `authserver_dependency_up{dependency="`+dep+`"} `) {
				return strings.Fields(line)[1]
			}
		}
		t.Fatalf("/metrics has no authserver_dependency_up for %s", dep)
		return ""
	}
	bearer := func() string {
		return "Bearer " + idp.Sign("RS256", idp.Claims("alice", "my-app", time.Now()))
	}
	issue := func(path string, hdr map[string]string) int {
		resp, _ := s.post(t, path, hdr, `{"userId":"alice"}`)
		return resp.StatusCode
	}

	if code, body := status("/readyz?verbose=1"); code != http.StatusOK ||
		body != "[+]identity_provider_keys ok\n[+]sequence_store ok\n[+]identity_providers ok\nreadyz check passed\n" {
		t.Fatalf("/readyz?verbose=1 with everything up: %d\n%s", code, body)
	}
	for _, c := range []string{"", "sequence_store", "identity_providers"} {
		if err := healthcheck("--check", c); err != nil {
			t.Errorf("healthcheck --check %q with everything up: %v", c, err)
		}
	}

	if err := cluster.Stop(); err != nil {
		t.Fatalf("stopping PostgreSQL: %v", err)
	}
	if code := issue("/v1/registration-tokens", map[string]string{"X-API-Key": f.apiKey}); code != http.StatusOK {
		t.Errorf("JWT with Postgres stopped: %d, want 200", code)
	}
	if code := issue("/v1/registration-signatures", map[string]string{"X-API-Key": f.apiKey}); code != http.StatusServiceUnavailable {
		t.Errorf("signature with Postgres stopped: %d, want 503", code)
	}
	if code, body := status("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with Postgres stopped: %d %s, want 200 (JWTs still work)", code, body)
	}
	if err := healthcheck(); err != nil {
		t.Errorf("healthcheck with Postgres stopped: %v", err)
	}
	if code, body := status("/readyz/sequence_store"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "[-]sequence_store failed: ") {
		t.Errorf("/readyz/sequence_store with Postgres stopped: %d %q", code, body)
	}
	if err := healthcheck("--check", "sequence_store"); err == nil || !strings.Contains(err.Error(), "503 Service Unavailable: sequence_store failed: ") {
		t.Errorf("healthcheck --check sequence_store with Postgres stopped: %v", err)
	}
	if code, body := status("/readyz?verbose=1"); code != http.StatusOK || !strings.Contains(body, "[-]sequence_store failed (does not fail /readyz): ") ||
		!strings.Contains(body, "[+]identity_providers ok\n") {
		t.Errorf("/readyz?verbose=1 with Postgres stopped: %d\n%s", code, body)
	}
	if v := dependencyUp("sequence_store"); v != "0" {
		t.Errorf(`authserver_dependency_up{dependency="sequence_store"} = %s with Postgres stopped`, v)
	}

	idp.Close() // the identity provider stops too
	if code := issue("/v1/registration-tokens", map[string]string{"Authorization": bearer()}); code != http.StatusOK {
		t.Errorf("JWT for an identity token with the provider stopped: %d, want 200 (keys loaded at start)", code)
	}
	if code, body := status("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with Postgres and the identity provider stopped: %d %s", code, body)
	}
	if code, body := status("/readyz/identity_providers"); code != http.StatusServiceUnavailable ||
		!strings.HasPrefix(body, "[-]identity_providers failed: identity provider unreachable: "+idp.Issuer()) {
		t.Errorf("/readyz/identity_providers with the provider stopped: %d %q", code, body)
	}
	if err := healthcheck("--check", "identity_providers"); err == nil {
		t.Error("healthcheck --check identity_providers passes with the provider stopped")
	}
	if v := dependencyUp("identity_providers"); v != "0" {
		t.Errorf(`authserver_dependency_up{dependency="identity_providers"} = %s with the provider stopped`, v)
	}

	if err := cluster.Start(); err != nil {
		t.Fatalf("starting PostgreSQL again: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for code, _ := status("/readyz/sequence_store"); code != http.StatusOK; code, _ = status("/readyz/sequence_store") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz/sequence_store still %d 15 s after Postgres came back", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := dependencyUp("sequence_store"); v != "1" {
		t.Errorf(`authserver_dependency_up{dependency="sequence_store"} = %s after Postgres came back`, v)
	}
	if code := issue("/v1/registration-signatures", map[string]string{"X-API-Key": f.apiKey}); code != http.StatusOK {
		t.Errorf("signature after Postgres came back: %d", code)
	}
}
