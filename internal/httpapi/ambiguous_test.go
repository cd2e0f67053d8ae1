package httpapi_test

import (
	"net/http"
	"testing"
)

// TestAmbiguousRequestsRefused: the attack run's requests that meant two
// things, depending on who reads them, and were answered with a credential
// for one reading ({"userId":"a","userId":"b"} gave b; USERID was userId;
// of two Authorization headers the first counted). Each is a 400 now.
func TestAmbiguousRequestsRefused(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.userToken("ES256", "alice")
	for _, tc := range []struct {
		name string
		req  req
	}{
		{"duplicate member", req{apiKey: apiKeyAll, body: `{"userId":"a","userId":"b"}`}},
		{"duplicate member, escaped name", req{apiKey: apiKeyAll, body: `{"userId":"a","user\u0049d":"b"}`}},
		{"duplicate member among others", req{apiKey: apiKeyAll, body: `{"userId":"a","ttlSeconds":600,"userId":"b"}`}},
		{"upper-case name", req{apiKey: apiKeyAll, body: `{"USERID":"alice"}`}},
		{"capitalised name", req{apiKey: apiKeyAll, body: `{"UserId":"alice"}`}},
		{"case variant, signature", req{path: "/v1/registration-signatures", apiKey: apiKeyAll, body: `{"userid":"alice"}`}},
		{"two Authorization headers", req{header: http.Header{"Authorization": {"Bearer " + tok, "Bearer " + e.userToken("ES256", "bob")}}}},
		{"two identical Authorization headers", req{header: http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}}},
		{"two X-API-Key headers", req{body: `{"userId":"alice"}`, header: http.Header{"X-Api-Key": {apiKeyAll, apiKeyB}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustProblem(t, e.do(t, tc.req), http.StatusBadRequest, "invalid-request")
		})
	}
	// The unambiguous forms still work.
	mustStatus(t, e.do(t, req{apiKey: apiKeyAll, body: `{"userId":"a","ttlSeconds":600}`}), http.StatusOK)
	mustStatus(t, e.do(t, req{bearer: tok}), http.StatusOK)
}
