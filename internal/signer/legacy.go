package signer

import (
	"crypto/sha1" //nolint:gosec // Sinch's legacy registration scheme is defined with SHA-1; we cannot choose.
	"encoding/base64"
	"fmt"
	"strconv"
)

// LegacySignature returns the signature of Sinch's older registration scheme:
//
//	Base64(SHA1(userId + applicationKey + decimal(sequence) + applicationSecret))
//
// SHA-1 and the concatenation are Sinch's definition, not a choice made here;
// the Sinch backend recomputes exactly this string. Note that the secret goes
// in as its Base64 text, not decoded: the reference implementations hash the
// string they were configured with. Standard Base64 with padding, no line
// breaks.
func LegacySignature(appKey string, secret Secret, user UserID, sequence uint64) (string, error) {
	if !ValidAppKey(appKey) {
		return "", inputErr("applicationKey", fmt.Sprintf("must be 1-%d characters of A-Z a-z 0-9 - _ .", MaxAppKeyBytes))
	}
	if secret.IsZero() {
		return "", inputErr("applicationSecret", "missing")
	}
	if user.IsZero() {
		return "", inputErr("userId", "is required")
	}
	if sequence == 0 {
		return "", inputErr("sequence", "must be at least 1")
	}
	var buf [640]byte
	b := append(buf[:0], user.id...)
	b = append(b, appKey...)
	b = strconv.AppendUint(b, sequence, 10)
	b = append(b, secret.text...)
	sum := sha1.Sum(b) //nolint:gosec // see above
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}
