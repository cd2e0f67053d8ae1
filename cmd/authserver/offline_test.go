package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	offAppKey = "196087a1-e815-4bc4-8984-60d8d8a43f1d"
	// 32 bytes; the Base64 text is what the legacy signature hashes.
	offSecret = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M="
	offNonce  = "6f1c2c0e-7a0b-4d5e-9f10-2a3b4c5d6e7f"
)

// runCLI runs an offline command and returns stdout and the error.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, envOf(env), &stdout, &stderr)
	return stdout.String(), err
}

func TestTokenCommandIsDeterministicAndMatchesSpec(t *testing.T) {
	for _, tc := range []struct {
		name     string
		issuedAt string
		flags    []string
		ttl      time.Duration
		instTTL  time.Duration
	}{
		{"defaults", "2026-11-22T12:00:00Z", nil, 10 * time.Minute, 0},
		// 23:30 at UTC-2 is the next day in UTC: the kid must carry the UTC date.
		{"kid is the UTC date", "2026-11-22T23:30:00-02:00", []string{"--ttl", "1h"}, time.Hour, 0},
		{"instance expiry", "2026-02-28T08:15:30Z", []string{"--ttl", "1m", "--instance-ttl", "72h"}, time.Minute, 72 * time.Hour},
		{"instance expiry at the 48 h minimum", "2030-12-31T23:59:59Z", []string{"--instance-ttl", "48h"}, 10 * time.Minute, 48 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, err := time.Parse(time.RFC3339, tc.issuedAt)
			if err != nil {
				t.Fatal(err)
			}
			want := wantToken(t, offAppKey, offSecret, "alice", offNonce, at, tc.ttl, tc.instTTL) + "\n"
			args := append([]string{"token", "--app-key", offAppKey, "--app-secret", offSecret, "--user", "alice",
				"--nonce", offNonce, "--issued-at", tc.issuedAt}, tc.flags...)
			got, err := runCLI(t, nil, args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("token\n got %s want %s", got, want)
			}
			again, _ := runCLI(t, nil, args...)
			if again != got {
				t.Error("the same pinned inputs gave a different token")
			}
		})
	}

	// The kid check above relies on this: the UTC date differs from the local one.
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(wantToken(t, offAppKey, offSecret, "a", offNonce,
		time.Date(2026, 11, 22, 23, 30, 0, 0, time.FixedZone("", -2*3600)), time.Minute, 0), ".")[0])
	if string(hdr) != `{"alg":"HS256","kid":"hkdfv1-20261123"}` {
		t.Fatalf("expectation helper header %s", hdr)
	}
}

func TestTokenCommandSecretSources(t *testing.T) {
	base := []string{"token", "--app-key", offAppKey, "--user", "bob", "--nonce", offNonce, "--issued-at", "2026-11-22T12:00:00Z"}
	want, err := runCLI(t, nil, append(base, "--app-secret", offSecret)...)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "secret")
	// A rotation file: comment, the signing secret first, then an older one.
	if err := os.WriteFile(file, []byte("# current first\n"+offSecret+"\nMDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := runCLI(t, nil, append(base, "--app-secret-file", file)...); err != nil || got != want {
		t.Errorf("--app-secret-file: %q, %v; want %q", got, err, want)
	}
	if got, err := runCLI(t, map[string]string{"AUTHSERVER_APP_SECRET": offSecret}, base...); err != nil || got != want {
		t.Errorf("AUTHSERVER_APP_SECRET: %q, %v; want %q", got, err, want)
	}
	// AUTHSERVER_APP_KEY supplies --app-key.
	noKey := append([]string{"token"}, base[3:]...)
	if got, err := runCLI(t, map[string]string{"AUTHSERVER_APP_KEY": offAppKey}, append(noKey, "--app-secret", offSecret)...); err != nil || got != want {
		t.Errorf("AUTHSERVER_APP_KEY: %q, %v; want %q", got, err, want)
	}
	_, err = runCLI(t, nil, append(base, "--app-secret", offSecret, "--app-secret-file", file)...)
	oneLineErr(t, err, "only one")
}

func TestTokenCommandUnpinned(t *testing.T) {
	a, err := runCLI(t, nil, "token", "--app-key", offAppKey, "--app-secret", offSecret, "--user", "carol")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := runCLI(t, nil, "token", "--app-key", offAppKey, "--app-secret", offSecret, "--user", "carol")
	if a == b {
		t.Error("two unpinned tokens are identical: the nonce is not fresh")
	}
	checkJWT(t, strings.TrimSpace(a), offAppKey, offSecret, "carol", 10*time.Minute)
}

func TestSignatureCommand(t *testing.T) {
	for _, seq := range []string{"1", "2", "42", "18446744073709551615"} {
		got, err := runCLI(t, nil, "signature", "--app-key", offAppKey, "--app-secret", offSecret, "--user", "alice", "--sequence", seq)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, c := range seq {
			n = n*10 + uint64(c-'0')
		}
		if want := wantSignature(offAppKey, offSecret, "alice", n) + "\n"; got != want {
			t.Errorf("sequence %s: %q, want %q", seq, got, want)
		}
	}
	// A known vector, so the helper itself is pinned:
	// SHA1("alice" + "app" + "1" + "MDEyMzQ1Njc4OWFiY2RlZg==").
	got, err := runCLI(t, nil, "signature", "--app-key", "app", "--app-secret", "MDEyMzQ1Njc4OWFiY2RlZg==", "--user", "alice", "--sequence", "1")
	if err != nil {
		t.Fatal(err)
	}
	if want := wantSignature("app", "MDEyMzQ1Njc4OWFiY2RlZg==", "alice", 1); strings.TrimSpace(got) != want || len(want) != 28 || !strings.HasSuffix(want, "=") {
		t.Errorf("signature %q, want %q (28 characters of padded standard Base64)", got, want)
	}
}

func TestVerifyCommand(t *testing.T) {
	tok, err := runCLI(t, nil, "token", "--app-key", offAppKey, "--app-secret", offSecret, "--user", "alice", "--instance-ttl", "48h")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	out, err := runCLI(t, nil, "verify", "--app-secret", offSecret, "--app-key", offAppKey, tok)
	if err != nil {
		t.Fatalf("verify of a fresh token: %v", err)
	}
	var v struct {
		Header map[string]any `json:"header"`
		Claims map[string]any `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verify output %q: %v", out, err)
	}
	if len(v.Header) != 2 || v.Header["alg"] != "HS256" || !strings.HasPrefix(v.Header["kid"].(string), "hkdfv1-") {
		t.Errorf("header %v", v.Header)
	}
	if v.Claims["sub"] != "//rtc.sinch.com/applications/"+offAppKey+"/users/alice" || v.Claims["sinch:rtc:instance:exp"] == nil {
		t.Errorf("claims %v", v.Claims)
	}

	// A secret file with the rotated-out secret second still verifies.
	file := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(file, []byte("MDEyMzQ1Njc4OWFiY2RlZg==\n"+offSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, nil, "verify", "--app-secret-file", file, tok); err != nil {
		t.Errorf("verify with the signing secret second in the file: %v", err)
	}

	parts := strings.Split(tok, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	otherUser := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), "/users/alice", "/users/mallory", 1)))
	flipped := []byte(parts[2])
	flipped[0] ^= 1
	expired := wantToken(t, offAppKey, offSecret, "alice", offNonce, time.Now().Add(-time.Hour), 10*time.Minute, 0)
	for name, bad := range map[string]string{
		"claims changed":    parts[0] + "." + otherUser + "." + parts[2],
		"signature flipped": parts[0] + "." + parts[1] + "." + string(flipped),
		"signature removed": parts[0] + "." + parts[1] + ".",
		"typ added": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"x","typ":"JWT"}`)) +
			"." + parts[1] + "." + parts[2],
		"expired":   expired,
		"not a JWT": "hello",
	} {
		_, err := runCLI(t, nil, "verify", "--app-secret", offSecret, bad)
		oneLineErr(t, err, "invalid registration token")
		if err != nil && strings.Contains(err.Error(), offSecret) {
			t.Errorf("%s: the error quotes the secret", name)
		}
	}
	// Right token, wrong secret or wrong application.
	_, err = runCLI(t, nil, "verify", "--app-secret", "MDEyMzQ1Njc4OWFiY2RlZg==", tok)
	oneLineErr(t, err, "invalid registration token")
	_, err = runCLI(t, nil, "verify", "--app-secret", offSecret, "--app-key", "another-app", tok)
	oneLineErr(t, err, "invalid registration token", "another-app")
}

func TestOfflineCommandsRefuseBadInput(t *testing.T) {
	tok := []string{"token", "--app-key", offAppKey, "--app-secret", offSecret, "--user", "alice"}
	sig := []string{"signature", "--app-key", offAppKey, "--app-secret", offSecret, "--user", "alice", "--sequence", "1"}
	with := func(base []string, flag, value string) []string {
		out := append([]string(nil), base...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
				return out
			}
		}
		return append(out, flag, value)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"user with a space", nil, with(tok, "--user", "al ice"), []string{"--user:", "A-Z a-z 0-9 - _ ="}},
		{"user with a quote", nil, with(tok, "--user", `al"ice`), []string{"--user:"}},
		{"user too long", nil, with(tok, "--user", strings.Repeat("a", 256)), []string{"--user:"}},
		{"user missing", nil, tok[:5], []string{"--user:"}},
		{"app key missing", nil, with(tok, "--app-key", ""), []string{"--app-key:"}},
		{"app key with a slash", nil, with(tok, "--app-key", "a/b"), []string{"--app-key:"}},
		{"ttl below 60s", nil, append(tok, "--ttl", "59s"), []string{"--ttl:", "60"}},
		{"instance ttl below 48h", nil, append(tok, "--instance-ttl", "47h"), []string{"--instance-ttl:", "48h"}},
		{"negative instance ttl", nil, append(tok, "--instance-ttl", "-1h"), []string{"--instance-ttl:"}},
		{"nonce with a quote", nil, append(tok, "--nonce", `x"y`), []string{"--nonce:"}},
		{"issued-at not RFC 3339", nil, append(tok, "--issued-at", "yesterday"), []string{"--issued-at:", "RFC 3339"}},
		{"issued-at before 1970", nil, append(tok, "--issued-at", "1969-12-31T00:00:00Z"), []string{"--issued-at:"}},
		{"no secret", nil, []string{"token", "--app-key", offAppKey, "--user", "alice"}, []string{"no application secret"}},
		{"secret not base64", nil, with(tok, "--app-secret", "not base64 at all"), []string{"--app-secret:", "Base64"}},
		{"secret too short", nil, with(tok, "--app-secret", "c2hvcnQ="), []string{"--app-secret:", "5 bytes"}},
		{"env secret bad", map[string]string{"AUTHSERVER_APP_SECRET": "c2hvcnQ="}, []string{"token", "--app-key", offAppKey, "--user", "alice"}, []string{"AUTHSERVER_APP_SECRET:"}},
		{"secret file missing", nil, []string{"token", "--app-key", offAppKey, "--user", "alice", "--app-secret-file", "/nonexistent/secret"}, []string{"--app-secret-file:"}},
		{"sequence 0", nil, with(sig, "--sequence", "0"), []string{"--sequence:", "at least 1"}},
		{"signature user bad", nil, with(sig, "--user", "a.b"), []string{"--user:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, tc.env, tc.args...)
			oneLineErr(t, err, tc.want...)
			var u usageError
			if errors.As(err, &u) {
				t.Errorf("an input mistake is a usage error (exit 2, message not printed): %v", err)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			for _, secret := range []string{offSecret, "c2hvcnQ=", "not base64 at all"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes the secret: %v", err)
				}
			}
		})
	}
	// Flag mistakes are usage errors (exit 2).
	for _, args := range [][]string{
		append(tok, "--sequence", "1"),
		with(sig, "--sequence", "-1"),
		{"verify"},
		{"verify", "--app-secret", offSecret, "a", "b"},
	} {
		_, err := runCLI(t, nil, args...)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
