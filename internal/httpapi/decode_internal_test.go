package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// decodeStrict is the reference decoder: what decodeJSON must do, written
// the plain way. The body is one JSON object; each member name is exactly
// the JSON name of one of v's fields and appears once; each value decodes
// (encoding/json) into its field; nothing follows the object.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("not an object")
	}
	rv := reflect.ValueOf(v).Elem()
	fields := map[string]reflect.Value{}
	for i := range rv.NumField() {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
		fields[name] = rv.Field(i)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name := t.(string)
		f, ok := fields[name]
		if !ok || seen[name] {
			return errors.New("unknown or repeated name")
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return err
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return errors.New("unterminated object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// decodeFast is decode's scanner path; ok is false where decode falls back.
func decodeFast(data []byte, v flatObject) bool {
	var buf [maxFlatMembers]member
	ms, ok := scanFlatObject(data, buf[:0])
	return ok && distinctNames(ms) && v.setMembers(ms)
}

// checkAgainstReference fails if decodeJSON, or its scanner on its own,
// decodes data differently from the reference decoder (accepts what it
// refuses, refuses what it accepts, or yields another value), for both
// request types. It reports whether the scanner took each body.
func checkAgainstReference(t *testing.T, data []byte) (fastTok, fastSig bool) {
	t.Helper()
	check := func(kind string, got, fast, want any, fastOK bool) {
		t.Helper()
		refErr := decodeStrict(data, want)
		if fastOK {
			if refErr != nil {
				t.Fatalf("%q: the scanner accepts a %s the reference refuses: %v", data, kind, refErr)
			}
			if !reflect.DeepEqual(fast, want) {
				t.Fatalf("%q: %s from the scanner %+v, reference %+v", data, kind, fast, want)
			}
		}
		err := decodeJSON(data, got)
		switch {
		case err == nil && refErr != nil:
			t.Fatalf("%q: decodeJSON accepts a %s the reference refuses (%v): %+v", data, kind, refErr, got)
		case err != nil && refErr == nil:
			t.Fatalf("%q: decodeJSON refuses a %s the reference accepts (%+v): %v", data, kind, want, err)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("%q: %s from decodeJSON %+v, reference %+v", data, kind, got, want)
		case err != nil:
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != 400 {
				t.Fatalf("%q: decodeJSON error %v, want a 400 apiError", data, err)
			}
		}
	}
	var ft tokenRequest
	fastTok = decodeFast(data, &ft)
	check("token request", &tokenRequest{}, &ft, &tokenRequest{}, fastTok)
	var fs signatureRequest
	fastSig = decodeFast(data, &fs)
	check("signature request", &signatureRequest{}, &fs, &signatureRequest{}, fastSig)
	return fastTok, fastSig
}

var flatSeeds = []string{
	`{"userId":"alice"}`,
	` { "userId" : "alice" , "applicationKey":"app-a" } ` + "\n",
	`{"userId":"alice","ttlSeconds":900,"instanceTtlSeconds":172800}`,
	`{"ttlSeconds":-0}`, `{"ttlSeconds":007}`, `{"ttlSeconds":1.5}`, `{"ttlSeconds":1e3}`,
	`{"ttlSeconds":999999999999999999}`, `{"ttlSeconds":9999999999999999999}`,
	`{"userId":"a","userId":"b"}`, `{"ttlSeconds":5,"ttlSeconds":null}`, `{"userId":"a","user\u0049d":"b"}`,
	`{"userid":"alice"}`, `{"USERID":"alice"}`, `{"UserId":"alice"}`, `{"userId":"al\u0069ce"}`, `{"userId":"al\"ice"}`,
	`{"userId":"ali<ce>&"}`, "{\"userId\":\"\xff\"}", `{"userId":"é"}`, `{"userId":42}`, `{"ttlSeconds":"60"}`,
	`{}`, ` {} `, `{,}`, `{"userId":"alice",}`, `{"userId":"alice"}{}`, `{"userId":"alice"} ]`, `[]`, `""`, `{"a":{}}`,
	`{"userId":"alice","x":1}`, `{"applicationKey":null}`, `{"userId":true}`, `{"userId":"alice"`, `{"userId"}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"userId":"x","userId":"y"}`,
}

// TestFlatScanner checks decodeJSON and its scanner against the reference on
// the seeds, and that the bodies clients send really take the fast path.
func TestFlatScanner(t *testing.T) {
	for _, s := range flatSeeds {
		checkAgainstReference(t, []byte(s))
	}
	for _, s := range []string{
		`{"userId":"alice"}`,
		`{"userId":"alice","applicationKey":"app-a","ttlSeconds":900,"instanceTtlSeconds":172800}`,
		"{\n  \"userId\": \"user-1_=\"\n}\n",
		`{}`,
	} {
		if tok, _ := checkAgainstReference(t, []byte(s)); !tok {
			t.Errorf("%s: not decoded by the scanner", s)
		}
	}
	for _, s := range []string{
		`{"userId":"al\u0069ce"}`, `{"USERID":"alice"}`, `{"userId":42}`, `{"ttlSeconds":1.5}`,
		`{"ttlSeconds":null}`, `{"userId":"alice","x":1}`, `{"userId":"alice"}{}`, `{"userId":"é"}`,
		`{"userId":"a","userId":"b"}`,
	} {
		if tok, _ := checkAgainstReference(t, []byte(s)); tok {
			t.Errorf("%s: decoded by the scanner, want the encoding/json path", s)
		}
	}
}

// TestDecodeRefusesAmbiguousMembers: the attack run's bodies that encoding/
// json accepts, each read differently by some other parser.
func TestDecodeRefusesAmbiguousMembers(t *testing.T) {
	for _, s := range []string{
		`{"userId":"a","userId":"b"}`,
		`{"userId":"a","user\u0049d":"b"}`,
		`{"ttlSeconds":60,"ttlSeconds":120}`,
		`{"USERID":"alice"}`,
		`{"UserId":"alice"}`,
		`{"userid":"alice","ttlSeconds":60}`,
	} {
		var q tokenRequest
		err := decodeJSON([]byte(s), &q)
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != 400 {
			t.Errorf("%s: %v (%+v), want 400", s, err, q)
		}
	}
}

// FuzzDecodeJSON looks for a body on which the request decoder (scanner
// and encoding/json path) and the strict reference decoder disagree. .ci/run
// runs it for a fixed time.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstReference(t, data)
	})
}

// TestReadBody: a body of known length is read into a buffer of that size;
// a body that is shorter or longer than its Content-Length is an error,
// one of unknown length is read whole.
func TestReadBody(t *testing.T) {
	for _, c := range []struct {
		length int64
		body   string
		ok     bool
	}{
		{3, "abc", true},
		{-1, "abc", true},
		{0, "", true},
		{6, "abc", false},
		{2, "abc", false},
		{MaxBodyBytes + 1, "abc", false}, // refused before any allocation of that size
		{MaxBodyBytes, strings.Repeat("a", MaxBodyBytes+1), false},
		{MaxBodyBytes, strings.Repeat("a", MaxBodyBytes), true},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
		r.ContentLength = c.length
		got, err := readBody(httptest.NewRecorder(), r)
		if (err == nil) != c.ok || c.ok && string(got) != c.body {
			t.Errorf("Content-Length %d, body of %d bytes: %d bytes, %v", c.length, len(c.body), len(got), err)
		}
	}
}
