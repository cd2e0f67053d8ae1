// Package oidctest runs an OpenID Connect identity provider in-process for
// tests and benchmarks: discovery document, JWK Set, and token signing with
// RSA-2048 and EC P-256 keys. It serves plain HTTP on loopback only.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// DiscoveryPath is the path suffix of the OpenID Connect discovery document.
const DiscoveryPath = "/.well-known/openid-configuration"

// Options changes the shape of a Provider.
type Options struct {
	// IssuerPath is appended to the server URL to form the issuer, for
	// example "/tenant/" for an issuer with a path and a trailing slash. The
	// discovery document is served at the issuer with one trailing "/"
	// removed plus DiscoveryPath, as OpenID Connect Discovery 1.0 requires.
	IssuerPath string
	// DiscoveryPath, when set, is the path the discovery document is served
	// at instead of the issuer's well-known location (Entra ID's
	// "/common/v2.0/.well-known/openid-configuration", Azure AD B2C's
	// policy paths).
	DiscoveryPath string
	// DiscoveryIssuer, when set, is the "issuer" the discovery document
	// names instead of Issuer: a template such as Entra ID's
	// ".../{tenantid}/v2.0", or a wrong issuer to test the mismatch check.
	DiscoveryIssuer string
	// JWKSPath is the path of the JWK Set; default "/jwks".
	JWKSPath string
	// JWKSQuery is appended to the JWK Set URL as a query string (Azure AD
	// B2C's "p=<policy>"); the set is served whatever the query.
	JWKSQuery string
	// EncryptionKeys adds RSA keys marked "use": "enc" with alg RSA-OAEP
	// to the JWK Set, as Keycloak publishes them.
	EncryptionKeys bool
}

// Provider is a running in-test identity provider. All methods are safe for
// concurrent use.
type Provider struct {
	srv    *httptest.Server
	base   string // server URL, without a trailing slash
	issuer string
	opts   Options

	mu     sync.Mutex
	gen    int
	rsaKey *rsa.PrivateKey
	rsaKID string
	ecKey  *ecdsa.PrivateKey
	ecKID  string
	jwks   []byte
	down   bool

	jwksRequests      atomic.Int64
	discoveryRequests atomic.Int64
}

// New starts a Provider with default options and closes it when tb's test
// ends.
func New(tb testing.TB) *Provider {
	tb.Helper()
	return NewWithOptions(tb, Options{})
}

// NewWithOptions starts a Provider with opts and closes it when tb's test
// ends.
func NewWithOptions(tb testing.TB, opts Options) *Provider {
	tb.Helper()
	p := NewServerWithOptions(opts)
	tb.Cleanup(p.Close)
	return p
}

// NewServer starts a Provider without a testing.TB; the caller must Close it.
func NewServer() *Provider {
	return NewServerWithOptions(Options{})
}

// NewServerWithOptions starts a Provider with opts without a testing.TB; the
// caller must Close it.
func NewServerWithOptions(opts Options) *Provider {
	p := &Provider{opts: opts}
	p.rotateLocked()
	// Fill every field before Start so handlers never race with setup.
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serveHTTP))
	p.base = "http://" + p.srv.Listener.Addr().String()
	p.issuer = p.base + opts.IssuerPath
	p.srv.Start()
	return p
}

// Issuer returns the provider's issuer identifier (the "iss" of its tokens).
func (p *Provider) Issuer() string { return p.issuer }

// DiscoveryURL returns the URL of the provider's discovery document.
func (p *Provider) DiscoveryURL() string {
	if p.opts.DiscoveryPath != "" {
		return p.base + p.opts.DiscoveryPath
	}
	return strings.TrimSuffix(p.issuer, "/") + DiscoveryPath
}

// BaseURL returns the server's URL ("http://127.0.0.1:port"), without a
// trailing slash.
func (p *Provider) BaseURL() string { return p.base }

// JWKSURL returns the URL of the provider's JWK Set, with Options.JWKSQuery.
func (p *Provider) JWKSURL() string {
	if p.opts.JWKSQuery != "" {
		return p.base + p.jwksPath() + "?" + p.opts.JWKSQuery
	}
	return p.base + p.jwksPath()
}

func (p *Provider) jwksPath() string {
	if p.opts.JWKSPath != "" {
		return p.opts.JWKSPath
	}
	return "/jwks"
}

// Requests returns how many times the JWK Set has been fetched.
func (p *Provider) Requests() int { return int(p.jwksRequests.Load()) }

// DiscoveryRequests returns how many times the discovery document has been
// fetched.
func (p *Provider) DiscoveryRequests() int { return int(p.discoveryRequests.Load()) }

// SetAvailable makes every endpoint answer 503 (false) or serve normally
// (true), to simulate an identity provider that is down.
func (p *Provider) SetAvailable(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = !ok
}

// Close shuts the server down. Signing keeps working after Close.
func (p *Provider) Close() { p.srv.Close() }

// KID returns the current key id for alg ("RS256", "ES256", ...).
func (p *Provider) KID(alg string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, kid := p.keyLocked(alg)
	return kid
}

// Rotate replaces both keys with new ones under new key ids; the old key ids
// disappear from the JWK Set.
func (p *Provider) Rotate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rotateLocked()
}

// RSAPublicKeyPEM returns the current RSA public key as PEM (PKIX), the bytes
// an algorithm-confusion attacker would use as an HMAC secret.
func (p *Provider) RSAPublicKeyPEM() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	der, err := x509.MarshalPKIXPublicKey(&p.rsaKey.PublicKey)
	if err != nil {
		panic(fmt.Sprintf("oidctest: marshal RSA public key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Sign returns a compact JWS of claims signed with the current key for alg,
// with that key's id in the "kid" header. alg is "RS256", "RS384", "RS512",
// "PS256", "PS384", "PS512" (RSA key) or "ES256" (EC key); anything else
// panics.
func (p *Provider) Sign(alg string, claims jwt.MapClaims) string {
	p.mu.Lock()
	_, kid := p.keyLocked(alg)
	p.mu.Unlock()
	return p.SignWithKID(alg, kid, claims)
}

// SignWithKID is Sign with an arbitrary "kid" header (no kid when empty), for
// example one the JWK Set does not contain.
func (p *Provider) SignWithKID(alg, kid string, claims jwt.MapClaims) string {
	p.mu.Lock()
	key, _ := p.keyLocked(alg)
	p.mu.Unlock()
	method := jwt.GetSigningMethod(alg)
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		panic(fmt.Sprintf("oidctest: sign %s: %v", alg, err))
	}
	return s
}

// Claims returns typical ID-token claims from this provider for subject and
// audience, issued at now and valid for ten minutes.
func (p *Provider) Claims(subject, audience string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": p.issuer,
		"sub": subject,
		"aud": audience,
		"iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
}

func (p *Provider) keyLocked(alg string) (crypto.Signer, string) {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return p.rsaKey, p.rsaKID
	case "ES256":
		return p.ecKey, p.ecKID
	}
	panic(fmt.Sprintf("oidctest: unsupported alg %q", alg))
}

func (p *Provider) rotateLocked() {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("oidctest: generate RSA key: %v", err))
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("oidctest: generate EC key: %v", err))
	}
	p.gen++
	p.rsaKey, p.rsaKID = rsaKey, fmt.Sprintf("rsa-%d", p.gen)
	p.ecKey, p.ecKID = ecKey, fmt.Sprintf("ec-%d", p.gen)

	var set jwkset.JWKSMarshal
	for _, k := range []struct {
		pub any
		alg jwkset.ALG
		kid string
	}{
		{&rsaKey.PublicKey, jwkset.AlgRS256, p.rsaKID},
		{&ecKey.PublicKey, jwkset.AlgES256, p.ecKID},
	} {
		jwk, err := jwkset.NewJWKFromKey(k.pub, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: k.alg, KID: k.kid, USE: jwkset.UseSig},
		})
		if err != nil {
			panic(fmt.Sprintf("oidctest: JWK for %s: %v", k.kid, err))
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	if p.opts.EncryptionKeys {
		// As Keycloak publishes them: an RSA-OAEP key for encryption next to
		// the signing keys, with the same kty and its own kid.
		encKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("oidctest: generate RSA key: %v", err))
		}
		jwk, err := jwkset.NewJWKFromKey(&encKey.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgRSAOAEP, KID: fmt.Sprintf("enc-%d", p.gen), USE: jwkset.UseEnc},
		})
		if err != nil {
			panic(fmt.Sprintf("oidctest: JWK for enc key: %v", err))
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	p.jwks, err = json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("oidctest: marshal JWK Set: %v", err))
	}
}

func (p *Provider) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	down, jwks := p.down, p.jwks
	p.mu.Unlock()

	var body []byte
	switch r.URL.Path {
	case p.jwksPath():
		p.jwksRequests.Add(1)
		body = jwks
	case strings.TrimPrefix(p.DiscoveryURL(), p.base):
		p.discoveryRequests.Add(1)
		issuer := p.issuer
		if p.opts.DiscoveryIssuer != "" {
			issuer = p.opts.DiscoveryIssuer
		}
		doc, err := json.Marshal(map[string]any{
			"issuer":                                issuer,
			"jwks_uri":                              p.JWKSURL(),
			"authorization_endpoint":                p.base + "/authorize",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body = doc
	default:
		http.NotFound(w, r)
		return
	}
	if down {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// WithClaims returns a copy of c with the given key/value changes, for
// building variants of a token in tests; a nil value deletes the key.
func WithClaims(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}
