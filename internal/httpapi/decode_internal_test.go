package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"
)

// decodeSlow is decode's encoding/json path.
func decodeSlow(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// decodeFast is decode's scanner path; ok is false where decode falls back.
func decodeFast(data []byte, v flatObject) bool {
	var buf [maxFlatMembers]member
	ms, ok := scanFlatObject(data, buf[:0])
	return ok && v.setMembers(ms)
}

// checkSameAsEncodingJSON fails if the scanner accepts data and decodes it
// differently from encoding/json, for both request types.
func checkSameAsEncodingJSON(t *testing.T, data []byte) (fastTok, fastSig bool) {
	t.Helper()
	var ft, st tokenRequest
	if fastTok = decodeFast(data, &ft); fastTok {
		if err := decodeSlow(data, &st); err != nil {
			t.Fatalf("%q: the scanner accepts a token request encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(ft, st) {
			t.Fatalf("%q: token request %+v, encoding/json %+v", data, ft, st)
		}
	}
	var fs, ss signatureRequest
	if fastSig = decodeFast(data, &fs); fastSig {
		if err := decodeSlow(data, &ss); err != nil {
			t.Fatalf("%q: the scanner accepts a signature request encoding/json refuses: %v", data, err)
		}
		if fs != ss {
			t.Fatalf("%q: signature request %+v, encoding/json %+v", data, fs, ss)
		}
	}
	return fastTok, fastSig
}

var flatSeeds = []string{
	`{"userId":"alice"}`,
	` { "userId" : "alice" , "applicationKey":"app-a" } ` + "\n",
	`{"userId":"alice","ttlSeconds":900,"instanceTtlSeconds":172800}`,
	`{"ttlSeconds":-0}`, `{"ttlSeconds":007}`, `{"ttlSeconds":1.5}`, `{"ttlSeconds":1e3}`,
	`{"ttlSeconds":999999999999999999}`, `{"ttlSeconds":9999999999999999999}`,
	`{"userId":"a","userId":"b"}`, `{"ttlSeconds":5,"ttlSeconds":null}`,
	`{"userid":"alice"}`, `{"USERID":"alice"}`, `{"userId":"al\u0069ce"}`, `{"userId":"al\"ice"}`,
	`{"userId":"ali<ce>&"}`, "{\"userId\":\"\xff\"}", `{"userId":"é"}`, `{"userId":42}`, `{"ttlSeconds":"60"}`,
	`{}`, ` {} `, `{,}`, `{"userId":"alice",}`, `{"userId":"alice"}{}`, `{"userId":"alice"} ]`, `[]`, `""`, `{"a":{}}`,
	`{"userId":"alice","x":1}`, `{"applicationKey":null}`, `{"userId":true}`, `{"userId":"alice"`, `{"userId"}`,
}

// TestFlatScanner checks the scanner against encoding/json on the seeds, and
// that the bodies clients send really take the fast path.
func TestFlatScanner(t *testing.T) {
	for _, s := range flatSeeds {
		checkSameAsEncodingJSON(t, []byte(s))
	}
	for _, s := range []string{
		`{"userId":"alice"}`,
		`{"userId":"alice","applicationKey":"app-a","ttlSeconds":900,"instanceTtlSeconds":172800}`,
		"{\n  \"userId\": \"user-1_=\"\n}\n",
		`{}`,
	} {
		if tok, _ := checkSameAsEncodingJSON(t, []byte(s)); !tok {
			t.Errorf("%s: not decoded by the scanner", s)
		}
	}
	for _, s := range []string{
		`{"userId":"al\u0069ce"}`, `{"USERID":"alice"}`, `{"userId":42}`, `{"ttlSeconds":1.5}`,
		`{"ttlSeconds":null}`, `{"userId":"alice","x":1}`, `{"userId":"alice"}{}`, `{"userId":"é"}`,
	} {
		if tok, _ := checkSameAsEncodingJSON(t, []byte(s)); tok {
			t.Errorf("%s: decoded by the scanner, want the encoding/json path", s)
		}
	}
}

func FuzzFlatScanner(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameAsEncodingJSON(t, data)
	})
}
