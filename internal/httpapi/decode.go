package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// MaxBodyBytes caps request bodies; credential requests are a few fields.
const MaxBodyBytes = 16 << 10

// validator is implemented by request types that check themselves.
type validator interface{ Valid() error }

// decode reads one JSON object into v: size-capped, unknown fields and
// trailing data rejected, then v.Valid(). An empty body leaves v as is (every
// field is optional). Every failure is an *apiError with a 4xx status.
func decode[T validator](w http.ResponseWriter, r *http.Request, v T) error {
	data, err := readBody(w, r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return classify(err)
		}
		return badRequest("the request body could not be read")
	}
	if len(data) == 0 {
		return v.Valid()
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return newError(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"send the body as application/json").with("Accept-Post", "application/json")
	}
	if err := decodeJSON(data, v); err != nil {
		return err
	}
	return v.Valid()
}

// readBody reads the body, at most MaxBodyBytes. A body of known length
// (the usual case) is read into a buffer of exactly that size, not through
// io.ReadAll's growing one.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: MaxBodyBytes}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if r.ContentLength <= 0 {
		return io.ReadAll(body)
	}
	data := make([]byte, r.ContentLength, r.ContentLength+1)
	if _, err := io.ReadFull(body, data); err != nil {
		return nil, err
	}
	// net/http ends a body at Content-Length; a Body that does not (a
	// test's, a middleware's) must not have more.
	switch n, err := body.Read(data[len(data):cap(data)]); {
	case n > 0:
		return nil, errors.New("body longer than Content-Length")
	case err != nil && err != io.EOF:
		return nil, err
	}
	return data, nil
}

// decodeJSON decodes one JSON object into v, strictly: every member name
// exactly one of v's JSON field names (no case variants, which encoding/json
// would accept), no name twice (encoding/json would keep the last), no
// trailing data. A credential request must mean one thing to every reader.
func decodeJSON(data []byte, v any) error {
	// The fast path: a flat object of plain strings and integers is scanned
	// by hand (scanFlatObject) instead of by encoding/json twice (the member
	// check and the decode). It earns its place: go run ./bench -other, this
	// code against a build without it (JWT via API key, 6 alternating rounds
	// of 4 s), measured 1.09× the req/s (median of rounds) and 0.92× the
	// server CPU per request. FuzzDecodeJSON keeps it equal to the strict path.
	if f, ok := v.(flatObject); ok {
		var buf [maxFlatMembers]member
		if ms, ok := scanFlatObject(data, buf[:0]); ok && distinctNames(ms) && f.setMembers(ms) {
			return nil
		}
	}
	if err := checkMembers(data, v); err != nil {
		return err
	}
	// checkMembers has refused every name that is not one of v's (v is
	// flat); DisallowUnknownFields stays as a second guard.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return badRequest("the body must hold exactly one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("the body must hold exactly one JSON object")
	}
	return nil
}

// distinctNames reports whether no member name repeats (ms is short).
func distinctNames(ms []member) bool {
	for i := range ms {
		for j := range i {
			if ms[i].name == ms[j].name {
				return false
			}
		}
	}
	return true
}

// checkMembers refuses a body that is not one object (encoding/json would
// take "null" as an empty request) and an object whose member names are not
// exactly v's JSON field names or repeat. Syntax errors are left to
// encoding/json to report.
func checkMembers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	t, err := dec.Token()
	if err != nil {
		return nil
	}
	if t != json.Delim('{') {
		return badRequest("the body must be a JSON object")
	}
	names := jsonNames(v)
	seen := make(map[string]bool, len(names))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := t.(string)
		if len(name) > 64 {
			name = name[:64]
		}
		if !slices.Contains(names, name) {
			for _, n := range names {
				if strings.EqualFold(n, name) {
					return badField(name, "unknown field (names are case-sensitive: "+n+")")
				}
			}
			return badField(name, "unknown field")
		}
		if seen[name] {
			return badField(name, "appears twice")
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// jsonNames lists the JSON names of the fields of the struct v points to.
func jsonNames(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func isJSON(ct string) bool {
	if ct == "application/json" {
		return true // what nearly every client sends; ParseMediaType allocates
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json")
}

// jsonError explains a decoding failure without echoing request bytes beyond
// a field name.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("malformed JSON at byte " + strconv.FormatInt(se.Offset, 10))
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("the body must be a JSON object")
		}
		return badField(te.Field, "must be "+jsonKind(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: unexpected end of body")
	}
	return badRequest("malformed JSON")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int64", "int", "uint64":
		return "an integer"
	}
	return "of another type"
}

// The credential request bodies are small flat objects of strings and
// integers, and encoding/json's reflection costs more than the rest of
// issuing a token. So decode first tries scanFlatObject, a strict scanner of
// the plain case, and falls back to encoding/json for everything else (and
// so for every error): escapes, non-ASCII, null, nesting, fractions, case
// variants of names, unknown or repeated names. For what the scanner
// accepts, the result is the one a strict reference decoder gives
// (decode_internal_test.go checks, and FuzzDecodeJSON searches for a
// difference).

// maxFlatMembers bounds the members scanFlatObject accepts; bodies with more
// take the encoding/json path.
const maxFlatMembers = 8

// member is one name and value of a flat object: a string, or an integer
// when isNum.
type member struct {
	name, str string
	num       int64
	isNum     bool
}

// flatObject is implemented by request types that take a flat object.
// setMembers sets the fields named by ms and reports true, or reports false
// and changes nothing when a name is not a field's exact JSON name or a
// value has the wrong kind.
type flatObject interface {
	setMembers(ms []member) bool
}

// setAppUser sets *appKey or *user from m, the two string members both
// requests take, and reports whether m was one of them.
func setAppUser(m member, appKey, user *string) bool {
	switch {
	case m.name == "applicationKey" && !m.isNum:
		*appKey = m.str
	case m.name == "userId" && !m.isNum:
		*user = m.str
	default:
		return false
	}
	return true
}

// scanFlatObject scans data as one object whose values are plain strings
// (printable ASCII, no escapes) or integers of at most 18 digits, with only
// whitespace around it. ok is false for anything else.
func scanFlatObject(data []byte, ms []member) (_ []member, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return ms, skipSpace(data, i+1) == len(data)
	}
	for {
		if len(ms) == cap(ms) {
			return nil, false
		}
		var m member
		if m.name, i, ok = scanPlainString(data, i); !ok {
			return nil, false
		}
		i = skipSpace(data, i)
		if i == len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipSpace(data, i+1)
		if i == len(data) {
			return nil, false
		}
		if data[i] == '"' {
			m.str, i, ok = scanPlainString(data, i)
		} else {
			m.num, i, ok = scanInt(data, i)
			m.isNum = true
		}
		if !ok {
			return nil, false
		}
		ms = append(ms, m)
		i = skipSpace(data, i)
		if i == len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return ms, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// scanPlainString scans a string at data[i] of printable ASCII without
// backslashes; it returns the contents and the index after the closing quote.
func scanPlainString(data []byte, i int) (string, int, bool) {
	if i == len(data) || data[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return string(data[i+1 : j]), j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", i, false
		}
	}
	return "", i, false
}

// scanInt scans -?(0|[1-9][0-9]*) of at most 18 digits (so it fits an
// int64) not followed by a fraction or exponent.
func scanInt(data []byte, i int) (int64, int, bool) {
	neg := i < len(data) && data[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		n = n*10 + int64(data[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || digits > 1 && data[start] == '0' {
		return 0, i, false
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return 0, i, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}
