package signer

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"time"
)

// KeyIDPrefix starts every kid: Sinch's name for "signing key derived from
// the secret and the UTC date".
const KeyIDPrefix = "hkdfv1-"

// maxUnix keeps the kid's date at four year digits (9999-12-01) with room for
// the longest lifetimes.
const maxUnix = 253402300799 - 30*86400

// Issuer and subject prefixes of Sinch's registration token claims.
const (
	issPrefix = "//rtc.sinch.com/applications/"
	subInfix  = "/users/"
)

// Signer issues registration JWTs. Its clock and randomness are inputs so
// tests can pin both; it holds no other state (keys are cached on Secret).
type Signer struct {
	now  func() time.Time
	rand io.Reader
}

// New returns a Signer reading time from now and nonces from random
// (crypto/rand.Reader in production).
func New(now func() time.Time, random io.Reader) *Signer {
	return &Signer{now: now, rand: random}
}

// TokenParams are the inputs of one registration JWT.
type TokenParams struct {
	ApplicationKey string
	Secret         Secret
	UserID         UserID
	TTL            time.Duration // 0 means DefaultTokenTTL
	MaxTTL         time.Duration // 0 means no bound beyond Sinch's minimum
	InstanceTTL    time.Duration // 0 means no sinch:rtc:instance:exp claim
	IssuedAt       time.Time     // zero means the Signer's clock
	Nonce          string        // empty means 128 random bits as a UUIDv4
}

// Token is an issued registration JWT and the facts a caller may report.
type Token struct {
	JWT               string
	KeyID             string
	IssuedAt          time.Time
	ExpiresAt         time.Time
	InstanceExpiresAt time.Time // zero when the token has no instance expiry
}

// IssueToken builds and signs one registration JWT, byte for byte the way
// Sinch's reference implementation does: header {"alg":"HS256","kid":...},
// claims in sorted compact JSON. The JSON is written by hand: every variable
// part is made of characters that need no escaping (the application key and
// nonce are checked here, the user id is a UserID), and this avoids
// reflection and map sorting on the hot path.
func (s *Signer) IssueToken(p TokenParams) (Token, error) {
	if !ValidAppKey(p.ApplicationKey) {
		return Token{}, inputErr("applicationKey", fmt.Sprintf("must be 1-%d characters of A-Z a-z 0-9 - _ .", MaxAppKeyBytes))
	}
	if p.Secret.IsZero() {
		return Token{}, inputErr("applicationSecret", "missing")
	}
	if p.UserID.IsZero() {
		return Token{}, inputErr("userId", "is required")
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if err := CheckTTL(ttl, p.MaxTTL); err != nil {
		return Token{}, err
	}
	if err := CheckInstanceTTL(p.InstanceTTL); err != nil {
		return Token{}, err
	}
	var nonceBuf [36]byte
	nonce := []byte(p.Nonce)
	if p.Nonce == "" {
		var err error
		if nonce, err = s.newNonce(nonceBuf[:0]); err != nil {
			return Token{}, err
		}
	} else if !plainToken(p.Nonce, MaxNonceBytes, '.') {
		return Token{}, inputErr("nonce", fmt.Sprintf("must be 1-%d characters of A-Z a-z 0-9 - _ .", MaxNonceBytes))
	}

	// One clock reading gives both iat and the kid's date.
	at := p.IssuedAt
	if at.IsZero() {
		at = s.now()
	}
	iat := at.Unix()
	if iat <= 0 || iat > maxUnix {
		return Token{}, inputErr("issuedAt", "must be between 1970 and 9999 (UTC)")
	}
	exp := iat + int64(ttl/time.Second)
	var instExp int64
	if p.InstanceTTL > 0 {
		instExp = iat + int64(p.InstanceTTL/time.Second)
	}
	date := utcDate(iat)
	key := p.Secret.signingKey(date)

	var claimsBuf [512]byte
	claims := appendClaims(claimsBuf[:0], p.ApplicationKey, p.UserID.id, nonce, iat, exp, instExp)

	var hdrBuf [48]byte
	hdr := appendHeader(hdrBuf[:0], date)

	enc := base64.RawURLEncoding
	out := make([]byte, 0, enc.EncodedLen(len(hdr))+1+enc.EncodedLen(len(claims))+1+enc.EncodedLen(32))
	out = enc.AppendEncode(out, hdr)
	out = append(out, '.')
	out = enc.AppendEncode(out, claims)

	mac := key.mac()
	mac.Write(out)
	var sumBuf [32]byte
	sum := mac.Sum(sumBuf[:0])
	key.release(mac)

	out = append(out, '.')
	out = enc.AppendEncode(out, sum)

	tok := Token{
		JWT:       string(out),
		KeyID:     KeyIDPrefix + strconv.FormatUint(uint64(date), 10),
		IssuedAt:  time.Unix(iat, 0).UTC(),
		ExpiresAt: time.Unix(exp, 0).UTC(),
	}
	if instExp != 0 {
		tok.InstanceExpiresAt = time.Unix(instExp, 0).UTC()
	}
	return tok, nil
}

// newNonce reads 128 bits and formats them as a UUIDv4 (version and variant
// bits set, as Sinch's reference implementations do).
func (s *Signer) newNonce(dst []byte) ([]byte, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return nil, fmt.Errorf("reading randomness for nonce: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	dst = hex.AppendEncode(dst, b[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[10:16])
	return dst, nil
}

// appendHeader writes {"alg":"HS256","kid":"hkdfv1-YYYYMMDD"}: exactly two
// members, no "typ" (golang-jwt would add one).
func appendHeader(dst []byte, date uint32) []byte {
	dst = append(dst, `{"alg":"HS256","kid":"`+KeyIDPrefix...)
	dst = appendDate(dst, date)
	return append(dst, `"}`...)
}

// appendClaims writes the claims with keys in sorted order, compact:
// exp, iat, iss, nonce, [sinch:rtc:instance:exp], sub.
func appendClaims(dst []byte, appKey, userID string, nonce []byte, iat, exp, instExp int64) []byte {
	dst = append(dst, `{"exp":`...)
	dst = strconv.AppendInt(dst, exp, 10)
	dst = append(dst, `,"iat":`...)
	dst = strconv.AppendInt(dst, iat, 10)
	dst = append(dst, `,"iss":"`+issPrefix...)
	dst = append(dst, appKey...)
	dst = append(dst, `","nonce":"`...)
	dst = append(dst, nonce...)
	dst = append(dst, '"')
	if instExp != 0 {
		dst = append(dst, `,"sinch:rtc:instance:exp":`...)
		dst = strconv.AppendInt(dst, instExp, 10)
	}
	dst = append(dst, `,"sub":"`+issPrefix...)
	dst = append(dst, appKey...)
	dst = append(dst, subInfix...)
	dst = append(dst, userID...)
	return append(dst, `"}`...)
}

// utcDate returns the UTC calendar date of a Unix time as YYYYMMDD.
func utcDate(unix int64) uint32 {
	y, m, d := time.Unix(unix, 0).UTC().Date()
	return uint32(y*10000 + int(m)*100 + d)
}

// appendDate writes YYYYMMDD with leading zeros.
func appendDate(dst []byte, date uint32) []byte {
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = byte('0' + date%10)
		date /= 10
	}
	return append(dst, b[:]...)
}
