package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// The dev server's fixed names (app.Dev*), as the tests call them.
const (
	devAppKey = app.DevAppKey
	devAPIKey = app.DevAPIKey
)

// issued collects what a credential flow handed out, for the log checks.
type issued struct {
	tokens, signatures []string
}

// checkCredentials drives the public and admin API of a running server the
// way a client would and checks every answer against DESIGN.md.
//
// With floor (sequence.clock_floor on) the sequences are at least the time
// in microseconds before each request and increasing; without, exactly 1, 2.
func checkCredentials(t *testing.T, s *server, apiKey, appKey, secretFile, user string, ttl time.Duration, floor bool) issued {
	t.Helper()
	var out issued
	secret := readSecret(t, secretFile)
	hdr := map[string]string{"X-API-Key": apiKey}

	resp, body := s.post(t, "/v1/registration-tokens", hdr, `{"userId":"`+user+`"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("registration-tokens: %s %s", resp.Status, body)
	}
	for k, want := range map[string]string{
		"Cache-Control":             "no-store",
		"Content-Type":              "application/json",
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("registration-tokens %s = %q, want %q", k, got, want)
		}
	}
	var tr struct {
		Token, ApplicationKey, UserID, IssuedAt, ExpiresAt string
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatalf("token response %s: %v", body, err)
	}
	if tr.ApplicationKey != appKey || tr.UserID != user {
		t.Errorf("token response names %s/%s, want %s/%s", tr.ApplicationKey, tr.UserID, appKey, user)
	}
	claims := checkJWT(t, tr.Token, appKey, secret, user, ttl)
	iat, _ := claims["iat"].(json.Number).Int64()
	if tr.IssuedAt != time.Unix(iat, 0).UTC().Format(time.RFC3339) {
		t.Errorf("issuedAt %q does not match iat %d", tr.IssuedAt, iat)
	}
	out.tokens = append(out.tokens, tr.Token)

	// The verify command accepts it with the same secret file...
	var vout, verr bytes.Buffer
	if err := run(context.Background(), []string{"verify", "--app-secret-file", secretFile, "--app-key", appKey, tr.Token},
		envOf(nil), &vout, &verr); err != nil {
		t.Fatalf("verify of an issued token: %v (stderr %s)", err, verr.String())
	}
	var v struct {
		Header map[string]any `json:"header"`
		Claims map[string]any `json:"claims"`
	}
	if err := json.Unmarshal(vout.Bytes(), &v); err != nil {
		t.Fatalf("verify output %q: %v", vout.String(), err)
	}
	if v.Claims["sub"] != "//rtc.sinch.com/applications/"+appKey+"/users/"+user || v.Header["alg"] != "HS256" {
		t.Errorf("verify printed %s", vout.String())
	}
	// ...and refuses it for another application.
	if err := run(context.Background(), []string{"verify", "--app-secret-file", secretFile, "--app-key", "other-app", tr.Token},
		envOf(nil), &vout, &verr); err == nil {
		t.Error("verify accepted the token for another application")
	}

	var prev uint64
	for want := uint64(1); want <= 2; want++ {
		before := uint64(time.Now().UnixMicro())
		resp, body := s.post(t, "/v1/registration-signatures", hdr, `{"userId":"`+user+`"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("registration-signatures: %s %s", resp.Status, body)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("registration-signatures Cache-Control = %q", got)
		}
		var sr struct {
			ApplicationKey, UserID, Signature string
			Sequence                          uint64
		}
		if err := json.Unmarshal(body, &sr); err != nil {
			t.Fatal(err)
		}
		switch {
		case !floor && sr.Sequence != want:
			t.Errorf("sequence %d, want %d", sr.Sequence, want)
		case floor && (sr.Sequence < before || sr.Sequence <= prev || sr.Sequence >= 1<<53):
			t.Errorf("sequence %d with the clock floor: want at least %d (µs before the request), above %d and below 2^53", sr.Sequence, before, prev)
		}
		prev = sr.Sequence
		if exp := wantSignature(appKey, secret, user, sr.Sequence); sr.Signature != exp {
			t.Errorf("signature %q for sequence %d, want %q", sr.Signature, sr.Sequence, exp)
		}
		if sr.ApplicationKey != appKey || sr.UserID != user {
			t.Errorf("signature response names %s/%s", sr.ApplicationKey, sr.UserID)
		}
		out.signatures = append(out.signatures, sr.Signature)
	}

	resp, body = s.get(t, s.adminURL+"/readyz")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s %s", resp.Status, body)
	}
	resp, body = s.get(t, s.adminURL+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	for _, want := range []string{
		`authserver_credentials_issued_total{application="` + appKey + `",kind="jwt"} 1`,
		`authserver_credentials_issued_total{application="` + appKey + `",kind="signature"} 2`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	return out
}

// TestDev runs `authserver dev` end to end: HTTPS with the written
// certificate as the only trusted root, both credential kinds checked against
// the spec, the admin listener, healthcheck, the TLS posture of the real
// listener, refused callers, a clean stop, and logs free of secrets.
func TestDev(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := startDev(t, dataDir)
	secretFile := filepath.Join(dataDir, "dev-app-secret")
	if s.certFile != filepath.Join(dataDir, "dev-cert.pem") {
		t.Errorf("dev printed certificate %s, want it in the data dir", s.certFile)
	}

	got := checkCredentials(t, s, devAPIKey, devAppKey, secretFile, "alice", 10*time.Minute, true)

	t.Run("certificate is really verified", func(t *testing.T) {
		// Trusting another self-signed certificate instead, the handshake
		// must fail: the checks above really verified the dev certificate.
		other, _, err := tlsutil.SelfSigned(t.TempDir(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		otherPEM, _ := os.ReadFile(other)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(otherPEM)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		_, err = c.Get(s.publicURL + "/openapi.yaml")
		var uae x509.UnknownAuthorityError
		if err == nil || !errors.As(err, &uae) {
			t.Fatalf("request without the dev root: %v, want an unknown-authority error", err)
		}
	})

	t.Run("TLS posture", func(t *testing.T) {
		addr := strings.TrimPrefix(s.publicURL, "https://")
		for _, cc := range []*tls.Config{
			{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11},
			{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
			{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
			{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}},
		} {
			cc.RootCAs = s.roots
			if c, err := tls.Dial("tcp", addr, cc); err == nil {
				st := c.ConnectionState()
				c.Close()
				t.Errorf("handshake accepted: %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
			}
		}
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: s.roots, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}})
		if err != nil {
			t.Fatalf("TLS 1.2 with an AEAD suite: %v", err)
		}
		c.Close()
		resp, _ := s.get(t, s.publicURL+"/openapi.yaml")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("/openapi.yaml: %s, Strict-Transport-Security %q", resp.Status, resp.Header.Get("Strict-Transport-Security"))
		}
	})

	t.Run("healthcheck", func(t *testing.T) {
		var stderr bytes.Buffer
		if err := run(context.Background(), []string{"healthcheck", "--url", s.adminURL + "/readyz"}, envOf(nil), &stderr, &stderr); err != nil {
			t.Errorf("healthcheck of a ready server: %v", err)
		}
		err := run(context.Background(), []string{"healthcheck", "--url", s.adminURL + "/no-such-page"}, envOf(nil), &stderr, &stderr)
		oneLineErr(t, err, "404")

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		err = run(context.Background(), []string{"healthcheck", "--url", "http://" + closed + "/readyz", "--timeout", "2s"}, envOf(nil), &stderr, &stderr)
		oneLineErr(t, err, "not ready")
	})

	// Refused callers, with values that must never reach the log.
	const wrongKey = "wrong-api-key-5f0c2a9e"
	bearer := got.tokens[0] // a real JWT used as a (refused) identity token
	refusals := []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"X-API-Key": wrongKey}, http.StatusUnauthorized},
		{map[string]string{"Authorization": "Bearer " + bearer}, http.StatusUnauthorized},
		{map[string]string{"Authorization": "Basic " + wrongKey}, http.StatusUnauthorized},
		{map[string]string{"X-API-Key": devAPIKey, "Authorization": "Bearer " + bearer}, http.StatusBadRequest},
		{nil, http.StatusUnauthorized},
	}
	for _, r := range refusals {
		resp, body := s.post(t, "/v1/registration-tokens", r.hdr, `{"userId":"bob"}`)
		if resp.StatusCode != r.want || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%v: %s %s %s, want %d problem+json", r.hdr, resp.Status, resp.Header.Get("Content-Type"), body, r.want)
		}
		if bytes.Contains(body, []byte(wrongKey)) || bytes.Contains(body, []byte(bearer)) {
			t.Errorf("problem body echoes the credential: %s", body)
		}
	}

	if err := s.rc.stop(t); err != nil {
		t.Fatalf("dev returned %v after its context ended", err)
	}

	t.Run("logs hold no secrets", func(t *testing.T) {
		logs := s.rc.stderr.String()
		if !strings.Contains(logs, "credential") || !strings.Contains(logs, "outcome=refused") || !strings.Contains(logs, "outcome=issued") {
			t.Fatalf("the log lacks the credential records this check relies on:\n%s", logs)
		}
		secrets := map[string]string{
			"application secret": readSecret(t, secretFile),
			"dev API key":        devAPIKey,
			"wrong API key":      wrongKey,
			"bearer token":       bearer,
		}
		for i, tok := range got.tokens {
			secrets[fmt.Sprintf("token %d", i)] = tok
			secrets[fmt.Sprintf("token %d signature", i)] = tok[strings.LastIndexByte(tok, '.')+1:]
		}
		for i, sig := range got.signatures {
			secrets[fmt.Sprintf("signature %d", i)] = sig
		}
		for name, v := range secrets {
			if strings.Contains(logs, v) {
				t.Errorf("the log contains the %s", name)
			}
		}
		for _, h := range []string{"Authorization", "authorization", "X-Api-Key", "X-API-Key", "Bearer", "Basic "} {
			if strings.Contains(logs, h) {
				t.Errorf("the log mentions %q", h)
			}
		}
	})
}

// TestDevKeepsSecretAndSequencesAcrossRestarts restarts dev on the same data
// dir: the secret file is reused (old tokens stay verifiable) and sequences
// continue, never repeat. The clock floor is off so that continuing is seen
// exactly (1 then 2), not hidden by the floor.
func TestDevKeepsSecretAndSequencesAcrossRestarts(t *testing.T) {
	dataDir := t.TempDir()
	secretFile := filepath.Join(dataDir, "dev-app-secret")
	hdr := map[string]string{"X-API-Key": devAPIKey}
	var secrets []string
	for round, want := range []uint64{1, 2} {
		s := startDevEnv(t, dataDir, map[string]string{"AUTHSERVER_SEQUENCE_CLOCK_FLOOR": "false"})
		secrets = append(secrets, readSecret(t, secretFile))
		resp, body := s.post(t, "/v1/registration-signatures", hdr, `{"userId":"carol"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("round %d: %s %s", round, resp.Status, body)
		}
		var sr struct{ Sequence uint64 }
		_ = json.Unmarshal(body, &sr)
		if sr.Sequence != want {
			t.Errorf("round %d: sequence %d, want %d", round, sr.Sequence, want)
		}
		if round == 0 {
			// A second dev on the same data dir is refused at once, in one line.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := run(ctx, []string{"dev", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir},
				envOf(nil), &bytes.Buffer{}, &bytes.Buffer{})
			oneLineErr(t, err, "in use by another process")
			if ctx.Err() != nil {
				t.Error("the second dev only returned when its context ended")
			}
			cancel()
		}
		s.client.CloseIdleConnections()
		if err := s.rc.stop(t); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if secrets[0] != secrets[1] {
		t.Error("dev replaced its secret on restart")
	}
}

// TestGracefulShutdown holds a request in flight (headers and half the body
// sent, the handler reading), ends run's context, and only then sends the
// rest: the request must still complete with 200 and run must return nil.
func TestGracefulShutdown(t *testing.T) {
	s := startDev(t, t.TempDir())
	u, err := url.Parse(s.publicURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: s.roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	body := `{"userId":"dave","ttlSeconds":120}`
	half := len(body) / 2
	fmt.Fprintf(conn, "POST /v1/registration-tokens HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", u.Host, devAPIKey, len(body))
	br := bufio.NewReader(conn)
	// 100 Continue is sent when the handler starts reading the body: from
	// here on the request is in flight.
	cont, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cont.StatusCode != http.StatusContinue {
		t.Fatalf("got %s before the body, want 100 Continue", cont.Status)
	}
	if _, err := conn.Write([]byte(body[:half])); err != nil {
		t.Fatal(err)
	}

	s.rc.cancel()
	// Wait until shutdown has begun: the listener refuses new connections.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the public listener still accepts 10 s after the context ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-s.rc.done:
		t.Fatalf("run returned (%v) while a request was in flight", s.rc.err)
	case <-time.After(200 * time.Millisecond):
	}

	if _, err := conn.Write([]byte(body[half:])); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response of the in-flight request: %v", err)
	}
	var tr struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || strings.Count(tr.Token, ".") != 2 {
		t.Fatalf("in-flight request: %s, token %q, decode error %v", resp.Status, tr.Token, err)
	}
	if err := s.rc.stop(t); err != nil {
		t.Fatalf("run returned %v after a graceful shutdown", err)
	}
	if !strings.Contains(s.rc.stderr.String(), "stopped") {
		t.Errorf("no \"stopped\" log line:\n%s", s.rc.stderr)
	}
}

// TestDevBrowserFlow: dev accepts its demo identity token as a Bearer token
// (what a browser page sends: it must not hold an API key), and allows CORS
// from pages on localhost / 127.0.0.1 on any port, and from nowhere else.
func TestDevBrowserFlow(t *testing.T) {
	s := startDev(t, t.TempDir(), "--demo-user", "bob")
	m := devIDTokenRe.FindStringSubmatch(s.rc.stdout.String())
	if m == nil {
		t.Fatalf("the banner has no demo identity token:\n%s", s.rc.stdout)
	}
	if m[1] != "bob" {
		t.Errorf("banner token for %q, want bob", m[1])
	}
	resp, body := s.post(t, "/v1/registration-tokens", map[string]string{"Authorization": "Bearer " + m[2], "Origin": "http://localhost:5173"}, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"userId":"bob"`) {
		t.Fatalf("Bearer demo token: %s %s", resp.Status, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:5173" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	for origin, allowed := range map[string]bool{
		"http://localhost:5173":   true,
		"http://127.0.0.1:8000":   true,
		"https://evil.example":    false,
		"http://evil.example:80":  false,
		"http://localhost.evil:1": false,
	} {
		req, err := http.NewRequest(http.MethodOptions, s.publicURL+"/v1/registration-tokens", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, _ := s.do(t, req)
		if got := resp.Header.Get("Access-Control-Allow-Origin") == origin; got != allowed {
			t.Errorf("preflight from %s allowed = %v, want %v", origin, got, allowed)
		}
	}
	// The token is for bob only.
	resp, body = s.post(t, "/v1/registration-tokens", map[string]string{"Authorization": "Bearer " + m[2]}, `{"userId":"alice"}`)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob's token for alice: %s %s", resp.Status, body)
	}
}
