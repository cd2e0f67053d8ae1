package httpapi

// The 200 bodies of the credential endpoints, for the external tests to
// decode what the server wrote. Their JSON names are the contract's: the
// contract test checks every response against openapi.yaml, which allows no
// other property and requires the rest.
type (
	TokenResponse     = tokenResponse
	SignatureResponse = signatureResponse
)
