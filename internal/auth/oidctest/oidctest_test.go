package oidctest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/golang-jwt/jwt/v5"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func kids(t *testing.T, p *oidctest.Provider) []string {
	t.Helper()
	status, body := get(t, p.JWKSURL())
	if status != http.StatusOK {
		t.Fatalf("JWKS status %d", status)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Alg+":"+k.KID)
	}
	return out
}

func TestDiscoveryDocument(t *testing.T) {
	for _, path := range []string{"", "/tenant/"} {
		t.Run("issuer path "+path, func(t *testing.T) {
			p := oidctest.NewWithOptions(t, oidctest.Options{IssuerPath: path})
			status, body := get(t, p.DiscoveryURL())
			if status != http.StatusOK {
				t.Fatalf("discovery status %d", status)
			}
			var doc struct {
				Issuer  string `json:"issuer"`
				JWKSURI string `json:"jwks_uri"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Issuer != p.Issuer() || doc.JWKSURI != p.JWKSURL() {
				t.Errorf("document = %+v, want issuer %q and jwks_uri %q", doc, p.Issuer(), p.JWKSURL())
			}
			if p.DiscoveryRequests() != 1 || p.Requests() != 0 {
				t.Errorf("counts: discovery %d, JWKS %d; want 1, 0", p.DiscoveryRequests(), p.Requests())
			}
		})
	}
}

func TestSignVerifiesWithPublishedKeys(t *testing.T) {
	p := oidctest.New(t)
	_, body := get(t, p.JWKSURL())
	kf, err := keyfunc.NewJWKSetJSON(body)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, alg := range []string{"RS256", "ES256"} {
		raw := p.Sign(alg, p.Claims("alice", "aud", now))
		tok, err := jwt.Parse(raw, kf.Keyfunc, jwt.WithValidMethods([]string{alg}))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if tok.Header["kid"] != p.KID(alg) {
			t.Errorf("%s: kid = %v, want %q", alg, tok.Header["kid"], p.KID(alg))
		}
	}
}

func TestRotate(t *testing.T) {
	p := oidctest.New(t)
	before := kids(t, p)
	p.Rotate()
	after := kids(t, p)
	if len(after) != 2 || slices.ContainsFunc(after, func(k string) bool { return slices.Contains(before, k) }) {
		t.Errorf("kids before %v, after %v: want two new ones", before, after)
	}
	if !slices.Contains(after, "RS256:"+p.KID("RS256")) || !slices.Contains(after, "ES256:"+p.KID("ES256")) {
		t.Errorf("kids %v do not include the current ones", after)
	}
	if p.Requests() != 2 {
		t.Errorf("Requests = %d, want 2", p.Requests())
	}
}

func TestSetAvailable(t *testing.T) {
	p := oidctest.New(t)
	p.SetAvailable(false)
	for _, u := range []string{p.DiscoveryURL(), p.JWKSURL()} {
		if status, _ := get(t, u); status != http.StatusServiceUnavailable {
			t.Errorf("GET %s while down: status %d, want 503", u, status)
		}
	}
	p.SetAvailable(true)
	if status, _ := get(t, p.JWKSURL()); status != http.StatusOK {
		t.Errorf("GET JWKS after coming up: status %d", status)
	}
}

func TestRSAPublicKeyPEM(t *testing.T) {
	p := oidctest.New(t)
	if _, err := jwt.ParseRSAPublicKeyFromPEM(p.RSAPublicKeyPEM()); err != nil {
		t.Errorf("RSAPublicKeyPEM is not an RSA public key: %v", err)
	}
}

func TestNewServer(t *testing.T) {
	p := oidctest.NewServer()
	p.Close()
	// Signing works without the server.
	if p.Sign("ES256", jwt.MapClaims{"sub": "x"}) == "" {
		t.Error("empty token")
	}
}
