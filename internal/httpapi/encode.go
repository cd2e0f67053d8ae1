package httpapi

import (
	"encoding/json"
	"strconv"
)

// The credential responses are written by hand, like the JWT itself: their
// strings are a token, validated keys and ids and RFC 3339 times, so
// reflection buys nothing. appendString falls back to encoding/json for
// anything it would escape, so the bytes are always json.Marshal's
// (encode_internal_test.go checks).

// appendJSON appends the response as json.Marshal would write it.
func (t *tokenResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"token":`...)
	b = appendString(b, t.Token)
	b = append(b, `,"applicationKey":`...)
	b = appendString(b, t.ApplicationKey)
	b = append(b, `,"userId":`...)
	b = appendString(b, t.UserID)
	b = append(b, `,"issuedAt":`...)
	b = appendString(b, t.IssuedAt)
	b = append(b, `,"expiresAt":`...)
	b = appendString(b, t.ExpiresAt)
	if t.InstanceExpiresAt != "" {
		b = append(b, `,"instanceExpiresAt":`...)
		b = appendString(b, t.InstanceExpiresAt)
	}
	return append(b, '}')
}

// appendJSON appends the response as json.Marshal would write it.
func (s *signatureResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"applicationKey":`...)
	b = appendString(b, s.ApplicationKey)
	b = append(b, `,"userId":`...)
	b = appendString(b, s.UserID)
	b = append(b, `,"sequence":`...)
	b = strconv.AppendUint(b, s.Sequence, 10)
	b = append(b, `,"signature":`...)
	b = appendString(b, s.Signature)
	return append(b, '}')
}

// appendString appends s as a JSON string the way encoding/json does.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // strings always marshal
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
