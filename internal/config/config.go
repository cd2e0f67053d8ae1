// Package config loads authserver's configuration: a YAML file, then
// AUTHSERVER_* environment overrides, then validation. Secrets are resolved
// here (from files or the environment) so that a bad secret stops the process
// at start with one line, instead of failing the first request.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/signer"
)

// Config is the validated configuration of one authserver process.
type Config struct {
	Listen            string             `yaml:"listen"`
	AdminListen       string             `yaml:"admin_listen"`
	TLS               TLS                `yaml:"tls"`
	InsecureHTTP      bool               `yaml:"insecure_http"`
	DatabaseURL       string             `yaml:"database_url"`
	DataDir           string             `yaml:"data_dir"`
	Applications      []Application      `yaml:"applications"`
	IdentityProviders []IdentityProvider `yaml:"identity_providers"`
	APIKeys           []APIKey           `yaml:"api_keys"`
	RateLimits        RateLimits         `yaml:"rate_limits"`
	CORS              CORS               `yaml:"cors"`
	TrustedProxies    []string           `yaml:"trusted_proxies"`
	Log               Log                `yaml:"log"`
	Pprof             bool               `yaml:"pprof"`
	Sequence          Sequence           `yaml:"sequence"`

	// Dev is set by `authserver dev`: it allows inline secrets.
	Dev bool `yaml:"-"`
	// AcceptSequenceReset is set by --accept-sequence-reset: the embedded
	// store may start over (or take its file as it is) instead of refusing.
	AcceptSequenceReset bool `yaml:"-"`
	// Proxies is TrustedProxies parsed.
	Proxies []netip.Prefix `yaml:"-"`
	// Warnings are doubts that do not stop the start (an application key
	// that is not a UUID); serve logs them and check prints them.
	Warnings []string `yaml:"-"`
}

// TLS names the certificate and key files of the public listener. Both are
// watched and reloaded when they change.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Application is one Sinch application whose credentials authserver issues.
type Application struct {
	Key              string        `yaml:"key"`
	SecretFile       string        `yaml:"secret_file"`
	SecretEnv        string        `yaml:"secret_env"`
	Secret           string        `yaml:"secret"` // inline: `authserver dev` only
	Default          bool          `yaml:"default"`
	TokenTTL         time.Duration `yaml:"token_ttl"`
	MaxTokenTTL      time.Duration `yaml:"max_token_ttl"`
	InstanceTTL      time.Duration `yaml:"instance_ttl"`
	LegacySignatures *bool         `yaml:"legacy_signatures"`

	// Secrets are the resolved secrets: the first signs, all verify. A secret
	// file or variable holds one Base64 secret per line, newest first, so a
	// rotation can keep the previous secret for verification for a while.
	Secrets []signer.Secret `yaml:"-"`
}

// SignaturesEnabled reports whether legacy signatures are issued (default on).
func (a Application) SignaturesEnabled() bool {
	return a.LegacySignatures == nil || *a.LegacySignatures
}

// IdentityProvider is an issuer of end-user identity tokens.
type IdentityProvider struct {
	Issuer          string        `yaml:"issuer"`
	JWKSURL         string        `yaml:"jwks_url"`
	HS256SecretEnv  string        `yaml:"hs256_secret_env"`
	HS256SecretFile string        `yaml:"hs256_secret_file"`
	Audience        string        `yaml:"audience"`
	UserIDClaim     string        `yaml:"user_id_claim"`
	Applications    []string      `yaml:"applications"`
	Leeway          time.Duration `yaml:"leeway"`
	// MaxTokenAge refuses tokens older than this from their iat (and
	// tokens without iat); default 24h.
	MaxTokenAge time.Duration `yaml:"max_token_age"`
	// UnknownKIDRefreshInterval is the least time between two JWK Set
	// fetches caused by unknown key ids; default 15s.
	UnknownKIDRefreshInterval time.Duration `yaml:"unknown_kid_refresh_interval"`
	// AllowInsecureHTTP allows an issuer or jwks_url over plain http:// to a
	// host other than loopback (serve warns).
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`

	// Provider shapes (see auth.Provider): discovery elsewhere than the
	// issuer, other issuer spellings, another audience claim, required
	// claim values, and the user id claim → Sinch user id mapping.
	DiscoveryURL    string            `yaml:"discovery_url"`
	IssuerAliases   []string          `yaml:"issuer_aliases"`
	AudienceClaim   string            `yaml:"audience_claim"`
	RequiredClaims  map[string]string `yaml:"required_claims"`
	UserIDTransform string            `yaml:"user_id_transform"`

	// HS256Secret is the resolved shared secret of an HS256 provider.
	HS256Secret []byte `yaml:"-"`
}

// APIKey is a trusted backend's key, stored only as the hex SHA-256 of the key.
type APIKey struct {
	Name         string   `yaml:"name"`
	SHA256       string   `yaml:"sha256"`
	Applications []string `yaml:"applications"`
}

// RateLimits bounds request rates, written "N/s", "N/m" or "N/h"; "0" or
// "off" disables one.
type RateLimits struct {
	PerUser   string `yaml:"per_user"`
	PerIP     string `yaml:"per_ip"`
	PerAPIKey string `yaml:"per_api_key"`
	// PerIPFailedAuth bounds failed authentications (401s) per client
	// address; once spent, the address gets 429 before authenticating.
	PerIPFailedAuth string `yaml:"per_ip_failed_auth"`

	User, IP, APIKey, IPFailedAuth Rate `yaml:"-"`
}

// Rate is N requests per Period; N == 0 means unlimited.
type Rate struct {
	N      int
	Period time.Duration
}

// CORS lists the browser origins allowed to call the public API.
type CORS struct {
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Log selects the log format ("json" or "text") and level.
type Log struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// Sequence tunes the group commit of the legacy-signature sequence store.
type Sequence struct {
	BatchWindow        time.Duration `yaml:"batch_window"`
	MaxBatch           int           `yaml:"max_batch"`
	DisableGroupCommit bool          `yaml:"disable_group_commit"`
	// ClockFloor makes every sequence at least the time in microseconds
	// (sequence.ClockFloor): a lost, restored or failed-over store cannot
	// repeat a number. On by default; see the README.
	ClockFloor bool `yaml:"clock_floor"`
}

// Error is a configuration problem: the key it concerns and what is wrong.
// Its text is the one line the process prints before exiting.
type Error struct {
	Key     string
	Problem string
}

func (e *Error) Error() string { return "config: " + e.Key + ": " + e.Problem }

// errf builds an Error. Line breaks in the problem (from a path or a value
// that ends in "\n", say a variable filled from a file) are escaped so the
// text stays one line.
func errf(key, format string, args ...any) error {
	problem := strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(fmt.Sprintf(format, args...))
	return &Error{Key: key, Problem: problem}
}

// Defaults returns the configuration before the file and environment apply.
func Defaults() Config {
	return Config{
		Listen:      ":8443",
		AdminListen: "127.0.0.1:9090",
		DataDir:     "./data",
		RateLimits:  RateLimits{PerUser: "10/m", PerIP: "300/m", PerAPIKey: "6000/m", PerIPFailedAuth: "30/m"},
		Log:         Log{Format: "json", Level: "info"},
		Sequence:    Sequence{ClockFloor: true},
	}
}

// Load reads the YAML file at path (none when path is empty), applies the
// environment, resolves secrets and validates. env is EnvOf(os.Environ())
// in production and a map in tests. The file's and the environment's
// problems are all returned together (errors.Join), each an *Error on one
// line; validation stops at its first problem.
func Load(path string, env Env) (*Config, error) {
	cfg, err := Read(path, env)
	if err != nil {
		return nil, err
	}
	if err := cfg.Resolve(env.Get); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Read is the defaults, then the YAML file at path (none when path is
// empty), then the environment, with the problems of both joined; nothing
// is resolved or validated beyond the keys themselves (Load does that).
func Read(path string, env Env) (Config, error) {
	cfg := Defaults()
	var errs []error
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, errf("file", "%v", err)
		}
		defer f.Close()
		errs = append(errs, Decode(f, &cfg))
	}
	errs = append(errs, ApplyEnv(&cfg, env))
	return cfg, joinErrors(errs)
}

// Resolve reads secrets and validates everything; call it after the file and
// the environment are applied.
func (c *Config) Resolve(getenv func(string) string) error {
	c.Warnings = nil
	if c.Listen == "" {
		return errf("listen", "must not be empty")
	}
	if c.AdminListen == "" {
		return errf("admin_listen", "must not be empty")
	}
	switch {
	case c.InsecureHTTP && (c.TLS.CertFile != "" || c.TLS.KeyFile != ""):
		return errf("insecure_http", "set together with tls: choose one")
	case !c.InsecureHTTP && !c.Dev && (c.TLS.CertFile == "" || c.TLS.KeyFile == ""):
		return errf("tls", "cert_file and key_file are required (or insecure_http: true behind a TLS-terminating proxy)")
	}
	for _, f := range []struct{ key, path string }{{"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return errf(f.key, "%v", err)
		}
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		return errf("data_dir", "must not be empty when database_url is not set")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return errf("database_url", "must be a postgres:// or postgresql:// URL")
	}
	if err := c.resolveApplications(getenv); err != nil {
		return err
	}
	if err := c.resolveProviders(getenv); err != nil {
		return err
	}
	if err := c.checkAPIKeys(); err != nil {
		return err
	}
	if len(c.APIKeys) == 0 && len(c.IdentityProviders) == 0 {
		return errf("api_keys", "no api_keys and no identity_providers: nobody could authenticate")
	}
	var err error
	if c.RateLimits.User, err = ParseRate(c.RateLimits.PerUser); err != nil {
		return errf("rate_limits.per_user", "%v", err)
	}
	if c.RateLimits.IP, err = ParseRate(c.RateLimits.PerIP); err != nil {
		return errf("rate_limits.per_ip", "%v", err)
	}
	if c.RateLimits.APIKey, err = ParseRate(c.RateLimits.PerAPIKey); err != nil {
		return errf("rate_limits.per_api_key", "%v", err)
	}
	if c.RateLimits.IPFailedAuth, err = ParseRate(c.RateLimits.PerIPFailedAuth); err != nil {
		return errf("rate_limits.per_ip_failed_auth", "%v", err)
	}
	for i, o := range c.CORS.AllowedOrigins {
		if o != "*" && !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") || strings.HasSuffix(o, "/") {
			return errf(fmt.Sprintf("cors.allowed_origins[%d]", i), "%q is not an origin like https://app.example.com", o)
		}
	}
	c.Proxies = c.Proxies[:0]
	for i, p := range c.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return errf(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR", p)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.Proxies = append(c.Proxies, pfx.Masked())
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return errf("log.format", "%q: want json or text", c.Log.Format)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return errf("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Sequence.BatchWindow < 0 || c.Sequence.BatchWindow > 100*time.Millisecond {
		return errf("sequence.batch_window", "must be between 0 and 100ms")
	}
	if c.Sequence.MaxBatch < 0 || c.Sequence.MaxBatch > 10000 {
		return errf("sequence.max_batch", "must be between 0 and 10000")
	}
	return nil
}

func (c *Config) resolveApplications(getenv func(string) string) error {
	if len(c.Applications) == 0 {
		return errf("applications", "at least one application is required (or set AUTHSERVER_APP_KEY and AUTHSERVER_APP_SECRET)")
	}
	seen := map[string]bool{}
	defaults := 0
	for i := range c.Applications {
		a := &c.Applications[i]
		key := fmt.Sprintf("applications[%d]", i)
		if placeholder(a.Key) {
			return errf(key+".key", "%q is a placeholder: put your application key from the Sinch dashboard here", a.Key)
		}
		if !signer.ValidAppKey(a.Key) {
			return errf(key+".key", "%q is not an application key (1-255 characters of A-Z a-z 0-9 - _ .)", a.Key)
		}
		if !c.Dev && !uuidRe.MatchString(a.Key) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s.key: %q is not a UUID, as the Sinch dashboard's application keys are: check it", key, a.Key))
		}
		if seen[a.Key] {
			return errf(key+".key", "%q is configured twice", a.Key)
		}
		seen[a.Key] = true
		secrets, err := resolveSecrets(key, a.SecretFile, a.SecretEnv, a.Secret, c.Dev, getenv)
		if err != nil {
			return err
		}
		a.Secrets = secrets
		if a.TokenTTL == 0 {
			a.TokenTTL = signer.DefaultTokenTTL
		}
		if a.MaxTokenTTL == 0 {
			a.MaxTokenTTL = time.Hour
		}
		if a.MaxTokenTTL < signer.MinTokenTTL {
			return errf(key+".max_token_ttl", "must be at least 60s")
		}
		if err := signer.CheckTTL(a.TokenTTL, a.MaxTokenTTL); err != nil {
			return errf(key+".token_ttl", "must be between 60s and max_token_ttl (%s)", a.MaxTokenTTL)
		}
		if err := signer.CheckInstanceTTL(a.InstanceTTL); err != nil {
			return errf(key+".instance_ttl", "must be 0 or at least 48h")
		}
		if a.Default {
			defaults++
		}
	}
	if defaults > 1 {
		return errf("applications", "more than one application has default: true")
	}
	if defaults == 0 && len(c.Applications) == 1 {
		c.Applications[0].Default = true
	}
	return nil
}

// resolveSecrets reads one application's secrets from exactly one source.
func resolveSecrets(key, file, env, inline string, dev bool, getenv func(string) string) ([]signer.Secret, error) {
	n := 0
	for _, s := range []string{file, env, inline} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errf(key, "set exactly one of secret_file, secret_env, secret")
	}
	var text string
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, errf(key+".secret_file", "%v", err)
		}
		text = string(b)
		key += ".secret_file"
	case env != "":
		text = getenv(env)
		if text == "" {
			return nil, errf(key+".secret_env", "environment variable %s is empty or not set", env)
		}
		key += ".secret_env"
	default:
		if !dev {
			return nil, errf(key+".secret", "inline secrets are only allowed by `authserver dev`; use secret_file or secret_env")
		}
		text = inline
		key += ".secret"
	}
	out, err := signer.ParseSecrets(text)
	var le *signer.SecretLineError
	switch {
	case errors.As(err, &le) && placeholder(strings.TrimSpace(strings.Split(text, "\n")[le.Line-1])):
		return nil, errf(key, "line %d: is a placeholder, not a secret: put the application secret from the Sinch dashboard here", le.Line)
	case err != nil:
		return nil, errf(key, "%v", err)
	}
	return out, nil
}

func (c *Config) resolveProviders(getenv func(string) string) error {
	for i := range c.IdentityProviders {
		p := &c.IdentityProviders[i]
		key := fmt.Sprintf("identity_providers[%d]", i)
		if p.Issuer == "" {
			return errf(key+".issuer", "is required")
		}
		if p.Audience == "" {
			return errf(key+".audience", "is required: tokens meant for another client must not be accepted")
		}
		hs := p.HS256SecretEnv != "" || p.HS256SecretFile != ""
		switch {
		case p.HS256SecretEnv != "" && p.HS256SecretFile != "":
			return errf(key, "set only one of hs256_secret_env, hs256_secret_file")
		case hs && p.JWKSURL != "":
			return errf(key, "jwks_url and an HS256 secret exclude each other")
		case p.HS256SecretFile != "":
			b, err := os.ReadFile(p.HS256SecretFile)
			if err != nil {
				return errf(key+".hs256_secret_file", "%v", err)
			}
			p.HS256Secret = bytes.TrimSpace(b)
		case p.HS256SecretEnv != "":
			p.HS256Secret = []byte(getenv(p.HS256SecretEnv))
		}
		if hs && len(p.HS256Secret) < auth.MinHS256SecretBytes {
			return errf(key, "the HS256 secret must be at least %d bytes", auth.MinHS256SecretBytes)
		}
		if !hs && !strings.HasPrefix(p.Issuer, "https://") && !strings.HasPrefix(p.Issuer, "http://") && p.JWKSURL == "" && p.DiscoveryURL == "" {
			return errf(key+".issuer", "%q is not a URL; OIDC discovery needs one (or set jwks_url)", p.Issuer)
		}
		if err := checkProviderShape(key, p, hs); err != nil {
			return err
		}
		if p.UserIDClaim == "" {
			p.UserIDClaim = auth.DefaultUserIDClaim
		}
		if len(p.Applications) == 0 {
			p.Applications = []string{auth.AllApplications}
		}
		if p.Leeway == 0 {
			p.Leeway = auth.DefaultLeeway
		}
		if p.Leeway < 0 || p.Leeway > 5*time.Minute {
			return errf(key+".leeway", "must be between 0 and 5m")
		}
		if p.MaxTokenAge == 0 {
			p.MaxTokenAge = 24 * time.Hour
		}
		if p.MaxTokenAge < time.Minute || p.MaxTokenAge > 30*24*time.Hour {
			return errf(key+".max_token_age", "must be between 1m and 720h")
		}
		if p.UnknownKIDRefreshInterval == 0 {
			p.UnknownKIDRefreshInterval = 15 * time.Second
		}
		if p.UnknownKIDRefreshInterval < time.Second || p.UnknownKIDRefreshInterval > 5*time.Minute {
			return errf(key+".unknown_kid_refresh_interval", "must be between 1s and 5m")
		}
		if u, field := p.InsecureURL(); u != "" && !p.AllowInsecureHTTP {
			return errf(key+"."+field, "%q is plain http to a host other than loopback: keys fetched this way can be forged on the way; use https (or allow_insecure_http: true)", u)
		}
		if err := c.checkAppList(key+".applications", p.Applications); err != nil {
			return err
		}
	}
	return nil
}

// InsecureURL returns the URL keys are fetched from over plain http:// to a
// host other than loopback, and its key (issuer or jwks_url); "" when none.
// The issuer is fetched only for discovery (no jwks_url, discovery_url or
// HS256 secret).
func (p IdentityProvider) InsecureURL() (string, string) {
	hs := p.HS256SecretEnv != "" || p.HS256SecretFile != ""
	switch {
	case hs:
		return "", ""
	case p.JWKSURL != "":
		if plainRemote(p.JWKSURL) {
			return p.JWKSURL, "jwks_url"
		}
	case p.DiscoveryURL != "":
		if plainRemote(p.DiscoveryURL) {
			return p.DiscoveryURL, "discovery_url"
		}
	case plainRemote(p.Issuer):
		return p.Issuer, "issuer"
	}
	return "", ""
}

// plainRemote reports whether raw is an http:// URL whose host is not
// loopback (localhost or a loopback address).
func plainRemote(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return false
	}
	addr, err := netip.ParseAddr(host)
	return err != nil || !addr.IsLoopback()
}

// checkProviderShape validates the provider-shape keys; the auth package
// checks URLs when it builds the verifier.
func checkProviderShape(key string, p *IdentityProvider, hs bool) error {
	if _, err := auth.TransformUserID(p.UserIDTransform, ""); err != nil {
		return errf(key+".user_id_transform", "%q is not one of %s, %s, %s", p.UserIDTransform,
			auth.TransformNone, auth.TransformBase64URL, auth.TransformSHA256)
	}
	if p.DiscoveryURL != "" && (hs || p.JWKSURL != "") {
		return errf(key+".discovery_url", "only for providers without jwks_url or an HS256 secret")
	}
	if n := strings.Count(p.Issuer, auth.TenantIDPlaceholder); n > 1 || n == 1 && p.JWKSURL == "" && p.DiscoveryURL == "" {
		return errf(key+".issuer", "an issuer template has one %s and needs jwks_url or discovery_url", auth.TenantIDPlaceholder)
	} else if n == 1 && len(p.IssuerAliases) > 0 {
		return errf(key+".issuer_aliases", "an issuer template cannot have issuer_aliases")
	}
	for i, a := range p.IssuerAliases {
		if a == "" || a == p.Issuer {
			return errf(fmt.Sprintf("%s.issuer_aliases[%d]", key, i), "must be non-empty and differ from issuer")
		}
	}
	for k, v := range p.RequiredClaims {
		if k == "" || v == "" {
			return errf(key+".required_claims", "names and values must be non-empty")
		}
	}
	return nil
}

// checkAPIKeys checks api_keys with auth.CheckAPIKeys, the rules the server
// builds its keys with, and adds what only the configuration knows: the
// placeholders of the examples, and the configured applications.
func (c *Config) checkAPIKeys() error {
	keys := make([]auth.APIKey, len(c.APIKeys))
	for i, k := range c.APIKeys {
		// Said before the digest rule, which would only call it malformed.
		if placeholder(k.SHA256) {
			return errf(fmt.Sprintf("api_keys[%d].sha256", i), "is a placeholder: put the SHA-256 of your key here (printf %%s KEY | sha256sum)")
		}
		keys[i] = auth.APIKey{Name: k.Name, SHA256: k.SHA256, Applications: k.Applications}
	}
	var kerr *auth.APIKeyError
	if err := auth.CheckAPIKeys(keys); errors.As(err, &kerr) {
		return errf(fmt.Sprintf("api_keys[%d].%s", kerr.Index, kerr.Field), "%s", kerr.Problem)
	} else if err != nil {
		return errf("api_keys", "%v", err)
	}
	for i, k := range c.APIKeys {
		key := fmt.Sprintf("api_keys[%d]", i)
		if why := placeholderHash(k.SHA256); why != "" {
			return errf(key+".sha256", "is %s, not a real key's: put the SHA-256 of your key here (printf %%s KEY | sha256sum)", why)
		}
		if err := c.checkAppList(key+".applications", k.Applications); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) checkAppList(key string, apps []string) error {
	for _, a := range apps {
		if a == auth.AllApplications {
			continue
		}
		if c.Application(a) == nil {
			return errf(key, "%q is not a configured application", a)
		}
	}
	return nil
}

// Application returns the application with the given key, or nil.
func (c *Config) Application(key string) *Application {
	for i := range c.Applications {
		if c.Applications[i].Key == key {
			return &c.Applications[i]
		}
	}
	return nil
}

// DefaultApplication returns the default application, or nil when several
// are configured and none is marked default.
func (c *Config) DefaultApplication() *Application {
	for i := range c.Applications {
		if c.Applications[i].Default {
			return &c.Applications[i]
		}
	}
	return nil
}
