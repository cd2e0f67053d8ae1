package httpapi

import (
	"encoding/json"
	"testing"
)

var encodeSeeds = []string{"", "alice", "user-1_=", "a.b-c_d", "eyJhbGciOi.eyJleHAi.sig_-", "2026-11-22T12:00:00Z",
	`q"uote`, `back\slash`, "<script>&", "tab\there", "nl\n", "é", "\xff", "\u2028", "\x7f", "~"}

func checkEncodings(t *testing.T, a, b, c string, n uint64) {
	t.Helper()
	for _, inst := range []string{"", c} {
		tr := tokenResponse{Token: a, ApplicationKey: b, UserID: c, IssuedAt: a, ExpiresAt: b, InstanceExpiresAt: inst}
		want, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("tokenResponse %+v:\n got %s\nwant %s", tr, got, want)
		}
	}
	sr := signatureResponse{ApplicationKey: a, UserID: b, Sequence: n, Signature: c}
	want, err := json.Marshal(sr)
	if err != nil {
		t.Fatal(err)
	}
	if got := sr.appendJSON(nil); string(got) != string(want) {
		t.Fatalf("signatureResponse %+v:\n got %s\nwant %s", sr, got, want)
	}
}

// TestAppendJSONIsMarshal checks the hand-written responses byte for byte
// against json.Marshal of the same structs.
func TestAppendJSONIsMarshal(t *testing.T) {
	for i, a := range encodeSeeds {
		for _, b := range encodeSeeds {
			checkEncodings(t, a, b, encodeSeeds[(i+3)%len(encodeSeeds)], uint64(i)<<60|1)
		}
	}
}

func FuzzAppendJSONIsMarshal(f *testing.F) {
	for i, s := range encodeSeeds {
		f.Add(s, encodeSeeds[(i+1)%len(encodeSeeds)], encodeSeeds[(i+2)%len(encodeSeeds)], uint64(i))
	}
	f.Fuzz(checkEncodings)
}
