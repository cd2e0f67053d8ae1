package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// MaxBodyBytes caps request bodies; credential requests are a few fields.
const MaxBodyBytes = 16 << 10

// validator is implemented by request types that check themselves.
type validator interface{ Valid() error }

// decode reads one JSON object into v: size-capped, unknown fields and
// trailing data rejected, then v.Valid(). An empty body leaves v as is (every
// field is optional). Every failure is an *apiError with a 4xx status.
func decode[T validator](w http.ResponseWriter, r *http.Request, v T) error {
	if r.ContentLength > MaxBodyBytes {
		return classify(&http.MaxBytesError{Limit: MaxBodyBytes})
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
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
	return v.Valid()
}

func isJSON(ct string) bool {
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
	if f, ok := unknownField(err); ok {
		return badField(f, "unknown field")
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

// unknownField extracts the name from encoding/json's "json: unknown field
// \"x\"" error, the only way the package reports it.
func unknownField(err error) (string, bool) {
	var name string
	if n, _ := fmt.Sscanf(err.Error(), "json: unknown field %q", &name); n == 1 {
		if len(name) > 64 {
			name = name[:64]
		}
		return name, true
	}
	return "", false
}
