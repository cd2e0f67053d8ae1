package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults and limits of a Provider that the configuration applies too
// (config validates with these, so the two cannot drift apart).
const (
	// DefaultLeeway is the clock skew allowed when Provider.Leeway is 0.
	DefaultLeeway = 60 * time.Second
	// DefaultUserIDClaim is the user id claim when Provider.UserIDClaim is "".
	DefaultUserIDClaim = "sub"
	// MinHS256SecretBytes is RFC 7518 §3.2: a key at least as long as the hash.
	MinHS256SecretBytes = 32
)

// Defaults and limits of the Verifier.
const (
	defaultRefreshInterval     = 10 * time.Minute
	defaultUnknownKIDRateLimit = 15 * time.Second
	defaultMaxTokenAge         = 24 * time.Hour

	// maxTokenLen bounds the work an unauthenticated caller can cause.
	// Real ID tokens are 1–4 KiB; some with group claims reach ~8 KiB.
	maxTokenLen = 16 << 10
)

// jwksMethods are the algorithms accepted from providers with public keys.
// Never "none" and never HS*: with HS* a public key could be used as an HMAC
// secret (algorithm confusion).
func jwksMethods() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
}

// Provider is one trusted identity provider: whose tokens are accepted, and
// what their users may do.
type Provider struct {
	// Issuer is the "iss" tokens must carry. Unless JWKSURL or HS256Secret is
	// set, it is also the OpenID Connect discovery base: the JWK Set is found
	// through Issuer (less one trailing "/") + "/.well-known/openid-configuration".
	Issuer string
	// JWKSURL, when set, is the provider's JWK Set URL and discovery is
	// skipped.
	JWKSURL string
	// HS256Secret, when non-nil, makes this a shared-secret provider: tokens
	// are HS256 only and are verified with this secret, which must be at
	// least 32 bytes (RFC 7518 §3.2); no JWK Set is used.
	HS256Secret []byte
	// Audience is the "aud" tokens must contain.
	Audience string
	// UserIDClaim names the string claim holding the user id; default "sub".
	UserIDClaim string
	// Applications are the application keys this provider's users may use;
	// "*" allows all.
	Applications []string
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means the
	// default, 60 s.
	Leeway time.Duration
	// MaxTokenAge is the oldest a token may be, counted from its "iat":
	// a token is refused once iat + MaxTokenAge (+ Leeway) has passed,
	// whatever its "exp" says, and a token without iat is refused. Zero
	// means the default, 24 hours.
	MaxTokenAge time.Duration
	// UnknownKIDRefreshInterval is the least time between two JWK Set
	// fetches caused by tokens with an unknown key id (a key rotation
	// becomes usable at most this long after a junk token spent the fetch).
	// Zero means VerifierOptions.UnknownKIDRateLimit.
	UnknownKIDRefreshInterval time.Duration

	// DiscoveryURL, when set, is where the OpenID Connect discovery document
	// is fetched instead of Issuer's well-known location (Azure AD B2C's
	// "...?p=<policy>", Entra ID's "/common/v2.0/..."). The document must
	// still name Issuer.
	DiscoveryURL string
	// IssuerAliases are other spellings of Issuer that tokens may carry
	// (Google: "accounts.google.com" next to "https://accounts.google.com").
	IssuerAliases []string
	// AudienceClaim names the claim that must equal Audience instead of
	// "aud" (Cognito access tokens: "client_id"). Default "aud", which may
	// also be an array containing Audience.
	AudienceClaim string
	// RequiredClaims are string claims tokens must carry with exactly these
	// values (Cognito: token_use: access).
	RequiredClaims map[string]string
	// UserIDTransform maps the user id claim to the Sinch user id: one of
	// TransformNone (default), TransformBase64URL, TransformSHA256.
	UserIDTransform string
}

// Issuer templates and user id transforms.
const (
	// TenantIDPlaceholder in an Issuer makes it a template (Microsoft Entra
	// ID multi-tenant): a token's "iss" must equal the template with the
	// placeholder replaced by the token's own "tid" claim.
	TenantIDPlaceholder = "{tenantid}"

	// TransformNone uses the claim as the Sinch user id; a claim outside
	// Sinch's alphabet is refused with 400 by the API.
	TransformNone = "none"
	// TransformBase64URL encodes the claim's bytes as unpadded base64url:
	// reversible, any claim up to 191 bytes fits Sinch's 255.
	TransformBase64URL = "base64url"
	// TransformSHA256 is the lowercase hex SHA-256 of the claim: 64
	// characters for a claim of any length, not reversible.
	TransformSHA256 = "sha256"
)

// TransformUserID applies a user id transform (one of the Transform
// constants; "" is TransformNone) to a user id claim.
func TransformUserID(transform, claim string) (string, error) {
	switch transform {
	case "", TransformNone:
		return claim, nil
	case TransformBase64URL:
		return base64.RawURLEncoding.EncodeToString([]byte(claim)), nil
	case TransformSHA256:
		sum := sha256.Sum256([]byte(claim))
		return hex.EncodeToString(sum[:]), nil
	}
	return "", fmt.Errorf("unknown user id transform %q (want %s, %s or %s)", transform, TransformNone, TransformBase64URL, TransformSHA256)
}

// VerifierOptions are the dependencies and tuning of a Verifier. The zero
// value is usable.
type VerifierOptions struct {
	// HTTPClient fetches discovery documents and JWK Sets. Default: a
	// client of the Verifier's own. Requests have their own timeouts.
	HTTPClient *http.Client
	// Now is the clock tokens are checked against; default time.Now.
	Now func() time.Time
	// RefreshInterval is how often JWK Sets are fetched in the background;
	// default 10 minutes.
	RefreshInterval time.Duration
	// UnknownKIDRateLimit is the least time between two JWK Set fetches
	// caused by tokens with an unknown key id, per provider, for providers
	// that do not set their own; default 15 seconds. Such a fetch happens at
	// once when allowed, else the token is refused at once: a request never
	// waits for the rate limiter. Only a token that passed every check but
	// the signature (issuer, algorithm, signature size, audience, time
	// claims) may cause one.
	UnknownKIDRateLimit time.Duration
	// OnRefresh, when set, is called after every attempt to load a
	// provider's keys (discovery, first fetch, background or unknown-kid
	// refresh) with the provider's issuer and "ok" or "error". It is called
	// from several goroutines.
	OnRefresh func(provider, result string)
	// Logger receives key-loading events; default: discard.
	Logger *slog.Logger
	// TokenCacheSize is how many verified identity tokens are remembered,
	// by their SHA-256, so that presenting one again skips the signature
	// check until it expires (see tokenCache for the trade-off). Zero means
	// the default, 10,000; negative turns the cache off.
	TokenCacheSize int
}

// Verifier checks identity tokens from a fixed set of providers. It is safe
// for concurrent use. Close it to stop its background work.
type Verifier struct {
	byIssuer  map[string]*provider // by issuer and alias
	templates []*provider          // issuers with TenantIDPlaceholder
	providers []*provider          // in configuration order, for Ready

	client          *http.Client
	ownClient       bool
	logger          *slog.Logger
	onRefresh       func(provider, result string)
	refreshInterval time.Duration
	unknownKIDRate  time.Duration
	now             func() time.Time
	tokens          *tokenCache // nil: no cache

	ctx    context.Context // ends background work
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// provider is a validated Provider ready for use.
type provider struct {
	issuer       string
	issuers      []string // issuer and its aliases
	jwksURL      string   // empty: discover
	discoveryURL string
	audience     string
	audClaim     string // "" when the parser checks "aud"
	required     map[string]string
	transform    string
	userIDClaim  string
	apps         []string
	leeway       time.Duration
	maxAge       time.Duration
	kidInterval  time.Duration // least time between unknown-kid fetches
	methods      []string
	parser       *jwt.Parser
	validator    *jwt.Validator // the parser's claim checks, run before any key lookup
	now          func() time.Time
	hmacKeyfunc  jwt.Keyfunc // shared-secret providers only

	keys atomic.Pointer[remoteKeys] // JWK Set providers: nil until loaded
	// misconfigured is set when loading keys failed for a reason retrying
	// cannot fix (see configError); loading stops until a new Verifier.
	misconfigured atomic.Pointer[error]
}

// NewVerifier validates providers and starts loading their keys. It fails
// only for invalid configuration: a provider that cannot be reached is
// retried in the background with backoff until it answers, and Ready reports
// it meanwhile. NewVerifier waits for the first attempt of each provider
// (bounded by the discovery and JWK Set timeouts, 5 s each), so healthy
// providers are ready when it returns. ctx bounds the background work, as
// does Close.
func NewVerifier(ctx context.Context, providers []Provider, opts VerifierOptions) (*Verifier, error) {
	if opts.RefreshInterval < 0 || opts.UnknownKIDRateLimit < 0 {
		return nil, errors.New("auth: negative refresh interval or unknown-kid rate limit")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	v := &Verifier{
		byIssuer:        make(map[string]*provider, len(providers)),
		client:          opts.HTTPClient,
		logger:          opts.Logger,
		onRefresh:       opts.OnRefresh,
		refreshInterval: cmp.Or(opts.RefreshInterval, defaultRefreshInterval),
		unknownKIDRate:  cmp.Or(opts.UnknownKIDRateLimit, defaultUnknownKIDRateLimit),
		now:             now,
	}
	if opts.TokenCacheSize >= 0 {
		v.tokens = newTokenCache(cmp.Or(opts.TokenCacheSize, defaultTokenCacheSize))
	}
	if v.client == nil {
		// A backstop only: every request also has a context deadline.
		v.client = &http.Client{Timeout: 30 * time.Second}
		v.ownClient = true
	}
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	for i, cfg := range providers {
		p, err := newProvider(cfg, now, v.unknownKIDRate)
		if err != nil {
			return nil, fmt.Errorf("auth: identity provider #%d (%q): %w", i+1, cfg.Issuer, err)
		}
		if strings.Contains(p.issuer, TenantIDPlaceholder) {
			v.templates = append(v.templates, p)
		}
		for _, iss := range p.issuers {
			if v.byIssuer[iss] != nil {
				return nil, fmt.Errorf("auth: identity provider #%d: issuer %q configured twice", i+1, iss)
			}
			v.byIssuer[iss] = p
		}
		v.providers = append(v.providers, p)
	}

	v.ctx, v.cancel = context.WithCancel(ctx)
	var first sync.WaitGroup
	for _, p := range v.providers {
		if p.hmacKeyfunc != nil {
			continue
		}
		first.Add(1)
		v.wg.Go(func() { v.loadKeys(p, first.Done) })
	}
	first.Wait()
	return v, nil
}

func newProvider(cfg Provider, now func() time.Time, kidInterval time.Duration) (*provider, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("audience is required")
	}
	if !validApplications(cfg.Applications) {
		return nil, errors.New(`applications must list at least one non-empty key (or "*")`)
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("leeway must not be negative")
	}
	if cfg.MaxTokenAge < 0 || cfg.UnknownKIDRefreshInterval < 0 {
		return nil, errors.New("max token age and unknown-kid refresh interval must not be negative")
	}
	if _, err := TransformUserID(cfg.UserIDTransform, ""); err != nil {
		return nil, err
	}
	if n := strings.Count(cfg.Issuer, TenantIDPlaceholder); n > 1 || n == 1 && len(cfg.IssuerAliases) > 0 {
		return nil, fmt.Errorf("an issuer template has one %s and no aliases", TenantIDPlaceholder)
	} else if n == 1 && cfg.JWKSURL == "" && cfg.DiscoveryURL == "" {
		return nil, fmt.Errorf("an issuer template cannot be a discovery URL: set a JWKS URL or a discovery URL")
	}
	p := &provider{
		issuer:       cfg.Issuer,
		issuers:      append([]string{cfg.Issuer}, cfg.IssuerAliases...),
		jwksURL:      cfg.JWKSURL,
		discoveryURL: cfg.DiscoveryURL,
		audience:     cfg.Audience,
		transform:    cfg.UserIDTransform,
		userIDClaim:  cmp.Or(cfg.UserIDClaim, DefaultUserIDClaim),
		apps:         cloneApplications(cfg.Applications),
		leeway:       cmp.Or(cfg.Leeway, DefaultLeeway),
		maxAge:       cmp.Or(cfg.MaxTokenAge, defaultMaxTokenAge),
		kidInterval:  cmp.Or(cfg.UnknownKIDRefreshInterval, kidInterval),
		methods:      jwksMethods(),
	}
	if cfg.AudienceClaim != "" && cfg.AudienceClaim != "aud" {
		p.audClaim = cfg.AudienceClaim
	}
	if len(cfg.RequiredClaims) > 0 {
		p.required = make(map[string]string, len(cfg.RequiredClaims))
		for k, val := range cfg.RequiredClaims {
			p.required[k] = val
		}
	}
	if cfg.DiscoveryURL != "" {
		if cfg.JWKSURL != "" || cfg.HS256Secret != nil {
			return nil, errors.New("a discovery URL is for providers without a JWKS URL or HS256 secret")
		}
		if err := checkFetchURL(cfg.DiscoveryURL); err != nil {
			return nil, fmt.Errorf("discovery URL: %w", err)
		}
	}
	switch {
	case cfg.HS256Secret != nil:
		if cfg.JWKSURL != "" {
			return nil, errors.New("set either an HS256 secret or a JWKS URL, not both")
		}
		if len(cfg.HS256Secret) < MinHS256SecretBytes {
			return nil, fmt.Errorf("HS256 secret must be at least %d bytes", MinHS256SecretBytes)
		}
		secret := slices.Clone(cfg.HS256Secret)
		p.methods = []string{"HS256"}
		p.hmacKeyfunc = func(*jwt.Token) (any, error) { return secret, nil }
	case cfg.JWKSURL != "":
		if err := checkFetchURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("JWKS URL: %w", err)
		}
	case cfg.DiscoveryURL != "":
	default:
		if err := checkHTTPURL(cfg.Issuer); err != nil {
			return nil, fmt.Errorf("issuer is used for OpenID Connect discovery (no JWKS URL or HS256 secret set): %w", err)
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(p.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(p.leeway),
		jwt.WithTimeFunc(now),
	}
	if len(p.issuers) == 1 && !strings.Contains(p.issuer, TenantIDPlaceholder) {
		opts = append(opts, jwt.WithIssuer(p.issuer))
	} // else checkClaims checks the issuer
	if p.audClaim == "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	p.parser = jwt.NewParser(opts...)
	p.validator = jwt.NewValidator(opts...)
	p.now = now
	return p, nil
}

// lookup finds the provider of a token's (unverified) issuer: by exact
// issuer or alias, else by an issuer template and the token's tid.
func (v *Verifier) lookup(u unverified) *provider {
	if p := v.byIssuer[u.iss]; p != nil {
		return p
	}
	for _, p := range v.templates {
		if u.tid != "" && u.iss == expandTenant(p.issuer, u.tid) {
			return p
		}
	}
	return nil
}

func expandTenant(template, tid string) string {
	return strings.Replace(template, TenantIDPlaceholder, tid, 1)
}

// checkClaims does the checks the parser's options cannot express: issuer
// aliases and templates, another audience claim, required claims. The
// signature is already verified.
func (p *provider) checkClaims(claims jwt.MapClaims) *TokenError {
	iss, _ := claims["iss"].(string)
	if strings.Contains(p.issuer, TenantIDPlaceholder) {
		tid, _ := claims["tid"].(string)
		if tid == "" || strings.Contains(tid, "/") || iss != expandTenant(p.issuer, tid) {
			return tokenError(ReasonBadIssuer, "the token's issuer does not match its tenant (tid)", nil)
		}
	} else if !slices.Contains(p.issuers, iss) {
		return tokenError(ReasonBadIssuer, "the token's issuer is not accepted", nil)
	}
	if p.audClaim != "" {
		if got, _ := claims[p.audClaim].(string); got != p.audience {
			return tokenError(ReasonBadAudience, "the token is not meant for this service (audience)", nil)
		}
	}
	for k, want := range p.required {
		if got, _ := claims[k].(string); got != want {
			return tokenError(ReasonBadClaim, "the token lacks a claim value this service requires", nil)
		}
	}
	return nil
}

// Verify checks rawToken (the bearer token, without "Bearer ") and returns
// the user it identifies. Every error is a *TokenError. ctx bounds the one
// JWK Set fetch an unknown key id may cause.
//
// A token that verified before and is still within its time claims is
// answered from the token cache (see VerifierOptions.TokenCacheSize)
// without checking its signature again.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (Principal, error) {
	if v.tokens == nil || rawToken == "" || len(rawToken) > maxTokenLen {
		p, _, err := v.verify(ctx, rawToken)
		return p, err
	}
	key := tokenKey(rawToken)
	if p, ok := v.tokens.get(key, v.now()); ok {
		return p, nil
	}
	p, entry, err := v.verify(ctx, rawToken)
	if err != nil {
		return Principal{}, err // refusals are never cached
	}
	v.tokens.put(key, entry, v.now())
	return p, nil
}

// verify checks rawToken fully, without the cache. On success it also
// returns the token's cache entry when the Verifier has a cache.
func (v *Verifier) verify(ctx context.Context, rawToken string) (Principal, cachedToken, error) {
	u, terr := peek(rawToken)
	if terr != nil {
		return Principal{}, cachedToken{}, terr
	}
	p := v.lookup(u)
	if p == nil {
		return Principal{}, cachedToken{}, tokenError(ReasonUnknownIssuer, "the token's issuer is not trusted", nil)
	}
	// WithValidMethods checks this too; checking first gives a precise reason.
	if !slices.Contains(p.methods, u.alg) {
		return Principal{}, cachedToken{}, tokenError(ReasonBadAlgorithm, "the token's signing algorithm is not accepted", nil)
	}
	keyFunc := p.hmacKeyfunc
	if keyFunc == nil {
		rk := p.keys.Load()
		if rk == nil {
			return Principal{}, cachedToken{}, classify(errProviderUnavailable, nil)
		}
		keyFunc = rk.kf.KeyfuncCtx(ctx)
	}
	// The claims and the signature's size are checked before any key is
	// looked up, so that a token which could not be this provider's (or is
	// expired, too old, for another audience) never spends the provider's
	// unknown-kid fetch.
	var early *TokenError
	checked := func(tok *jwt.Token) (any, error) {
		if early = p.precheck(tok, u.alg); early != nil {
			return nil, early
		}
		return keyFunc(tok)
	}
	claims := jwt.MapClaims{}
	if _, err := p.parser.ParseWithClaims(rawToken, claims, checked); err != nil {
		if early != nil {
			return Principal{}, cachedToken{}, early
		}
		te := classify(err, claims)
		if !u.hasKID && te.Reason == ReasonBadAlgorithm {
			// Without a kid, keyfunc offers every key of the set, each is
			// tried with the token's algorithm, and the last failure is
			// reported: usually a key of another type, not a confusion.
			te = tokenError(ReasonBadSignature, "the token's signature is invalid", err)
		}
		return Principal{}, cachedToken{}, te
	}
	claim, _ := claims[p.userIDClaim].(string)
	if claim == "" {
		return Principal{}, cachedToken{}, tokenError(ReasonMissingUserClaim, "the token has no user id claim", nil)
	}
	userID, _ := TransformUserID(p.transform, claim) // checked in newProvider
	principal := Principal{Kind: KindUser, Name: p.issuer, UserID: userID, Applications: p.apps}
	var entry cachedToken
	if v.tokens != nil {
		entry = newCachedToken(principal, claims, p.leeway, p.maxAge)
	}
	return principal, entry, nil
}

// precheck runs, before the key lookup, the checks that need no key: the
// claims (as the parser would check them after the signature, and those it
// cannot express: issuer aliases and templates, another audience claim,
// required claims), the token's age, and a signature size the algorithm can
// produce.
func (p *provider) precheck(tok *jwt.Token, alg string) *TokenError {
	claims, _ := tok.Claims.(jwt.MapClaims)
	if err := p.validator.Validate(claims); err != nil {
		return classify(err, claims)
	}
	if te := p.checkClaims(claims); te != nil {
		return te
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return tokenError(ReasonMalformed, "the token has no issue time (iat)", err)
	}
	if p.now().Sub(iat.Time) > p.maxAge+p.leeway {
		return tokenError(ReasonTooOld, "the token is older than this service accepts (iat)", nil)
	}
	if !signatureSizeFits(alg, len(tok.Signature)) {
		return tokenError(ReasonBadSignature, "the token's signature is invalid", nil)
	}
	return nil
}

// signatureSizeFits reports whether a signature of n bytes can come from alg:
// fixed sizes for ECDSA and EdDSA (RFC 7518 §3.4, RFC 8037), at least a
// 2048-bit modulus for RSA, 32 bytes for HS256.
func signatureSizeFits(alg string, n int) bool {
	switch alg {
	case "ES256", "EdDSA":
		return n == 64
	case "ES384":
		return n == 96
	case "HS256":
		return n == 32
	default: // RS*, PS*
		return n >= 256 && n <= 1024
	}
}

// unverified is what Verify reads from a token before verifying it.
type unverified struct {
	alg, iss string
	tid      string // Entra ID's tenant id, for issuer templates
	hasKID   bool
}

// peek reads the header's alg and kid and the payload's iss without
// verifying anything, to choose the provider whose parser then does the real
// checks.
func peek(raw string) (unverified, *TokenError) {
	if raw == "" {
		return unverified{}, tokenError(ReasonMalformed, "no token was presented", nil)
	}
	if len(raw) > maxTokenLen {
		return unverified{}, tokenError(ReasonMalformed, "the token is too large", nil)
	}
	malformed := func(err error) (unverified, *TokenError) {
		return unverified{}, tokenError(ReasonMalformed, "the token is not a well-formed JWT", err)
	}
	h, rest, ok1 := strings.Cut(raw, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return malformed(nil)
	}
	var header struct {
		Alg  string          `json:"alg"`
		KID  json.RawMessage `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := decodeSegment(h, &header); err != nil {
		return malformed(err)
	}
	if header.KID != nil && header.KID[0] != '"' {
		return malformed(nil) // kid must be a string
	}
	if header.Crit != nil {
		// RFC 7515 §4.1.11: extensions we do not implement must be refused.
		return unverified{}, tokenError(ReasonMalformed, "the token has critical header parameters this service does not support", nil)
	}
	var body struct {
		Iss any `json:"iss"`
		Tid any `json:"tid"`
	}
	if err := decodeSegment(payload, &body); err != nil {
		return malformed(err)
	}
	if body.Iss == nil {
		return unverified{}, tokenError(ReasonUnknownIssuer, "the token has no issuer", nil)
	}
	iss, ok := body.Iss.(string)
	if !ok {
		return unverified{}, tokenError(ReasonMalformed, "the token's issuer is not a string", nil)
	}
	tid, _ := body.Tid.(string)
	return unverified{alg: header.Alg, iss: iss, tid: tid, hasKID: header.KID != nil}, nil
}

// decodeSegment decodes one JWS segment the way jwt.Parser does by default.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Ready returns nil when every provider has keys loaded, else an error
// naming (by issuer) the providers that have none, and why for those that
// are misconfigured (their keys are not retried).
func (v *Verifier) Ready() error {
	var notReady, misconfigured []string
	for _, p := range v.providers {
		if p.hmacKeyfunc != nil {
			continue
		}
		if errp := p.misconfigured.Load(); errp != nil {
			misconfigured = append(misconfigured, fmt.Sprintf("%s (%v)", p.issuer, *errp))
		} else if rk := p.keys.Load(); rk == nil || rk.cache.count() == 0 {
			notReady = append(notReady, p.issuer)
		}
	}
	var errs []error
	if len(misconfigured) > 0 {
		errs = append(errs, fmt.Errorf("auth: identity provider(s) misconfigured, not retried until the configuration changes: %s", strings.Join(misconfigured, "; ")))
	}
	if len(notReady) > 0 {
		errs = append(errs, fmt.Errorf("auth: no keys loaded yet for identity provider(s) %s", strings.Join(notReady, ", ")))
	}
	return errors.Join(errs...)
}

// ForgetTokens empties the token cache: every identity token presented from
// now on has its signature checked again, against the keys loaded now. The
// serve command builds a new Verifier (with an empty cache) when a reload
// changes identity_providers; this is for dropping the cache without one.
func (v *Verifier) ForgetTokens() {
	if v.tokens != nil {
		v.tokens.clear()
	}
}

// Close stops background key loading and refreshing. Verify keeps working
// with the keys already loaded.
func (v *Verifier) Close() {
	v.cancel()
	v.wg.Wait()
	for _, p := range v.providers {
		if rk := p.keys.Load(); rk != nil {
			rk.stop()
		}
	}
	if v.ownClient {
		v.client.CloseIdleConnections()
	}
}
