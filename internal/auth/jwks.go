package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// Timeouts and backoff of key loading.
const (
	discoveryTimeout = 5 * time.Second
	jwksTimeout      = 5 * time.Second
	// unknownKIDFetchTimeout bounds the one JWK Set fetch a request with an
	// unknown kid may trigger: the request waits for that fetch, never for
	// the rate limiter.
	unknownKIDFetchTimeout = time.Second
	retryMinDelay          = 250 * time.Millisecond
	retryMaxDelay          = 30 * time.Second
	maxDiscoveryBytes      = 1 << 20
)

// remoteKeys is a provider's loaded JWK Set and the keyfunc reading it.
type remoteKeys struct {
	cache *cacheStore
	kf    keyfunc.Keyfunc
	stop  context.CancelFunc // ends the background refresh
}

// loadKeys resolves and fetches p's JWK Set, retrying with exponential
// backoff until it succeeds or the Verifier closes. firstDone is called once,
// after the first attempt.
func (v *Verifier) loadKeys(p *provider, firstDone func()) {
	firstDone = sync.OnceFunc(firstDone)
	delay := retryMinDelay
	for attempt := 1; ; attempt++ {
		rk, jwksURL, err := v.fetchKeys(p)
		var ce *configError
		if errors.As(err, &ce) {
			// Retrying cannot fix the configuration: say so once, clearly,
			// and leave it to Ready until a reload builds a new Verifier.
			p.misconfigured.Store(&err)
			v.report(p.issuer, "error")
			v.logger.Error("identity provider misconfigured; its keys are not loaded and not retried until the configuration changes",
				"issuer", p.issuer, "error", err)
			firstDone()
			return
		}
		if err == nil {
			p.keys.Store(rk)
			rk.cache.live.Store(true)
			v.report(p.issuer, "ok")
			v.logger.Info("identity provider keys loaded",
				"issuer", p.issuer, "jwks_url", jwksURL, "keys", rk.cache.count(), "attempt", attempt)
			firstDone()
			return
		}
		if v.ctx.Err() != nil {
			firstDone()
			return
		}
		v.report(p.issuer, "error")
		v.logger.Warn("identity provider keys not loaded; retrying",
			"issuer", p.issuer, "error", err, "attempt", attempt, "retry_in", delay)
		firstDone()
		t := time.NewTimer(delay)
		select {
		case <-v.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, retryMaxDelay)
	}
}

// fetchKeys makes one attempt at loading p's keys: discovery when needed,
// then the first JWK Set fetch, which must yield at least one usable key. On
// success jwkset keeps refreshing the set in the background until the
// Verifier closes, and keeps the last good set when a refresh fails.
func (v *Verifier) fetchKeys(p *provider) (*remoteKeys, string, error) {
	jwksURL := p.jwksURL
	if jwksURL == "" {
		var err error
		if jwksURL, err = v.discover(p.issuer, p.discoveryDoc()); err != nil {
			return nil, "", err
		}
	}
	cache := &cacheStore{MemoryJWKSet: jwkset.NewMemoryStorage(), onRemoved: v.ForgetTokens}
	cache.onReplace = func(n int) {
		if n == 0 {
			v.report(p.issuer, "error")
			v.logger.Warn("identity provider JWK Set has no usable keys", "issuer", p.issuer, "jwks_url", jwksURL)
			return
		}
		v.report(p.issuer, "ok")
	}
	// Each attempt has its own context so that a failed attempt's refresh
	// goroutine ends with it.
	ctx, cancel := context.WithCancel(v.ctx)
	st, err := jwkset.NewStorageFromHTTP(jwksURL, jwkset.HTTPClientStorageOptions{
		Client:          v.client,
		Ctx:             ctx,
		HTTPTimeout:     jwksTimeout,
		RefreshInterval: v.refreshInterval,
		RefreshErrorHandler: func(_ context.Context, err error) {
			if v.ctx.Err() != nil {
				return // closing
			}
			v.report(p.issuer, "error")
			v.logger.Warn("identity provider JWK Set refresh failed; keeping cached keys",
				"issuer", p.issuer, "jwks_url", jwksURL, "error", err)
		},
		Storage: cache,
		// NoErrorReturnFirstHTTPReq is false: a failed first fetch is an
		// error here, and loadKeys retries it sooner than RefreshInterval.
	})
	if err != nil {
		cancel()
		return nil, jwksURL, fmt.Errorf("JWK Set %s: %w", jwksURL, err)
	}
	if cache.count() == 0 {
		cancel()
		return nil, jwksURL, fmt.Errorf("JWK Set %s has no usable keys", jwksURL)
	}
	// jwkset refreshes on an unknown kid only through an HTTP client storage
	// whose limiter it waits on, with one deadline for the wait and the
	// fetch. Give it an unlimited limiter and rate-limit in front of it with
	// Allow, which never waits (kidMissStorage).
	refresher, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{jwksURL: st},
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 0),
	})
	if err != nil {
		cancel()
		return nil, jwksURL, fmt.Errorf("JWK Set %s: %w", jwksURL, err)
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx: ctx,
		Storage: kidMissStorage{
			Storage:   st,
			refresher: refresher,
			limiter:   rate.NewLimiter(rate.Every(p.kidInterval), 1),
		},
		// Keys marked for encryption never verify signatures.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		cancel()
		return nil, jwksURL, fmt.Errorf("JWK Set %s: %w", jwksURL, err)
	}
	return &remoteKeys{cache: cache, kf: kf, stop: cancel}, jwksURL, nil
}

// discoveryDoc is where p's discovery document is: its discovery_url, or
// the issuer's own well-known location.
func (p *provider) discoveryDoc() string { return cmp.Or(p.discoveryURL, discoveryURL(p.issuer)) }

// discoveryURL is the OpenID Connect Discovery 1.0 (§4) location of issuer's
// configuration: the issuer with one trailing "/" removed, plus the
// well-known path.
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// configError is a key-loading failure that retrying cannot fix: the
// provider's configuration and what it serves disagree (the discovery
// document names another issuer, its jwks_uri is not a usable URL).
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func misconfigured(format string, a ...any) error {
	return &configError{fmt.Errorf(format, a...)}
}

// discover fetches the discovery document at u and returns its jwks_uri.
// The document must name issuer (OpenID Connect Discovery 1.0 §4.3; an
// issuer template must be named as the same template).
func (v *Verifier) discover(issuer, u string) (string, error) {
	ctx, cancel := context.WithTimeout(v.ctx, discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery %s: HTTP status %d", u, resp.StatusCode)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscoveryBytes)).Decode(&doc); err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	if doc.Issuer != issuer {
		return "", misconfigured("discovery %s: document is for issuer %q, not the configured %q: fix the issuer (exact spelling, trailing slash) or discovery_url", u, doc.Issuer, issuer)
	}
	if err := checkFetchURL(doc.JWKSURI); err != nil {
		return "", misconfigured("discovery %s: jwks_uri: %w", u, err)
	}
	if strings.HasPrefix(u, "https:") && !strings.HasPrefix(doc.JWKSURI, "https:") {
		return "", misconfigured("discovery %s: jwks_uri %q is not https", u, doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// checkFetchURL accepts the URLs keys and discovery documents are fetched
// from: absolute http and https URLs without a fragment. A query is allowed
// (Azure AD B2C's jwks_uri ends in "?p=<policy>").
func checkFetchURL(raw string) error {
	_, err := parseFetchURL(raw)
	return err
}

// checkHTTPURL accepts issuers used for discovery: fetch URLs without a
// query either (OpenID Connect Discovery 1.0 §2).
func checkHTTPURL(raw string) error {
	u, err := parseFetchURL(raw)
	if err == nil && u.RawQuery != "" {
		err = fmt.Errorf("%q must not have a query", raw)
	}
	return err
}

// parseFetchURL parses raw and refuses what checkFetchURL refuses.
func parseFetchURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%q must not have a fragment", raw)
	}
	return u, nil
}

func (v *Verifier) report(issuer, result string) {
	if v.onRefresh != nil {
		v.onRefresh(issuer, result)
	}
}

// cacheStore is the in-memory JWK Set jwkset refreshes. It counts the keys
// for Ready and reports each refresh once the provider is live (before that,
// loadKeys reports).
type cacheStore struct {
	*jwkset.MemoryJWKSet
	n         atomic.Int64
	live      atomic.Bool
	onReplace func(n int)
	// onRemoved runs when a refresh drops a key id the previous set had:
	// identity tokens verified with that key must not stay accepted from
	// the token cache.
	onRemoved func()
	mu        sync.Mutex      // the background refresh and an unknown kid's fetch may overlap
	kids      map[string]bool // key ids of the last set
}

// KeyReplaceAll is called by jwkset after each successful fetch.
func (c *cacheStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := c.MemoryJWKSet.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	c.n.Store(int64(len(given)))
	kids := make(map[string]bool, len(given))
	for _, k := range given {
		kids[k.Marshal().KID] = true
	}
	c.mu.Lock()
	removed := false
	for kid := range c.kids {
		removed = removed || !kids[kid]
	}
	c.kids = kids
	c.mu.Unlock()
	if removed && c.onRemoved != nil {
		c.onRemoved()
	}
	if c.live.Load() {
		c.onReplace(len(given))
	}
	return nil
}

func (c *cacheStore) count() int { return int(c.n.Load()) }

// kidMissStorage reads keys from the cached JWK Set; on an unknown kid it
// refetches the set at once if the rate limiter allows, and otherwise
// reports the key as not found at once.
type kidMissStorage struct {
	jwkset.Storage
	refresher jwkset.Storage
	limiter   *rate.Limiter
}

// KeyRead returns the key with keyID, refreshing the set on a miss when
// allowed.
func (s kidMissStorage) KeyRead(ctx context.Context, keyID string) (jwkset.JWK, error) {
	jwk, err := s.Storage.KeyRead(ctx, keyID)
	if !errors.Is(err, jwkset.ErrKeyNotFound) || !s.limiter.Allow() {
		return jwk, err
	}
	ctx, cancel := context.WithTimeout(ctx, unknownKIDFetchTimeout)
	defer cancel()
	return s.refresher.KeyRead(ctx, keyID)
}
