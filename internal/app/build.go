// Package app wires authserver together from its configuration: Build makes
// an immutable Snapshot of everything a reload may replace (API keys, the
// identity-token verifier, rate limiters with their counters, applications
// and the Issuer), and a Reloader swaps snapshots in on SIGHUP or when the
// configuration's files change. cmd/authserver keeps only flags, output and
// exit codes.
package app

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"time"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/core"
	"github.com/authserver-dev/authserver/internal/httpapi"
	"github.com/authserver-dev/authserver/internal/metrics"
	"github.com/authserver-dev/authserver/internal/signer"
)

// Builder holds what lives as long as the process (signer, store, metrics,
// logger, clock) and builds Snapshots from configurations around it.
type Builder struct {
	Signer  *signer.Signer
	Store   core.SequenceStore
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time // nil: time.Now
	// Verifier are extra verifier options (tests pin the clock, size the
	// token cache); Now, OnRefresh and Logger are set from the Builder.
	Verifier auth.VerifierOptions
}

// Snapshot is one configuration and everything built from it. It is
// immutable: a reload builds a new one and swaps it in whole.
type Snapshot struct {
	Config   *config.Config
	State    *httpapi.State
	Verifier *auth.Verifier // nil without identity providers

	userLimit *httpapi.Limiter // inside State.Issuer; kept to carry it over
}

// Build builds the Snapshot for cfg. With a previous Snapshot it carries
// over what did not change: the verifier (with its loaded keys) when the
// identity providers are the same, each rate limiter whose limit is the same
// (with its counters, so a reload neither resets anyone's budget nor lets a
// burst through), and the secrets whose value is the same (with their cached
// signing keys). A reload that changes the providers must have their keys
// loaded now: it must not swap working keys for none. On error nothing
// built is left open.
func (b *Builder) Build(ctx context.Context, cfg *config.Config, prev *Snapshot) (*Snapshot, error) {
	if prev != nil {
		reuseSecrets(prev.Config, cfg)
	}
	keys, err := NewAPIKeys(cfg)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Config: cfg}
	switch {
	case prev != nil && reflect.DeepEqual(prev.Config.IdentityProviders, cfg.IdentityProviders):
		s.Verifier = prev.Verifier
	default:
		if s.Verifier, err = b.NewVerifier(ctx, cfg); err != nil {
			return nil, err
		}
		if prev != nil && s.Verifier != nil {
			if err := s.Verifier.Ready(); err != nil {
				s.Verifier.Close()
				return nil, &config.Error{Key: "identity_providers", Problem: err.Error()}
			}
		}
	}
	now := b.Now
	if now == nil {
		now = time.Now
	}
	limiter := func(pick func(config.RateLimits) config.Rate, old *httpapi.Limiter) *httpapi.Limiter {
		r := pick(cfg.RateLimits)
		if prev != nil && pick(prev.Config.RateLimits) == r {
			return old
		}
		return httpapi.NewLimiter(r.N, r.Period, now)
	}
	var prevState httpapi.State
	if prev != nil {
		prevState, s.userLimit = *prev.State, prev.userLimit
	}
	s.userLimit = limiter(func(r config.RateLimits) config.Rate { return r.User }, s.userLimit)
	st := &httpapi.State{
		APIKeys:         keys,
		CORSOrigins:     cfg.CORS.AllowedOrigins,
		IPLimit:         limiter(func(r config.RateLimits) config.Rate { return r.IP }, prevState.IPLimit),
		APIKeyLimit:     limiter(func(r config.RateLimits) config.Rate { return r.APIKey }, prevState.APIKeyLimit),
		FailedAuthLimit: limiter(func(r config.RateLimits) config.Rate { return r.IPFailedAuth }, prevState.FailedAuthLimit),
	}
	if s.Verifier != nil {
		st.Verifier = s.Verifier
	}
	var userLimit core.Limiter
	if s.userLimit != nil {
		userLimit = s.userLimit
	}
	st.Issuer = core.NewIssuer(core.IssuerOptions{
		Applications: Applications(cfg), Signer: b.Signer, Store: b.Store, UserLimit: userLimit,
	})
	s.State = st
	return s, nil
}

// Applications converts the configured applications into the domain's.
func Applications(cfg *config.Config) []core.Application {
	out := make([]core.Application, len(cfg.Applications))
	for i, a := range cfg.Applications {
		out[i] = core.Application{
			Key: a.Key, Default: a.Default, TokenTTL: a.TokenTTL, MaxTokenTTL: a.MaxTokenTTL,
			InstanceTTL: a.InstanceTTL, Signatures: a.SignaturesEnabled(), Secrets: a.Secrets,
		}
	}
	return out
}

// NewAPIKeys turns the configured API keys into auth's.
func NewAPIKeys(cfg *config.Config) (*auth.APIKeys, error) {
	ak := make([]auth.APIKey, len(cfg.APIKeys))
	for i, k := range cfg.APIKeys {
		ak[i] = auth.APIKey{Name: k.Name, SHA256: k.SHA256, Applications: k.Applications}
	}
	keys, err := auth.NewAPIKeys(ak)
	if err != nil {
		return nil, &config.Error{Key: "api_keys", Problem: err.Error()}
	}
	return keys, nil
}

// NewVerifier builds the identity-token verifier of cfg's providers; nil
// without any. It starts loading each provider's keys in the background.
func (b *Builder) NewVerifier(ctx context.Context, cfg *config.Config) (*auth.Verifier, error) {
	if len(cfg.IdentityProviders) == 0 {
		return nil, nil
	}
	logger := b.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ps := make([]auth.Provider, len(cfg.IdentityProviders))
	for i, p := range cfg.IdentityProviders {
		if u, key := p.InsecureURL(); u != "" {
			logger.Warn("identity provider keys are fetched over plain http (allow_insecure_http is set): anyone on the path can forge identity tokens",
				"issuer", p.Issuer, "key", key, "url", u)
		}
		ps[i] = auth.Provider{
			Issuer: p.Issuer, JWKSURL: p.JWKSURL, HS256Secret: p.HS256Secret, Audience: p.Audience,
			UserIDClaim: p.UserIDClaim, Applications: p.Applications, Leeway: p.Leeway,
			MaxTokenAge: p.MaxTokenAge, UnknownKIDRefreshInterval: p.UnknownKIDRefreshInterval,
			DiscoveryURL: p.DiscoveryURL, IssuerAliases: p.IssuerAliases, AudienceClaim: p.AudienceClaim,
			RequiredClaims: p.RequiredClaims, UserIDTransform: p.UserIDTransform,
		}
	}
	vo := b.Verifier
	vo.Logger = logger
	if vo.Now == nil {
		vo.Now = b.Now
	}
	if vo.Now == nil {
		vo.Now = time.Now
	}
	if m := b.Metrics; m != nil && vo.OnRefresh == nil {
		vo.OnRefresh = func(provider, result string) { m.JWKSRefresh.WithLabelValues(provider, result).Inc() }
	}
	v, err := auth.NewVerifier(ctx, ps, vo)
	if err != nil {
		return nil, &config.Error{Key: "identity_providers", Problem: err.Error()}
	}
	return v, nil
}

// reuseSecrets carries unchanged secrets over from the running
// configuration, with the signing keys they have cached.
func reuseSecrets(old, next *config.Config) {
	for i := range next.Applications {
		a := &next.Applications[i]
		o := old.Application(a.Key)
		if o == nil {
			continue
		}
		for j, s := range a.Secrets {
			if k := slices.IndexFunc(o.Secrets, s.Equal); k >= 0 {
				a.Secrets[j] = o.Secrets[k]
			}
		}
	}
}
