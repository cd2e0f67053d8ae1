package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestSecretsNeverLeak makes requests of every outcome, with every kind of
// credential, and checks that no log line, response body or response header
// holds an application secret, an API key, a bearer token, or key material.
func TestSecretsNeverLeak(t *testing.T) {
	e := newEnv(t, envOpts{perUser: "5/h", corsOrigins: []string{"https://app.example.com"}})
	pem := e.idp.RSAPublicKeyPEM()
	claims := e.idp.Claims("alice", audience, e.now)
	algConfusion, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pem)
	if err != nil {
		t.Fatal(err)
	}
	hsForged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": hsIssuer, "sub": "carol", "aud": audience, "iat": e.now.Unix(), "exp": e.now.Add(time.Minute).Unix(),
	}).SignedString([]byte("a-guessed-secret-that-is-long-enough-0123"))
	if err != nil {
		t.Fatal(err)
	}
	bearers := []string{
		e.userToken("RS256", "alice"),
		e.userToken("ES256", "bob"),
		e.userToken("RS256", "user@example.com"),
		e.hsToken(t, "carol"),
		algConfusion,
		hsForged,
		e.idp.SignWithKID("RS256", "no-such-kid", claims),
		e.idp.Sign("RS256", withClaims(claims, "exp", e.now.Add(-time.Hour).Unix())),
		e.idp.Sign("RS256", withClaims(claims, "aud", "another-client")),
	}
	const wrongKey = "ak-guess-00000000000000000000000000000000"
	var requests []req
	for _, b := range bearers {
		for _, body := range []string{"", `{"userId":"bob"}`, `{"applicationKey":"` + appB + `"}`} {
			requests = append(requests,
				req{bearer: b, body: body},
				req{path: "/v1/registration-signatures", bearer: b, body: body},
			)
		}
		requests = append(requests,
			req{apiKey: apiKeyAll, bearer: b, body: `{"userId":"alice"}`},
			req{bearer: b, header: http.Header{"Origin": {"https://app.example.com"}}},
		)
	}
	for _, key := range []string{apiKeyAll, apiKeyB, wrongKey} {
		for _, body := range []string{
			`{"userId":"alice"}`, `{"userId":"alice","applicationKey":"` + appB + `"}`,
			`{"userId":"alice","applicationKey":"` + appNoSig + `"}`, `{"userId":"alice","ttlSeconds":5}`,
			`{"userId":"` + secretA + `"}`, `not json`, ``,
		} {
			requests = append(requests,
				req{apiKey: key, body: body},
				req{path: "/v1/registration-signatures", apiKey: key, body: body},
			)
		}
		requests = append(requests, req{apiKey: key, body: `{"userId":"alice"}`, contentType: "text/plain"})
	}
	requests = append(requests,
		req{authz: "Basic " + apiKeyAll},
		req{authz: apiKeyAll},
		req{method: http.MethodGet, apiKey: apiKeyAll, bearer: bearers[0]},
		req{method: http.MethodGet, path: "/openapi.yaml", apiKey: apiKeyAll},
		req{path: "/nope", apiKey: apiKeyAll, bearer: bearers[0]},
	)

	var responses []res
	statuses := map[int]int{}
	for _, r := range requests {
		got := e.do(t, r)
		responses = append(responses, got)
		statuses[got.status]++
	}
	admin := httptest.NewServer(e.srv.Admin())
	defer admin.Close()
	responses = append(responses, doAdmin(t, e, admin, "/metrics"), doAdmin(t, e, admin, "/readyz"))
	for _, s := range []int{200, 400, 401, 403, 405, 415, 429} {
		if statuses[s] == 0 {
			t.Errorf("no response with status %d among %v: the test lost coverage", s, statuses)
		}
	}

	secrets := map[string]string{
		"secret of appA": secretA, "secret of appB": secretB, "secret of appNoSig": secretC,
		"API key": apiKeyAll, "scoped API key": apiKeyB, "wrong API key": wrongKey,
		"HS256 secret": hsSecret, "RSA public key PEM": string(pem),
	}
	// A PEM line is enough to count as key material.
	for i, line := range strings.Split(strings.TrimSpace(string(pem)), "\n") {
		if !strings.HasPrefix(line, "-----") {
			secrets["RSA key line "+string(rune('0'+i))] = line
		}
	}
	for i, b := range bearers {
		secrets["bearer token "+string(rune('a'+i))] = b
		secrets["bearer signature "+string(rune('a'+i))] = b[strings.LastIndexByte(b, '.')+1:]
	}

	logs := e.logs.Bytes()
	if len(logs) == 0 {
		t.Fatal("no log lines")
	}
	for name, s := range secrets {
		if s == "" {
			continue
		}
		if bytes.Contains(logs, []byte(s)) {
			t.Errorf("the log holds the %s", name)
		}
		for i, r := range responses {
			// Even the request that sends secretA as a user id does not
			// get it back: problems name fields, never echo values.
			if bytes.Contains(r.body, []byte(s)) {
				t.Errorf("response %d (%d) body holds the %s", i, r.status, name)
			}
			for k, vs := range r.header {
				for _, v := range vs {
					if strings.Contains(v, s) {
						t.Errorf("response %d header %s holds the %s", i, k, name)
					}
				}
			}
		}
	}
}
