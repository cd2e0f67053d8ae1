package auth

import (
	"errors"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Reasons a token is refused: short, stable labels for TokenError.Reason,
// suitable as metric label values.
const (
	ReasonMalformed           = "malformed"
	ReasonUnknownIssuer       = "unknown_issuer"
	ReasonBadSignature        = "bad_signature"
	ReasonExpired             = "expired"
	ReasonNotYetValid         = "not_yet_valid"
	ReasonIssuedInFuture      = "issued_in_future"
	ReasonTooOld              = "too_old"
	ReasonBadIssuer           = "bad_issuer"
	ReasonBadAudience         = "bad_audience"
	ReasonBadClaim            = "bad_claim"
	ReasonUnknownKID          = "unknown_kid"
	ReasonMissingUserClaim    = "missing_user_claim"
	ReasonBadAlgorithm        = "bad_algorithm"
	ReasonProviderUnavailable = "provider_unavailable"
)

// TokenError is why Verifier.Verify refused a token. Reason and Description
// are fixed texts chosen by this package: they never contain the token, key
// material, secrets, or anything else taken from the request, so Description
// can go into a WWW-Authenticate error_description as is.
type TokenError struct {
	// Reason is a short machine label, one of the Reason constants.
	Reason string
	// Description is a human-readable explanation safe to send to the caller.
	Description string

	// cause is the underlying library error, for errors.Is and logs. Its text
	// may contain request data (such as a kid), so it is not in Error.
	cause error
}

// Error returns "auth: invalid token (reason): description".
func (e *TokenError) Error() string {
	return "auth: invalid token (" + e.Reason + "): " + e.Description
}

// Unwrap returns the underlying cause, if any, so that for example
// errors.Is(err, jwt.ErrTokenExpired) works.
func (e *TokenError) Unwrap() error { return e.cause }

func tokenError(reason, description string, cause error) *TokenError {
	return &TokenError{Reason: reason, Description: description, cause: cause}
}

// errProviderUnavailable is the keyfunc error while a provider has no keys.
var errProviderUnavailable = errors.New("identity provider keys not loaded")

// classify maps an error from jwt.Parser.ParseWithClaims to a TokenError.
// claims is what the parser decoded, to tell a missing claim from a wrong one.
func classify(err error, claims jwt.MapClaims) *TokenError {
	switch {
	case errors.Is(err, errProviderUnavailable):
		return tokenError(ReasonProviderUnavailable, "the identity provider's keys are not available yet", err)
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return tokenError(ReasonUnknownKID, "the token's signing key is not known to the identity provider", err)
	case errors.Is(err, jwt.ErrInvalidKeyType), errors.Is(err, keyfunc.ErrKeyfunc):
		// The kid names a key of another type or algorithm than the token's
		// alg: never let one kind of key verify another kind of signature.
		return tokenError(ReasonBadAlgorithm, "the token's algorithm does not match its signing key", err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return tokenError(ReasonMalformed, "the token is not a well-formed JWT", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return tokenError(ReasonBadSignature, "the token's signature is invalid", err)
	}
	// Claims validation: the signature was good. The validator reports every
	// failed check; report the most fundamental one.
	switch {
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return tokenError(ReasonBadIssuer, "the token's issuer is not accepted", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return tokenError(ReasonBadAudience, "the token is not meant for this service (audience)", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && claims["iss"] == nil:
		// Possible only when the issuer used to pick the provider was spelled
		// differently (say "ISS") from the claim the validator reads.
		return tokenError(ReasonBadIssuer, "the token has no issuer", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && audienceMissing(claims):
		return tokenError(ReasonBadAudience, "the token has no audience", err)
	case errors.Is(err, jwt.ErrInvalidType):
		return tokenError(ReasonMalformed, "a registered claim of the token has the wrong type", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The audience is present, so what is missing is the expiry.
		return tokenError(ReasonMalformed, "the token has no expiry (exp)", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return tokenError(ReasonExpired, "the token has expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return tokenError(ReasonNotYetValid, "the token is not valid yet (nbf)", err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return tokenError(ReasonIssuedInFuture, "the token is issued in the future (iat)", err)
	}
	return tokenError(ReasonMalformed, "the token could not be verified", err)
}

// audienceMissing mirrors the validator's test for an absent audience.
func audienceMissing(claims jwt.MapClaims) bool {
	aud, err := claims.GetAudience()
	return err == nil && (len(aud) == 0 || len(aud) == 1 && aud[0] == "")
}
