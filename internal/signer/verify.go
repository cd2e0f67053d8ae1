package signer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is matched (errors.Is) by every verification failure.
var ErrInvalidToken = errors.New("invalid registration token")

// Verified is a registration JWT that passed Verify: its decoded header and
// claims, as they were in the token.
type Verified struct {
	Header         map[string]any
	Claims         map[string]any
	ApplicationKey string
	UserID         string
}

// VerifyParams are the inputs of Verify.
type VerifyParams struct {
	ApplicationKey string   // optional: required iss/sub application
	Secrets        []Secret // any of them may have signed the token
	Now            time.Time
}

// Verify checks a registration JWT the way Sinch would: header exactly
// {"alg":"HS256","kid":"hkdfv1-YYYYMMDD"}, the signature under the key derived
// from the kid's date with one of the secrets, iss and sub well-formed (and
// for ApplicationKey when given), the kid's date equal to the UTC date of iat,
// and exp present and not passed.
func Verify(raw string, p VerifyParams) (*Verified, error) {
	if len(p.Secrets) == 0 {
		return nil, fmt.Errorf("%w: no secret to verify with", ErrInvalidToken)
	}
	if err := checkHeader(raw); err != nil {
		return nil, err
	}
	var lastErr error
	for _, secret := range p.Secrets {
		v, err := verifyWith(raw, secret, p)
		if err == nil {
			return v, nil
		}
		lastErr = err
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			break // only a signature mismatch depends on which secret we try
		}
	}
	return nil, fmt.Errorf("%w: %v", ErrInvalidToken, lastErr)
}

func verifyWith(raw string, secret Secret, p VerifyParams) (*Verified, error) {
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return p.Now }),
	)
	tok, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		date, err := kidDate(t.Header["kid"])
		if err != nil {
			return nil, err
		}
		return secret.verifyKey(date), nil
	})
	if err != nil {
		return nil, err
	}
	date, _ := kidDate(tok.Header["kid"])
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return nil, errors.New("iat missing")
	}
	if utcDate(iat.Unix()) != date {
		return nil, fmt.Errorf("kid date %d is not the UTC date of iat", date)
	}
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	app, ok := strings.CutPrefix(iss, issPrefix)
	if !ok || !ValidAppKey(app) {
		return nil, fmt.Errorf("iss %q is not //rtc.sinch.com/applications/{key}", iss)
	}
	if p.ApplicationKey != "" && app != p.ApplicationKey {
		return nil, fmt.Errorf("iss names application %q, want %q", app, p.ApplicationKey)
	}
	user, ok := strings.CutPrefix(sub, iss+subInfix)
	if !ok || !ValidUserID(user) {
		return nil, fmt.Errorf("sub %q is not %s/users/{userId}", sub, iss)
	}
	if n, _ := claims["nonce"].(string); n == "" {
		return nil, errors.New("nonce missing")
	}
	return &Verified{Header: tok.Header, Claims: claims, ApplicationKey: app, UserID: user}, nil
}

// checkHeader insists on exactly the two members Sinch's format has; golang-jwt
// alone would accept extra ones such as "typ".
func checkHeader(raw string) error {
	seg, _, ok := strings.Cut(raw, ".")
	if !ok {
		return fmt.Errorf("%w: not a JWT", ErrInvalidToken)
	}
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("%w: header is not base64url", ErrInvalidToken)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("%w: header is not a JSON object", ErrInvalidToken)
	}
	if len(h) != 2 || h["alg"] != "HS256" || h["kid"] == nil {
		return fmt.Errorf("%w: header must be exactly {\"alg\":\"HS256\",\"kid\":...}", ErrInvalidToken)
	}
	return nil
}

func kidDate(v any) (uint32, error) {
	kid, _ := v.(string)
	ds, ok := strings.CutPrefix(kid, KeyIDPrefix)
	if !ok || len(ds) != 8 {
		return 0, fmt.Errorf("kid %q is not hkdfv1-YYYYMMDD", kid)
	}
	n, err := strconv.ParseUint(ds, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("kid %q is not hkdfv1-YYYYMMDD", kid)
	}
	if _, err := time.Parse("20060102", ds); err != nil {
		return 0, fmt.Errorf("kid %q has no valid date", kid)
	}
	return uint32(n), nil
}
