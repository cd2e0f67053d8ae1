package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/httpapi"
	"github.com/authserver-dev/authserver/internal/signer"
)

func mustDecode[T any](tb testing.TB, r res) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		tb.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

// mustCredential checks the headers of a 200 credential response.
func mustCredential(tb testing.TB, r res) {
	tb.Helper()
	mustStatus(tb, r, http.StatusOK)
	for k, want := range map[string]string{
		"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := r.header.Get(k); got != want {
			tb.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if hsts := r.header.Get("Strict-Transport-Security"); hsts == "" {
		tb.Errorf("no Strict-Transport-Security over TLS")
	}
}

// mustToken checks a 200 token response: the JWT verifies with the
// application's secret at the env's clock, and the body agrees with it.
func mustToken(tb testing.TB, e *env, r res, app, secret, user string) (httpapi.TokenResponse, *signer.Verified) {
	tb.Helper()
	mustCredential(tb, r)
	tr := mustDecode[httpapi.TokenResponse](tb, r)
	v, err := signer.Verify(tr.Token, signer.VerifyParams{
		ApplicationKey: app, Secrets: []signer.Secret{signer.MustParseSecret(secret)}, Now: e.now,
	})
	if err != nil {
		tb.Fatalf("signer.Verify: %v", err)
	}
	if v.ApplicationKey != app || v.UserID != user || tr.ApplicationKey != app || tr.UserID != user {
		tb.Errorf("token for %s/%s, body %s/%s; want %s/%s", v.ApplicationKey, v.UserID, tr.ApplicationKey, tr.UserID, app, user)
	}
	if want := signer.KeyIDPrefix + e.now.UTC().Format("20060102"); v.Header["kid"] != want {
		tb.Errorf("kid %v, want %s", v.Header["kid"], want)
	}
	iat := claimInt(tb, v.Claims, "iat")
	if iat != e.now.Unix() {
		tb.Errorf("iat %d, want %d", iat, e.now.Unix())
	}
	if tr.IssuedAt != e.now.UTC().Format(time.RFC3339) {
		tb.Errorf("issuedAt %q", tr.IssuedAt)
	}
	if want := time.Unix(claimInt(tb, v.Claims, "exp"), 0).UTC().Format(time.RFC3339); tr.ExpiresAt != want {
		tb.Errorf("expiresAt %q, exp says %q", tr.ExpiresAt, want)
	}
	if _, ok := v.Claims["sinch:rtc:instance:exp"]; ok {
		want := time.Unix(claimInt(tb, v.Claims, "sinch:rtc:instance:exp"), 0).UTC().Format(time.RFC3339)
		if tr.InstanceExpiresAt != want {
			tb.Errorf("instanceExpiresAt %q, claim says %q", tr.InstanceExpiresAt, want)
		}
	} else if tr.InstanceExpiresAt != "" {
		tb.Errorf("instanceExpiresAt %q without the claim", tr.InstanceExpiresAt)
	}
	return tr, v
}

func claimInt(tb testing.TB, claims map[string]any, name string) int64 {
	tb.Helper()
	switch n := claims[name].(type) {
	case float64:
		return int64(n)
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			tb.Fatalf("claim %s: %v", name, err)
		}
		return i
	}
	tb.Fatalf("claim %s is %T", name, claims[name])
	return 0
}

func TestTokenViaAPIKey(t *testing.T) {
	for _, clock := range []struct {
		name string
		now  time.Time
	}{
		{"one second before midnight", time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC)},
		{"midnight", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(clock.name, func(t *testing.T) {
			e := newEnv(t, envOpts{now: clock.now})
			t.Run("default application", func(t *testing.T) {
				tr, v := mustToken(t, e, e.token(t, `{"userId":"alice"}`), appA, secretA, "alice")
				if d := claimInt(t, v.Claims, "exp") - claimInt(t, v.Claims, "iat"); d != 600 {
					t.Errorf("exp-iat %d, want the default 600", d)
				}
				if _, err := signer.Verify(tr.Token, signer.VerifyParams{
					Secrets: []signer.Secret{signer.MustParseSecret(secretB)}, Now: e.now,
				}); err == nil {
					t.Errorf("the token verifies with another application's secret")
				}
			})
			t.Run("explicit second application", func(t *testing.T) {
				mustToken(t, e, e.token(t, `{"userId":"alice","applicationKey":"`+appB+`"}`), appB, secretB, "alice")
			})
			t.Run("explicit default application", func(t *testing.T) {
				mustToken(t, e, e.token(t, `{"applicationKey":"`+appA+`","userId":"alice"}`), appA, secretA, "alice")
			})
			t.Run("JSON media type variants and trailing whitespace", func(t *testing.T) {
				for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON"} {
					r := e.do(t, req{apiKey: apiKeyAll, body: "{\"userId\":\"alice\"}\n \t", contentType: ct})
					mustToken(t, e, r, appA, secretA, "alice")
				}
			})
			t.Run("scoped API key", func(t *testing.T) {
				r := e.do(t, req{apiKey: apiKeyB, body: `{"userId":"bob","applicationKey":"` + appB + `"}`})
				mustToken(t, e, r, appB, secretB, "bob")
			})
		})
	}
}

func TestTokenLifetimes(t *testing.T) {
	e := newEnv(t, envOpts{})
	tests := []struct {
		body          string
		ttl, instance int64 // instance 0: no claim
	}{
		{`{"userId":"alice","ttlSeconds":60}`, 60, 0},
		{`{"userId":"alice","ttlSeconds":900}`, 900, 0},
		{`{"userId":"alice","ttlSeconds":3600}`, 3600, 0},
		{`{"userId":"alice","instanceTtlSeconds":172800}`, 600, 172800},
		{`{"userId":"alice","ttlSeconds":120,"instanceTtlSeconds":2592000}`, 120, 2592000},
		{`{"userId":"alice","instanceTtlSeconds":0}`, 600, 0},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			_, v := mustToken(t, e, e.token(t, tt.body), appA, secretA, "alice")
			iat := claimInt(t, v.Claims, "iat")
			if d := claimInt(t, v.Claims, "exp") - iat; d != tt.ttl {
				t.Errorf("exp-iat %d, want %d", d, tt.ttl)
			}
			_, has := v.Claims["sinch:rtc:instance:exp"]
			switch {
			case tt.instance == 0 && has:
				t.Errorf("unexpected sinch:rtc:instance:exp %v", v.Claims["sinch:rtc:instance:exp"])
			case tt.instance != 0 && !has:
				t.Errorf("no sinch:rtc:instance:exp")
			case has:
				if d := claimInt(t, v.Claims, "sinch:rtc:instance:exp") - iat; d != tt.instance {
					t.Errorf("instance exp - iat %d, want %d", d, tt.instance)
				}
			}
		})
	}
	t.Run("fresh nonce per token", func(t *testing.T) {
		_, v1 := mustToken(t, e, e.token(t, `{"userId":"alice"}`), appA, secretA, "alice")
		_, v2 := mustToken(t, e, e.token(t, `{"userId":"alice"}`), appA, secretA, "alice")
		if v1.Claims["nonce"] == v2.Claims["nonce"] {
			t.Errorf("nonce %v reused", v1.Claims["nonce"])
		}
	})
}

func TestSignatures(t *testing.T) {
	e := newEnv(t, envOpts{})
	sign := func(t *testing.T, e *env, body string) httpapi.SignatureResponse {
		t.Helper()
		r := e.do(t, req{path: "/v1/registration-signatures", apiKey: apiKeyAll, body: body})
		mustCredential(t, r)
		return mustDecode[httpapi.SignatureResponse](t, r)
	}
	check := func(t *testing.T, got httpapi.SignatureResponse, app, secret, user string, seq uint64) {
		t.Helper()
		if got.ApplicationKey != app || got.UserID != user || got.Sequence != seq {
			t.Errorf("got %s/%s #%d, want %s/%s #%d", got.ApplicationKey, got.UserID, got.Sequence, app, user, seq)
		}
		want, err := signer.LegacySignature(app, signer.MustParseSecret(secret), signer.MustParseUserID(user), seq)
		if err != nil {
			t.Fatal(err)
		}
		if got.Signature != want {
			t.Errorf("signature %q, want %q", got.Signature, want)
		}
	}
	for seq := uint64(1); seq <= 3; seq++ {
		t.Run("alice #"+strconv.FormatUint(seq, 10), func(t *testing.T) {
			check(t, sign(t, e, `{"userId":"alice"}`), appA, secretA, "alice", seq)
		})
	}
	t.Run("bob starts at 1", func(t *testing.T) {
		check(t, sign(t, e, `{"userId":"bob"}`), appA, secretA, "bob", 1)
	})
	t.Run("per application", func(t *testing.T) {
		check(t, sign(t, e, `{"userId":"alice","applicationKey":"`+appB+`"}`), appB, secretB, "alice", 1)
	})
	t.Run("the documented example", func(t *testing.T) {
		// openapi.yaml's example: alice's first signature for appA.
		got := sign(t, newEnv(t, envOpts{}), `{"userId":"alice"}`)
		if got.Sequence != 1 || got.Signature != "7NYSnv8J5/aLOjlQALjGY+OmdD4=" {
			t.Errorf("got #%d %q", got.Sequence, got.Signature)
		}
	})
}
