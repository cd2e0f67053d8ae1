//go:build faults

package faults

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/signer"
)

// TestClockMidnight issues tokens with the real binary's `token
// --issued-at` around UTC midnight (and the year end, a leap day, and a
// local time whose UTC date differs) and checks the kid is the UTC date of
// iat, the signature is right under the key derived for that date
// (recomputed here, independently of the signer package), and the token
// verifies with signer.Verify and with the binary's `verify`.
func TestClockMidnight(t *testing.T) {
	secret := newSecretText()
	rawSecret, _ := base64.StdEncoding.DecodeString(secret)
	cases := []struct {
		issuedAt string
		kid      string
		iat      int64
	}{
		{"2026-11-22T23:59:59.999Z", "hkdfv1-20261122", time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC).Unix()},
		{"2026-11-23T00:00:00Z", "hkdfv1-20261123", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).Unix()},
		{"2026-12-31T23:59:59.999Z", "hkdfv1-20261231", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC).Unix()},
		{"2027-01-01T00:00:00Z", "hkdfv1-20270101", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Unix()},
		{"2028-02-28T23:59:59.999Z", "hkdfv1-20280228", time.Date(2028, 2, 28, 23, 59, 59, 0, time.UTC).Unix()},
		{"2028-02-29T00:00:00Z", "hkdfv1-20280229", time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC).Unix()},
		// 00:30 in UTC+01:00 is still the 22nd in UTC; 23:30 in UTC-01:00 is the 23rd.
		{"2026-11-23T00:30:00+01:00", "hkdfv1-20261122", time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC).Unix()},
		{"2026-11-22T23:30:00-01:00", "hkdfv1-20261123", time.Date(2026, 11, 23, 0, 30, 0, 0, time.UTC).Unix()},
	}
	for _, c := range cases {
		out, err := runCLI(t, "token", "--app-key", appKey, "--app-secret", secret, "--user", "alice", "--issued-at", c.issuedAt)
		if err != nil {
			t.Errorf("%s: %v", c.issuedAt, err)
			continue
		}
		tok := strings.TrimSpace(out)
		header, claims := decodeJWT(t, tok)
		if header["kid"] != c.kid {
			t.Errorf("%s: kid %v, want %s", c.issuedAt, header["kid"], c.kid)
		}
		if iat, _ := claims["iat"].(float64); int64(iat) != c.iat {
			t.Errorf("%s: iat %v, want %d", c.issuedAt, claims["iat"], c.iat)
		}
		if !signatureOK(tok, rawSecret, strings.TrimPrefix(c.kid, "hkdfv1-")) {
			t.Errorf("%s: signature is not HMAC-SHA256 under HMAC-SHA256(secret, %q)", c.issuedAt, strings.TrimPrefix(c.kid, "hkdfv1-"))
		}
		if _, err := signer.Verify(tok, signer.VerifyParams{ApplicationKey: appKey, Secrets: []signer.Secret{signer.MustParseSecret(secret)},
			Now: time.Unix(c.iat+1, 0)}); err != nil {
			t.Errorf("%s: signer.Verify: %v", c.issuedAt, err)
		}
		t.Logf("%-26s -> kid %s iat %d", c.issuedAt, header["kid"], c.iat)
	}

	// `verify` checks exp against the real clock, so pin tokens just
	// before and at the last UTC midnight with a lifetime reaching now.
	midnight := time.Now().UTC().Truncate(24 * time.Hour)
	for _, at := range []time.Time{midnight.Add(-time.Millisecond), midnight} {
		issuedAt := at.Format(time.RFC3339Nano)
		tok, err := runCLI(t, "token", "--app-key", appKey, "--app-secret", secret, "--user", "alice", "--issued-at", issuedAt, "--ttl", "48h")
		if err != nil {
			t.Fatalf("%s: %v", issuedAt, err)
		}
		out, err := runCLI(t, "verify", "--app-secret", secret, "--app-key", appKey, strings.TrimSpace(tok))
		if err != nil {
			t.Errorf("%s: %v", issuedAt, err)
			continue
		}
		var v struct {
			Header map[string]any
			Claims map[string]any
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("verify output: %v\n%s", err, out)
		}
		want := "hkdfv1-" + at.Truncate(time.Second).Format("20060102")
		if v.Header["kid"] != want {
			t.Errorf("%s: verify shows kid %v, want %s", issuedAt, v.Header["kid"], want)
		}
		t.Logf("%-30s -> authserver verify: kid %v", issuedAt, v.Header["kid"])
	}
	// Another secret must not verify.
	tok, err := runCLI(t, "token", "--app-key", appKey, "--app-secret", secret, "--user", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "verify", "--app-secret", newSecretText(), strings.TrimSpace(tok)); err == nil {
		t.Errorf("verify accepted a token under the wrong secret")
	}
}

func decodeJWT(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT segment %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("JWT segment %d: %v", i, err)
		}
	}
	return header, claims
}

// signatureOK recomputes the registration JWT's signature: HMAC-SHA256 over
// the signing input with the key HMAC-SHA256(decoded secret, "YYYYMMDD").
func signatureOK(tok string, secret []byte, date string) bool {
	i := strings.LastIndexByte(tok, '.')
	km := hmac.New(sha256.New, secret)
	km.Write([]byte(date))
	m := hmac.New(sha256.New, km.Sum(nil))
	m.Write([]byte(tok[:i]))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)) == tok[i+1:]
}
