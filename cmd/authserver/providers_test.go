package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
)

// providerShape is one real identity provider, as a loopback provider of
// the same shape and the README's config block for it.
type providerShape struct {
	name string // the comment after "identity_providers:" in the README block
	// hosts are the real scheme+host prefixes of the README block, replaced
	// by the loopback provider's base URL (and host, for bare issuers).
	hosts []string
	opts  oidctest.Options
	// good returns claims the real provider would put in a token for this
	// config, and the Sinch user id the response must name.
	good func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string)
	// bad are tokens the provider must refuse with 401, besides the
	// wrong-issuer and wrong-audience ones every row gets.
	bad map[string]func(good jwt.MapClaims) jwt.MapClaims
	// audClaim is the claim holding the audience (for the wrong-audience case).
	audClaim string
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func providerShapes() []providerShape {
	idToken := func(iss, sub, aud string, now time.Time, extra ...any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": iss, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		return oidctest.WithClaims(c, extra...)
	}
	const entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	return []providerShape{
		{
			name:  "Auth0",
			hosts: []string{"https://YOUR_TENANT.us.auth0.com"},
			opts:  oidctest.Options{IssuerPath: "/"},
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				const sub = "auth0|5f7c8ec7c33c6c004bbafe82"
				c := idToken(p.Issuer(), sub, "", now,
					"aud", []string{"https://api.example.com", p.Issuer() + "userinfo"},
					"azp", "abcDEF123", "scope", "openid profile")
				return c, b64url(sub)
			},
		},
		{
			name:  "Okta",
			hosts: []string{"https://YOUR_ORG.okta.com"},
			opts:  oidctest.Options{IssuerPath: "/oauth2/default"},
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				return idToken(p.Issuer(), "00u1a2b3c4d5e6f7g8h9", "0oaYOURCLIENTID", now, "ver", 1, "amr", []string{"pwd"}), "00u1a2b3c4d5e6f7g8h9"
			},
		},
		{
			name:  "Keycloak",
			hosts: []string{"https://keycloak.example.com"},
			opts:  oidctest.Options{IssuerPath: "/realms/YOUR_REALM", EncryptionKeys: true},
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				const sub = "f1e2d3c4-b5a6-4798-8a9b-0c1d2e3f4a5b"
				return idToken(p.Issuer(), sub, "your-client-id", now, "typ", "ID", "azp", "your-client-id"), sub
			},
		},
		{
			name:  "Microsoft Entra ID",
			hosts: []string{"https://login.microsoftonline.com"},
			opts: oidctest.Options{
				IssuerPath:    "/{tenantid}/v2.0",
				DiscoveryPath: "/common/v2.0/.well-known/openid-configuration",
				JWKSPath:      "/common/discovery/v2.0/keys",
			},
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				const sub = "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"
				iss := p.BaseURL() + "/" + entraTenant + "/v2.0"
				return idToken(iss, sub, "00000000-0000-0000-0000-0000000c11e7", now, "tid", entraTenant, "ver", "2.0"), sub
			},
			bad: map[string]func(jwt.MapClaims) jwt.MapClaims{
				"tid of another tenant than iss": func(c jwt.MapClaims) jwt.MapClaims {
					return oidctest.WithClaims(c, "tid", "00000000-1111-2222-3333-444444444444")
				},
				"no tid": func(c jwt.MapClaims) jwt.MapClaims { return oidctest.WithClaims(c, "tid", nil) },
			},
		},
		{
			name:  "Azure AD B2C",
			hosts: []string{"https://YOUR_TENANT.b2clogin.com"},
			opts: oidctest.Options{
				IssuerPath:    "/YOUR_TENANT_ID/v2.0/",
				DiscoveryPath: "/YOUR_TENANT.onmicrosoft.com/v2.0/.well-known/openid-configuration",
				JWKSPath:      "/YOUR_TENANT.onmicrosoft.com/discovery/v2.0/keys",
				JWKSQuery:     "p=B2C_1_signupsignin",
			},
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				const sub = "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
				return idToken(p.Issuer(), sub, "00000000-0000-0000-0000-0000000b2c00", now, "tfp", "B2C_1_signupsignin"), sub
			},
		},
		{
			name:  "Google",
			hosts: []string{"https://accounts.google.com", "accounts.google.com"},
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				return idToken(p.Issuer(), "109312345678901234567", "1234567890-abc.apps.googleusercontent.com", now,
					"email", "alice@example.com", "email_verified", true), "109312345678901234567"
			},
			bad: map[string]func(jwt.MapClaims) jwt.MapClaims{}, // the alias is a good token: see aliasGood
		},
		{
			name:  "Firebase",
			hosts: []string{"https://securetoken.google.com", "https://www.googleapis.com"},
			opts: oidctest.Options{
				IssuerPath: "/YOUR_PROJECT_ID",
				JWKSPath:   "/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com",
			},
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				const sub = "custom:user/42"
				return idToken(p.Issuer(), sub, "YOUR_PROJECT_ID", now, "user_id", sub, "auth_time", now.Unix(),
					"firebase", map[string]any{"sign_in_provider": "custom"}), b64url(sub)
			},
		},
		{
			name:  "Cognito ID tokens",
			hosts: []string{"https://cognito-idp.eu-west-1.amazonaws.com"},
			opts:  oidctest.Options{IssuerPath: "/eu-west-1_EXAMPLE"},
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				const sub = "3f2e1d0c-9b8a-4765-8432-10fedcba9876"
				return idToken(p.Issuer(), sub, "YOURAPPCLIENTID", now, "token_use", "id", "cognito:username", "alice"), sub
			},
			bad: map[string]func(jwt.MapClaims) jwt.MapClaims{
				"access token (no aud)": func(c jwt.MapClaims) jwt.MapClaims {
					return oidctest.WithClaims(c, "aud", nil, "client_id", "YOURAPPCLIENTID", "token_use", "access")
				},
			},
		},
		{
			name:     "Cognito access tokens",
			hosts:    []string{"https://cognito-idp.eu-west-1.amazonaws.com"},
			opts:     oidctest.Options{IssuerPath: "/eu-west-1_EXAMPLE"},
			audClaim: "client_id",
			good: func(p *oidctest.Provider, now time.Time) (jwt.MapClaims, string) {
				const sub = "3f2e1d0c-9b8a-4765-8432-10fedcba9876"
				c := idToken(p.Issuer(), sub, "", now, "aud", nil, "client_id", "YOURAPPCLIENTID", "token_use", "access",
					"scope", "aws.cognito.signin.user.admin", "username", "alice")
				return c, sub
			},
			bad: map[string]func(jwt.MapClaims) jwt.MapClaims{
				"ID token (token_use id)": func(c jwt.MapClaims) jwt.MapClaims {
					return oidctest.WithClaims(c, "token_use", "id", "aud", "YOURAPPCLIENTID")
				},
				"no token_use": func(c jwt.MapClaims) jwt.MapClaims { return oidctest.WithClaims(c, "token_use", nil) },
			},
		},
	}
}

// readmeProviderBlocks returns the README's identity provider config
// blocks by the name in their first line's comment.
func readmeProviderBlocks(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```yaml\nidentity_providers: +# ([^\n]+)\n(.*?)```")
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestIdentityProviderShapes runs serve with the README's config block for
// each real identity provider, pointed at a loopback provider of the same
// shape, and checks that a token like the real one gets a registration JWT
// for the right Sinch user, and that a token with the wrong issuer or
// audience (and each row's own bad variants) gets 401.
func TestIdentityProviderShapes(t *testing.T) {
	t.Parallel()
	shapes := providerShapes()
	blocks := readmeProviderBlocks(t)
	idps := make([]*oidctest.Provider, len(shapes))
	var yaml strings.Builder
	for i, sh := range shapes {
		block, ok := blocks[sh.name]
		if !ok {
			t.Fatalf("README.md has no config block for %s", sh.name)
		}
		idps[i] = oidctest.NewWithOptions(t, sh.opts)
		base := idps[i].BaseURL()
		var pairs []string
		for _, h := range sh.hosts {
			if strings.Contains(h, "://") {
				pairs = append(pairs, h, base)
			} else {
				pairs = append(pairs, h, strings.TrimPrefix(base, "http://"))
			}
		}
		yaml.WriteString(strings.NewReplacer(pairs...).Replace(block))
	}
	// The two Cognito rows share an issuer in the README; here each has its
	// own loopback provider, so both fit in one config.
	f := newServeFixture(t)
	// Every row sends its bad tokens from one address: the failed-auth
	// budget (tested on its own) would turn the later 401s into 429s.
	cfg := f.config() + "rate_limits: {per_ip_failed_auth: \"off\"}\nidentity_providers:\n" + yaml.String()
	_, s := f.serve(t, cfg)
	secret := readSecret(t, f.secretFile)

	status := func(t *testing.T, tok string) (int, []byte) {
		t.Helper()
		resp, body := s.post(t, "/v1/registration-tokens", map[string]string{"Authorization": "Bearer " + tok}, "")
		return resp.StatusCode, body
	}
	for i, sh := range shapes {
		idp := idps[i]
		t.Run(sh.name, func(t *testing.T) {
			now := time.Now()
			good, user := sh.good(idp, now)
			check200 := func(t *testing.T, claims jwt.MapClaims) {
				t.Helper()
				code, body := status(t, idp.Sign("RS256", claims))
				if code != http.StatusOK {
					t.Fatalf("good token: %d %s", code, body)
				}
				var got struct{ Token, UserID string }
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				if got.UserID != user {
					t.Errorf("userId %q, want %q", got.UserID, user)
				}
				checkJWT(t, got.Token, serveAppKey, secret, user, 5*time.Minute)
			}
			t.Run("good token", func(t *testing.T) { check200(t, good) })
			if sh.name == "Google" {
				t.Run("good token, issuer without https://", func(t *testing.T) {
					check200(t, oidctest.WithClaims(good, "iss", strings.TrimPrefix(idp.Issuer(), "http://")))
				})
			}
			audClaim := sh.audClaim
			if audClaim == "" {
				audClaim = "aud"
			}
			bad := map[string]jwt.MapClaims{
				"wrong issuer":        oidctest.WithClaims(good, "iss", "https://attacker.example/"),
				"wrong audience":      oidctest.WithClaims(good, audClaim, "another-client"),
				"expired":             oidctest.WithClaims(good, "exp", now.Add(-time.Hour).Unix(), "iat", now.Add(-2*time.Hour).Unix()),
				"issuer of elsewhere": oidctest.WithClaims(good, "iss", idp.BaseURL()+"/other/"),
			}
			for name, f := range sh.bad {
				bad[name] = f(good)
			}
			for name, claims := range bad {
				t.Run(name, func(t *testing.T) {
					if code, body := status(t, idp.Sign("RS256", claims)); code != http.StatusUnauthorized {
						t.Errorf("got %d %s, want 401", code, body)
					}
				})
			}
			t.Run("signed by another provider", func(t *testing.T) {
				other := idps[(i+1)%len(idps)]
				if code, body := status(t, other.Sign("RS256", good)); code != http.StatusUnauthorized {
					t.Errorf("got %d %s, want 401", code, body)
				}
			})
		})
	}
}

// TestAuth0UserIDsThroughTransform: Auth0's sub ("auth0|…") is outside
// Sinch's alphabet. Without a transform it is a 400; with each transform it
// is a 200 for the mapped id, the same on every call.
func TestAuth0UserIDsThroughTransform(t *testing.T) {
	t.Parallel()
	idp := oidctest.NewWithOptions(t, oidctest.Options{IssuerPath: "/"})
	const sub = "google-oauth2|109312345678901234567"
	sum := sha256.Sum256([]byte(sub))
	f := newServeFixture(t)
	for _, tc := range []struct {
		transform string // "" leaves the key out
		want      string // "" expects 400
	}{
		{"", ""},
		{"none", ""},
		{"base64url", b64url(sub)},
		{"sha256", hex.EncodeToString(sum[:])},
	} {
		t.Run("transform="+tc.transform, func(t *testing.T) {
			block := "identity_providers:\n  - issuer: " + idp.Issuer() + "\n    audience: https://api.example.com\n"
			if tc.transform != "" {
				block += "    user_id_transform: " + tc.transform + "\n"
			}
			rc, s := f.serve(t, f.config()+block)
			tok := idp.Sign("RS256", idp.Claims(sub, "https://api.example.com", time.Now()))
			for range 2 {
				resp, body := s.post(t, "/v1/registration-tokens", map[string]string{"Authorization": "Bearer " + tok}, "")
				if tc.want == "" {
					if resp.StatusCode != http.StatusBadRequest {
						t.Fatalf("got %s %s, want 400", resp.Status, body)
					}
					continue
				}
				var got struct{ UserID string }
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.UserID != tc.want {
					t.Fatalf("got %s %s, want 200 for %q", resp.Status, body, tc.want)
				}
				// The app may also name the mapped id; the raw sub is someone else.
				resp, body = s.post(t, "/v1/registration-signatures", map[string]string{"Authorization": "Bearer " + tok}, `{"userId":"`+tc.want+`"}`)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("signature for the mapped id: %s %s", resp.Status, body)
				}
			}
			if err := rc.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMisconfiguredProviderReported: a provider whose discovery document
// names another issuer is a configuration mistake, not an outage. serve
// logs it once as an error naming the provider and the problem, /readyz
// says the same, and the document is not fetched again and again.
func TestMisconfiguredProviderReported(t *testing.T) {
	t.Parallel()
	idp := oidctest.NewWithOptions(t, oidctest.Options{IssuerPath: "/tenant/", DiscoveryIssuer: "https://elsewhere.example/tenant/"})
	f := newServeFixture(t)
	rc, s := f.serve(t, f.config()+"identity_providers:\n  - issuer: "+idp.Issuer()+"\n    audience: my-app\n")

	resp, body := s.get(t, s.adminURL+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "misconfigured") ||
		!strings.Contains(string(body), "https://elsewhere.example/tenant/") {
		t.Errorf("/readyz: %s %s; want 503 naming the misconfiguration", resp.Status, body)
	}
	// Long enough for the old retry loop (250 ms, 500 ms, 1 s, …) to have
	// fetched the document several times.
	time.Sleep(time.Second)
	if n := idp.DiscoveryRequests(); n != 1 {
		t.Errorf("discovery fetched %d times, want 1", n)
	}
	var errorLines []string
	for _, l := range strings.Split(rc.stderr.String(), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			errorLines = append(errorLines, l)
		}
	}
	if len(errorLines) != 1 || !strings.Contains(errorLines[0], idp.Issuer()) || !strings.Contains(errorLines[0], "elsewhere.example") {
		t.Errorf("want one error line naming the provider and the problem, got:\n%s", strings.Join(errorLines, "\n"))
	}
}
