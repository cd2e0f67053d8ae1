package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/authserver-dev/authserver/internal/httpapi"
)

func TestEndUserTokens(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			tok := e.userToken(alg, "alice")
			t.Run("own user, userId omitted", func(t *testing.T) {
				mustToken(t, e, e.do(t, req{bearer: tok}), appA, secretA, "alice")
			})
			t.Run("own user, no body at all", func(t *testing.T) {
				mustToken(t, e, e.do(t, req{bearer: tok, body: ""}), appA, secretA, "alice")
			})
			t.Run("own user, named", func(t *testing.T) {
				mustToken(t, e, e.do(t, req{bearer: tok, body: `{"userId":"alice","ttlSeconds":120}`}), appA, secretA, "alice")
			})
			t.Run("own user, second application", func(t *testing.T) {
				mustToken(t, e, e.do(t, req{bearer: tok, body: `{"applicationKey":"` + appB + `"}`}), appB, secretB, "alice")
			})
			t.Run("another user", func(t *testing.T) {
				r := e.do(t, req{bearer: tok, body: `{"userId":"bob"}`})
				p := mustProblem(t, r, http.StatusForbidden, "forbidden")
				if !strings.Contains(p.Detail, "own user id") {
					t.Errorf("detail %q", p.Detail)
				}
			})
			t.Run("signature for own user", func(t *testing.T) {
				r := e.do(t, req{path: "/v1/registration-signatures", bearer: tok})
				mustCredential(t, r)
				if got := mustDecode[httpapi.SignatureResponse](t, r); got.UserID != "alice" || got.Sequence == 0 {
					t.Errorf("got %+v", got)
				}
			})
			t.Run("signature for another user", func(t *testing.T) {
				r := e.do(t, req{path: "/v1/registration-signatures", bearer: tok, body: `{"userId":"bob"}`})
				mustProblem(t, r, http.StatusForbidden, "forbidden")
			})
		})
	}
	t.Run("lower-case scheme", func(t *testing.T) {
		mustToken(t, e, e.do(t, req{authz: "bearer " + e.userToken("RS256", "alice")}), appA, secretA, "alice")
	})
	for _, sub := range []string{"a b", "user@example.com", strings.Repeat("x", 256), "ünïcode"} {
		t.Run("sub breaks Sinch's rule: "+sub[:min(len(sub), 20)], func(t *testing.T) {
			r := e.do(t, req{bearer: e.userToken("RS256", sub)})
			p := mustProblem(t, r, http.StatusBadRequest, "invalid-request")
			if !strings.Contains(p.Detail, "identity token's user id is not a valid Sinch user id") {
				t.Errorf("detail %q", p.Detail)
			}
			if strings.Contains(string(r.body), sub) {
				t.Errorf("the problem echoes the token's sub")
			}
		})
	}
	t.Run("provider scoped to another application", func(t *testing.T) {
		tok := e.hsToken(t, "carol")
		r := e.do(t, req{bearer: tok})
		mustProblem(t, r, http.StatusForbidden, "forbidden")
		r = e.do(t, req{bearer: tok, body: `{"applicationKey":"` + appA + `"}`})
		mustProblem(t, r, http.StatusForbidden, "forbidden")
		// Its own application works.
		mustToken(t, e, e.do(t, req{bearer: tok, body: `{"applicationKey":"` + appB + `"}`}), appB, secretB, "carol")
	})
}

// withClaims returns a copy of c with the given changes; a nil value deletes.
var withClaims = oidctest.WithClaims

// bearerRefusals are identity tokens the server must refuse with 401, the
// reason they are counted under, and the error_description they get.
func bearerRefusals(tb testing.TB, e *env) []struct {
	name, authz, reason, challenge string
} {
	tb.Helper()
	idp := e.idp
	claims := idp.Claims("alice", audience, e.now)
	good := idp.Sign("RS256", claims)
	parts := strings.Split(good, ".")
	other := strings.Split(idp.Sign("RS256", withClaims(claims, "sub", "bob")), ".")

	hmacWithPEM, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(idp.RSAPublicKeyPEM())
	if err != nil {
		tb.Fatal(err)
	}
	algNone, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		tb.Fatal(err)
	}
	tamperedSig := []byte(parts[2])
	if tamperedSig[0] == 'A' {
		tamperedSig[0] = 'B'
	} else {
		tamperedSig[0] = 'A'
	}
	const (
		bare   = `Bearer realm="authserver"`
		header = `Bearer realm="authserver", error="invalid_request", error_description="the Authorization header must be Bearer followed by a token"`
	)
	invalid := func(desc string) string {
		return `Bearer realm="authserver", error="invalid_token", error_description="` + desc + `"`
	}
	return []struct{ name, authz, reason, challenge string }{
		{"missing header", "", "missing_credentials", bare},
		{"Bearer alone", "Bearer", "malformed_header", header},
		{"Bearer and spaces", "Bearer    ", "malformed_header", header},
		{"Basic scheme", "Basic x", "malformed_header", header},
		{"token without scheme", good, "malformed_header", header},
		{"not a JWT", "Bearer not-a-jwt", "malformed", invalid("the token is not a well-formed JWT")},
		{"alg none", "Bearer " + algNone,
			"bad_algorithm", invalid("the token's signing algorithm is not accepted")},
		{"HS256 signed with the RSA public key", "Bearer " + hmacWithPEM,
			"bad_algorithm", invalid("the token's signing algorithm is not accepted")},
		{"expired", "Bearer " + idp.Sign("RS256", withClaims(claims, "iat", e.now.Add(-3*time.Hour).Unix(), "exp", e.now.Add(-2*time.Hour).Unix())),
			"expired", invalid("the token has expired")},
		{"nbf in the future", "Bearer " + idp.Sign("RS256", withClaims(claims, "nbf", e.now.Add(time.Hour).Unix())),
			"not_yet_valid", invalid("the token is not valid yet (nbf)")},
		{"wrong iss", "Bearer " + idp.Sign("RS256", withClaims(claims, "iss", "https://evil.example.com")),
			"unknown_issuer", invalid("the token's issuer is not trusted")},
		{"wrong aud", "Bearer " + idp.Sign("RS256", withClaims(claims, "aud", "another-client")),
			"bad_audience", invalid("the token is not meant for this service (audience)")},
		{"unknown kid", "Bearer " + idp.SignWithKID("RS256", "no-such-kid", claims),
			"unknown_kid", invalid("the token's signing key is not known to the identity provider")},
		{"tampered payload", "Bearer " + parts[0] + "." + other[1] + "." + parts[2],
			"bad_signature", invalid("the token's signature is invalid")},
		{"tampered signature", "Bearer " + parts[0] + "." + parts[1] + "." + string(tamperedSig),
			"bad_signature", invalid("the token's signature is invalid")},
		{"missing user id claim", "Bearer " + idp.Sign("RS256", withClaims(claims, "sub", nil)),
			"missing_user_claim", invalid("the token has no user id claim")},
		{"missing exp", "Bearer " + idp.Sign("RS256", withClaims(claims, "exp", nil)),
			"malformed", invalid("the token has no expiry (exp)")},
	}
}

func TestBearerRefusals(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, tt := range bearerRefusals(t, e) {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.ToFloat64(e.m.AuthFailures.WithLabelValues(tt.reason))
			r := e.do(t, req{authz: tt.authz, body: `{"userId":"alice"}`})
			p := mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
			if got := r.header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tt.challenge)
			}
			if strings.HasPrefix(tt.challenge, `Bearer realm="authserver", error="invalid_token"`) &&
				!strings.HasSuffix(tt.challenge, `error_description="`+p.Detail+`"`) {
				t.Errorf("detail %q differs from the challenge's description", p.Detail)
			}
			if d := testutil.ToFloat64(e.m.AuthFailures.WithLabelValues(tt.reason)) - before; d != 1 {
				t.Errorf("auth failures{reason=%q} moved by %v, want 1", tt.reason, d)
			}
		})
	}
}

func TestNoIdentityProviders(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.srv.SetState(withVerifier(e, nil))
	r := e.do(t, req{bearer: e.userToken("RS256", "alice")})
	mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
	want := `Bearer realm="authserver", error="invalid_token", error_description="no identity provider is configured"`
	if got := r.header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate %q", got)
	}
	// API keys still work after the swap.
	mustStatus(t, e.token(t, `{"userId":"alice"}`), http.StatusOK)
}

// downVerifier is an identity-token verifier whose provider has no keys yet.
type downVerifier struct{}

func (downVerifier) Verify(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, &auth.TokenError{Reason: auth.ReasonProviderUnavailable, Description: "the identity provider's keys are not available yet"}
}

func TestIdentityProviderUnavailable(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.srv.SetState(withVerifier(e, downVerifier{}))
	before := testutil.ToFloat64(e.m.AuthFailures.WithLabelValues(auth.ReasonProviderUnavailable))
	r := e.do(t, req{bearer: e.userToken("RS256", "alice")})
	mustProblem(t, r, http.StatusServiceUnavailable, "provider-unavailable")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if d := testutil.ToFloat64(e.m.AuthFailures.WithLabelValues(auth.ReasonProviderUnavailable)) - before; d != 1 {
		t.Errorf("auth failures{reason=provider_unavailable} moved by %v", d)
	}
	// Backends with API keys do not depend on the identity provider.
	mustStatus(t, e.token(t, `{"userId":"alice"}`), http.StatusOK)
}
