package signer

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testAppKey = "196087a1-e815-4bc4-8984-60d8d8a43f1d"
	testSecret = "oYdgGRXoxEuJhGDY2KQ/HQ==" // the example secret of Sinch's documentation
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustIssue(tb testing.TB, s *Signer, p TokenParams) Token {
	tb.Helper()
	tok, err := s.IssueToken(p)
	if err != nil {
		tb.Fatalf("IssueToken: %v", err)
	}
	return tok
}

// referenceToken is an independent implementation of DESIGN.md's format:
// encoding/json for the JSON (map keys sorted by the encoder), crypto/hmac
// directly for both the key derivation and the signature.
func referenceToken(t *testing.T, appKey, secretB64, user, nonce string, iat time.Time, ttl, instTTL time.Duration) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(secretB64)
	if err != nil {
		t.Fatal(err)
	}
	date := iat.UTC().Format("20060102")
	m := hmac.New(sha256.New, raw)
	m.Write([]byte(date))
	key := m.Sum(nil)

	// A struct keeps the header's member order as written.
	hdr, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}{"HS256", "hkdfv1-" + date})
	iss := "//rtc.sinch.com/applications/" + appKey
	claims := map[string]any{
		"iss": iss, "sub": iss + "/users/" + user, "nonce": nonce,
		"iat": iat.Unix(), "exp": iat.Unix() + int64(ttl.Seconds()),
	}
	if instTTL > 0 {
		claims["sinch:rtc:instance:exp"] = iat.Unix() + int64(instTTL.Seconds())
	}
	body, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(body)
	sm := hmac.New(sha256.New, key)
	sm.Write([]byte(input))
	return input + "." + enc.EncodeToString(sm.Sum(nil))
}

// TestKnownAnswer pins one token produced outside Go entirely (openssl dgst
// -hmac and base64 in a shell, see the command in the commit message of this
// file): a regression here means the bytes Sinch checks have changed.
func TestKnownAnswer(t *testing.T) {
	const want = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhrZGZ2MS0yMDI2MTEyMiJ9.eyJleHAiOjE3OTUzOTI1OTksImlhdCI6MTc5NTM5MTk5OSwiaXNzIjoiLy9ydGMuc2luY2guY29tL2FwcGxpY2F0aW9ucy8xOTYwODdhMS1lODE1LTRiYzQtODk4NC02MGQ4ZDhhNDNmMWQiLCJub25jZSI6Im4tMSIsInN1YiI6Ii8vcnRjLnNpbmNoLmNvbS9hcHBsaWNhdGlvbnMvMTk2MDg3YTEtZTgxNS00YmM0LTg5ODQtNjBkOGQ4YTQzZjFkL3VzZXJzL2FsaWNlIn0.YOQaKt7Cn4rNoMXTYPg4-8B_oKN65nY-QomKYV2m7zg"
	s := New(time.Now, rand.Reader)
	tok := mustIssue(t, s, TokenParams{
		ApplicationKey: testAppKey, Secret: MustParseSecret(testSecret), UserID: MustParseUserID("alice"),
		Nonce: "n-1", IssuedAt: time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC),
	})
	if tok.JWT != want {
		t.Fatalf("token differs from the openssl-built one:\n got %s\nwant %s", tok.JWT, want)
	}
}

func TestIssueMatchesReference(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	nyc := time.FixedZone("EST", -5*3600)
	cases := []struct {
		name    string
		at      time.Time
		ttl     time.Duration
		instTTL time.Duration
		kid     string
		user    string
	}{
		{"last second of the day", time.Date(2026, 11, 22, 23, 59, 59, 999_000_000, time.UTC), 0, 0, "hkdfv1-20261122", "alice"},
		{"first second of the day", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), 10 * time.Minute, 0, "hkdfv1-20261123", "bob"},
		{"CET wall clock already next day", time.Date(2026, 11, 23, 0, 30, 0, 0, cet), time.Minute, 0, "hkdfv1-20261122", "u"},
		{"EST wall clock still previous day", time.Date(2026, 11, 22, 20, 0, 0, 0, nyc), time.Hour, 48 * time.Hour, "hkdfv1-20261123", "A-Z_a-z=0-9"},
		{"leap day, instance expiry", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC), 2 * time.Hour, 30 * 24 * time.Hour, "hkdfv1-20280229", strings.Repeat("x", 255)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(fixedClock(tc.at), rand.Reader)
			tok := mustIssue(t, s, TokenParams{
				ApplicationKey: testAppKey, Secret: MustParseSecret(testSecret), UserID: MustParseUserID(tc.user),
				TTL: tc.ttl, InstanceTTL: tc.instTTL, Nonce: "nonce-" + tc.kid,
			})
			ttl := tc.ttl
			if ttl == 0 {
				ttl = 10 * time.Minute
			}
			iat := time.Unix(tc.at.Unix(), 0)
			want := referenceToken(t, testAppKey, testSecret, tc.user, "nonce-"+tc.kid, iat, ttl, tc.instTTL)
			if tok.JWT != want {
				t.Fatalf("token mismatch\n got %s\nwant %s", tok.JWT, want)
			}
			if tok.KeyID != tc.kid {
				t.Errorf("KeyID = %s, want %s", tok.KeyID, tc.kid)
			}
			hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.JWT, ".")[0])
			if got := string(hdr); got != `{"alg":"HS256","kid":"`+tc.kid+`"}` {
				t.Errorf("header = %s", got)
			}
			if !tok.ExpiresAt.Equal(iat.Add(ttl)) {
				t.Errorf("ExpiresAt = %v, want %v", tok.ExpiresAt, iat.Add(ttl))
			}
			// golang-jwt, given the independently derived key, accepts it too.
			raw, _ := base64.StdEncoding.DecodeString(testSecret)
			m := hmac.New(sha256.New, raw)
			m.Write([]byte(strings.TrimPrefix(tc.kid, "hkdfv1-")))
			key := m.Sum(nil)
			_, err := jwt.Parse(tok.JWT, func(*jwt.Token) (any, error) { return key, nil },
				jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(fixedClock(tc.at)))
			if err != nil {
				t.Errorf("golang-jwt rejects the token: %v", err)
			}
		})
	}
}

func TestRandomNonce(t *testing.T) {
	s := New(fixedClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), rand.Reader)
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok := mustIssue(t, s, TokenParams{ApplicationKey: testAppKey, Secret: MustParseSecret(testSecret), UserID: MustParseUserID("alice")})
		v, err := Verify(tok.JWT, VerifyParams{Secrets: []Secret{MustParseSecret(testSecret)}, Now: s.now()})
		if err != nil {
			t.Fatal(err)
		}
		n := v.Claims["nonce"].(string)
		if !uuid4.MatchString(n) {
			t.Fatalf("nonce %q is not a UUIDv4", n)
		}
		if seen[n] {
			t.Fatalf("nonce %q repeated", n)
		}
		seen[n] = true
	}
	// A failing random source is an error, not a predictable nonce.
	bad := New(s.now, bytes.NewReader(nil))
	if _, err := bad.IssueToken(TokenParams{ApplicationKey: testAppKey, Secret: MustParseSecret(testSecret), UserID: MustParseUserID("alice")}); err == nil {
		t.Fatal("IssueToken with an empty random source succeeded")
	}
}

func TestIssueRejects(t *testing.T) {
	s := New(fixedClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)), rand.Reader)
	ok := TokenParams{ApplicationKey: testAppKey, Secret: MustParseSecret(testSecret), UserID: MustParseUserID("alice"), MaxTTL: time.Hour}
	cases := []struct {
		name  string
		mod   func(*TokenParams)
		field string
	}{
		{"no user", func(p *TokenParams) { p.UserID = UserID{} }, "userId"},
		{"ttl below 60s", func(p *TokenParams) { p.TTL = 59 * time.Second }, "ttlSeconds"},
		{"ttl negative", func(p *TokenParams) { p.TTL = -time.Minute }, "ttlSeconds"},
		{"ttl above max", func(p *TokenParams) { p.TTL = time.Hour + time.Second }, "ttlSeconds"},
		{"instance ttl below 48h", func(p *TokenParams) { p.InstanceTTL = 47 * time.Hour }, "instanceTtlSeconds"},
		{"instance ttl negative", func(p *TokenParams) { p.InstanceTTL = -time.Hour }, "instanceTtlSeconds"},
		{"app key empty", func(p *TokenParams) { p.ApplicationKey = "" }, "applicationKey"},
		{"app key with quote", func(p *TokenParams) { p.ApplicationKey = `k"` }, "applicationKey"},
		{"no secret", func(p *TokenParams) { p.Secret = Secret{} }, "applicationSecret"},
		{"nonce with quote", func(p *TokenParams) { p.Nonce = `n"` }, "nonce"},
		{"issued at the epoch", func(p *TokenParams) { p.IssuedAt = time.Unix(0, 0) }, "issuedAt"},
		{"issued after year 9999", func(p *TokenParams) { p.IssuedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "issuedAt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.mod(&p)
			_, err := s.IssueToken(p)
			var ie *InputError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("err = %v, want an InputError", err)
			}
			if ie.Field != tc.field {
				t.Errorf("field = %q, want %q", ie.Field, tc.field)
			}
		})
	}
	// The boundaries themselves are accepted.
	for _, p := range []TokenParams{
		{ApplicationKey: testAppKey, Secret: ok.Secret, UserID: MustParseUserID("a"), TTL: 60 * time.Second},
		{ApplicationKey: testAppKey, Secret: ok.Secret, UserID: MustParseUserID(strings.Repeat("Z", 255)), TTL: time.Hour, MaxTTL: time.Hour, InstanceTTL: 48 * time.Hour},
	} {
		if _, err := s.IssueToken(p); err != nil {
			t.Errorf("boundary params refused: %v", err)
		}
	}
}

// TestParseUserID: Sinch's user id rule, checked once where an id enters;
// IssueToken and LegacySignature take only what it returns.
func TestParseUserID(t *testing.T) {
	for name, id := range map[string]string{
		"empty":          "",
		"too long":       strings.Repeat("a", 256),
		"space":          "a b",
		"quote":          `a"b`,
		"angle bracket":  "a<b",
		"slash":          "a/b",
		"non-ASCII":      "jörg",
		"dot":            "a.b",
		"trailing space": "alice ",
	} {
		u, err := ParseUserID(id)
		var ie *InputError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidInput) || ie.Field != "userId" || !u.IsZero() {
			t.Errorf("%s: ParseUserID(%q) = %v, %v; want the zero UserID and a userId InputError", name, id, u, err)
		}
	}
	for _, id := range []string{"a", "alice", "A-Z_a-z=0-9", strings.Repeat("Z", 255)} {
		if u, err := ParseUserID(id); err != nil || u.String() != id || u.IsZero() {
			t.Errorf("ParseUserID(%q) = %q, %v", id, u, err)
		}
	}
}

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "not base64!", "oYdgGRXoxEuJhGDY2KQ/HQ", "AAAAAAAAAAAAAAAAAAAA", "oYdgGRXoxEuJhGDY2KQ_HQ=="} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) succeeded", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error %q repeats the secret", err)
		}
	}
	s := MustParseSecret(testSecret)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), mustJSON(t, s), mustJSON(t, struct{ S Secret }{s})} {
		if strings.Contains(out, testSecret) || !strings.Contains(out, "[redacted]") {
			t.Errorf("secret printed as %q", out)
		}
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestKeyCachedPerDay(t *testing.T) {
	sec := MustParseSecret(testSecret)
	k1 := sec.signingKey(20261122)
	if k2 := sec.signingKey(20261122); k2 != k1 {
		t.Fatal("same day derived a new key")
	}
	k3 := sec.signingKey(20261123)
	if k3 == k1 || bytes.Equal(k3.key, k1.key) {
		t.Fatal("next day reused the previous key")
	}
	raw, _ := base64.StdEncoding.DecodeString(testSecret)
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("20261123"))
	if !bytes.Equal(k3.key, m.Sum(nil)) {
		t.Fatal("derived key is not HMAC-SHA256(secret, date)")
	}
	// Verifying an old token must not evict today's key.
	_ = sec.verifyKey(20200101)
	if sec.signingKey(20261123) != k3 {
		t.Fatal("verification evicted the issuing key")
	}
}

func TestVerify(t *testing.T) {
	at := time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC)
	s := New(fixedClock(at), rand.Reader)
	sec := MustParseSecret(testSecret)
	other := MustParseSecret("AAECAwQFBgcICQoLDA0ODw==")
	tok := mustIssue(t, s, TokenParams{ApplicationKey: testAppKey, Secret: sec, UserID: MustParseUserID("alice"), InstanceTTL: 48 * time.Hour})

	v, err := Verify(tok.JWT, VerifyParams{ApplicationKey: testAppKey, Secrets: []Secret{other, sec}, Now: at})
	if err != nil {
		t.Fatalf("Verify with the secret second in the list: %v", err)
	}
	if v.UserID != "alice" || v.ApplicationKey != testAppKey || v.Header["kid"] != "hkdfv1-20261122" {
		t.Fatalf("verified = %+v", v)
	}

	forge := func(hdr, claims string, key []byte) string {
		enc := base64.RawURLEncoding
		in := enc.EncodeToString([]byte(hdr)) + "." + enc.EncodeToString([]byte(claims))
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return in + "." + enc.EncodeToString(m.Sum(nil))
	}
	key := DeriveSigningKey(sec.raw, 20261122)
	iss := "//rtc.sinch.com/applications/" + testAppKey
	good := fmt.Sprintf(`{"exp":%d,"iat":%d,"iss":"%s","nonce":"n","sub":"%s/users/alice"}`, at.Unix()+600, at.Unix(), iss, iss)
	parts := strings.Split(tok.JWT, ".")
	bad := []struct {
		name   string
		token  string
		params VerifyParams
	}{
		{"wrong secret", tok.JWT, VerifyParams{Secrets: []Secret{other}, Now: at}},
		{"expired", tok.JWT, VerifyParams{Secrets: []Secret{sec}, Now: at.Add(11 * time.Minute)}},
		{"other application", tok.JWT, VerifyParams{ApplicationKey: "other", Secrets: []Secret{sec}, Now: at}},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(good, "alice", "mallory", 1))) + "." + parts[2], VerifyParams{Secrets: []Secret{sec}, Now: at}},
		{"typ in header", forge(`{"alg":"HS256","kid":"hkdfv1-20261122","typ":"JWT"}`, good, key), VerifyParams{Secrets: []Secret{sec}, Now: at}},
		{"kid not the iat date", forge(`{"alg":"HS256","kid":"hkdfv1-20261121"}`, good, DeriveSigningKey(sec.raw, 20261121)), VerifyParams{Secrets: []Secret{sec}, Now: at}},
		{"no exp", forge(`{"alg":"HS256","kid":"hkdfv1-20261122"}`, strings.Replace(good, fmt.Sprintf(`"exp":%d,`, at.Unix()+600), "", 1), key), VerifyParams{Secrets: []Secret{sec}, Now: at}},
		{"sub of another app", forge(`{"alg":"HS256","kid":"hkdfv1-20261122"}`, strings.Replace(good, iss+"/users", "//rtc.sinch.com/applications/x/users", 1), key), VerifyParams{Secrets: []Secret{sec}, Now: at}},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"hkdfv1-20261122"}`)) + "." + parts[1] + ".", VerifyParams{Secrets: []Secret{sec}, Now: at}},
		{"garbage", "not.a.jwt", VerifyParams{Secrets: []Secret{sec}, Now: at}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(tc.token, tc.params); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
	// The forge helper itself produces tokens Verify accepts, so the
	// refusals above are about their one defect.
	if _, err := Verify(forge(`{"alg":"HS256","kid":"hkdfv1-20261122"}`, good, key), VerifyParams{Secrets: []Secret{sec}, Now: at}); err != nil {
		t.Fatalf("well-formed forged token refused: %v", err)
	}
}

func TestLegacySignature(t *testing.T) {
	// Vectors computed with `printf %s "$user$key$seq$secret" | openssl sha1 -binary | base64`.
	cases := []struct {
		user string
		seq  uint64
		want string
	}{
		{"alice", 1, "7NYSnv8J5/aLOjlQALjGY+OmdD4="},
		{"user_=-9", 18446744073709551615, "3PUKhF6lmxe4ChPeA0TGPfLhBvc="},
	}
	for _, tc := range cases {
		got, err := LegacySignature(testAppKey, MustParseSecret(testSecret), MustParseUserID(tc.user), tc.seq)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("LegacySignature(%s, %d) = %s, want %s", tc.user, tc.seq, got, tc.want)
		}
		// And an in-Go recomputation over the Base64 text agrees.
		sum := sha1.Sum([]byte(fmt.Sprintf("%s%s%d%s", tc.user, testAppKey, tc.seq, testSecret)))
		if want := base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("recomputed %s, got %s", want, got)
		}
	}
	for _, bad := range []struct {
		user UserID
		seq  uint64
	}{{UserID{}, 1}, {MustParseUserID("alice"), 0}} {
		if _, err := LegacySignature(testAppKey, MustParseSecret(testSecret), bad.user, bad.seq); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("LegacySignature(%q, %d) err = %v", bad.user, bad.seq, err)
		}
	}
}

// FuzzIssueVerify: any input either is refused as InputError, or yields a
// token that the independent reference reproduces and Verify accepts.
func FuzzIssueVerify(f *testing.F) {
	f.Add("alice", testAppKey, int64(1795391999), int64(600), int64(0), "n-1")
	f.Add("", "k", int64(0), int64(59), int64(1), "")
	f.Add("a<b", "app", int64(-1), int64(1<<40), int64(172800), `"`)
	f.Add(strings.Repeat("=", 255), "x.y", int64(253402300799), int64(60), int64(172800), "n")
	sec := MustParseSecret(testSecret)
	f.Fuzz(func(t *testing.T, user, app string, unix, ttlS, instS int64, nonce string) {
		if unix > 253402300799-400*86400 || ttlS > 1<<32 || instS > 1<<32 || ttlS < -(1<<32) || instS < -(1<<32) {
			return // outside the times a JWT can carry as a 4-digit-year kid
		}
		uid, err := ParseUserID(user)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		at := time.Unix(unix, 0)
		s := New(fixedClock(at), rand.Reader)
		tok, err := s.IssueToken(TokenParams{ApplicationKey: app, Secret: sec, UserID: uid, TTL: time.Duration(ttlS) * time.Second, InstanceTTL: time.Duration(instS) * time.Second, Nonce: nonce})
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		ttl := time.Duration(ttlS) * time.Second
		if ttlS == 0 {
			ttl = DefaultTokenTTL
		}
		if nonce != "" {
			if want := referenceToken(t, app, testSecret, user, nonce, at, ttl, time.Duration(instS)*time.Second); tok.JWT != want {
				t.Fatalf("mismatch\n got %s\nwant %s", tok.JWT, want)
			}
		}
		if _, err := Verify(tok.JWT, VerifyParams{ApplicationKey: app, Secrets: []Secret{sec}, Now: at}); err != nil {
			t.Fatalf("Verify refused an issued token: %v", err)
		}
	})
}

// FuzzVerify: arbitrary strings never panic and are refused unless valid.
func FuzzVerify(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiIsImtpZCI6ImhrZGZ2MS0yMDI2MTEyMiJ9.e30.x")
	f.Add("a.b.c")
	f.Add("")
	sec := MustParseSecret(testSecret)
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := Verify(raw, VerifyParams{Secrets: []Secret{sec}, Now: time.Unix(1795391999, 0)})
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("error not ErrInvalidToken: %v", err)
		}
	})
}

func BenchmarkIssueToken(b *testing.B) {
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := New(fixedClock(at), rand.Reader)
	p := TokenParams{ApplicationKey: testAppKey, Secret: MustParseSecret(testSecret), UserID: MustParseUserID("alice"), TTL: 10 * time.Minute, MaxTTL: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.IssueToken(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueTokenGolangJWT is the in-run baseline: the same token built
// the obvious way with golang-jwt's MapClaims and a freshly derived key.
func BenchmarkIssueTokenGolangJWT(b *testing.B) {
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	raw, _ := base64.StdEncoding.DecodeString(testSecret)
	b.ReportAllocs()
	for b.Loop() {
		date := at.UTC().Format("20060102")
		m := hmac.New(sha256.New, raw)
		m.Write([]byte(date))
		var nb [16]byte
		_, _ = rand.Read(nb[:])
		iss := "//rtc.sinch.com/applications/" + testAppKey
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": iss, "sub": iss + "/users/alice", "nonce": fmt.Sprintf("%x", nb),
			"iat": at.Unix(), "exp": at.Unix() + 600,
		})
		delete(tok.Header, "typ")
		tok.Header["kid"] = "hkdfv1-" + date
		if _, err := tok.SignedString(m.Sum(nil)); err != nil {
			b.Fatal(err)
		}
	}
}
