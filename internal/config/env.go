package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Env is the process's environment by name: EnvOf(os.Environ()) in main, a
// literal map in tests. Unlike a getenv function it tells a variable set to
// "" from an unset one, and lists the names, so that a misspelt AUTHSERVER_*
// variable is an error instead of being ignored.
type Env map[string]string

// EnvOf makes an Env from "NAME=value" entries, as os.Environ returns them.
func EnvOf(environ []string) Env {
	e := make(Env, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			e[k] = v
		}
	}
	return e
}

// Get returns the variable's value, "" when unset.
func (e Env) Get(name string) string { return e[name] }

// With is a copy of e with each non-empty value of set in place of e's
// (command-line flags winning over the environment and the file).
func (e Env) With(set map[string]string) Env {
	out := make(Env, len(e)+len(set))
	for k, v := range e {
		out[k] = v
	}
	for k, v := range set {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// EnvPrefix starts the name of every variable authserver reads.
const EnvPrefix = "AUTHSERVER_"

// envVar is one AUTHSERVER_<KEY> override of a scalar config key. Its name
// is generated from the key (EnvName), and doc is its line in the README's
// table, which a test keeps equal to EnvTable.
type envVar struct {
	key    string
	doc    string
	empty  bool // an empty value is allowed (and sets the key to empty)
	reload reload
	set    func(c *Config, v string) error
}

// reload says whether a configuration reload applies a key's new value.
type reload bool

const (
	reloads     reload = true  // a reload applies it
	restartOnly reload = false // a reload keeps the running value and warns
)

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return parsed(strconv.ParseBool, "true or false", p)
}

func integer(p func(*Config) *int) func(*Config, string) error {
	return parsed(strconv.Atoi, "an integer", p)
}

func duration(p func(*Config) *time.Duration) func(*Config, string) error {
	return parsed(time.ParseDuration, "a duration like 500us or 10m", p)
}

// parsed sets the key p points to from a value parse reads; the error of a
// value parse refuses says what was expected (want).
func parsed[T any](parse func(string) (T, error), want string, p func(*Config) *T) func(*Config, string) error {
	return func(c *Config, v string) error {
		x, err := parse(v)
		if err != nil {
			return fmt.Errorf("%q is not %s", v, want)
		}
		*p(c) = x
		return nil
	}
}

func list(p func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		*p(c) = out
		return nil
	}
}

// envVars is the one table of scalar keys settable from the environment:
// it feeds ApplyEnv, the check of unknown names, the README's table and the
// reload rules (KeepRestartOnly).
// Every scalar key of Config needs a row (TestEveryScalarKeyHasAVariable).
var envVars = []envVar{
	{"listen", "public HTTPS listener, `host:port`", false, restartOnly, str(func(c *Config) *string { return &c.Listen })},
	{"admin_listen", "admin listener (metrics, health), plain HTTP", false, restartOnly, str(func(c *Config) *string { return &c.AdminListen })},
	{"tls.cert_file", "certificate file (PEM), reloaded when it changes", false, reloads, str(func(c *Config) *string { return &c.TLS.CertFile })},
	{"tls.key_file", "private key file (PEM)", false, reloads, str(func(c *Config) *string { return &c.TLS.KeyFile })},
	{"insecure_http", "`true`: plain HTTP behind a TLS-terminating proxy", false, restartOnly, boolean(func(c *Config) *bool { return &c.InsecureHTTP })},
	{"database_url", "Postgres URL; empty: the embedded store", true, restartOnly, str(func(c *Config) *string { return &c.DatabaseURL })},
	{"data_dir", "directory of the embedded store", false, restartOnly, str(func(c *Config) *string { return &c.DataDir })},
	{"rate_limits.per_user", "`N/s`, `N/m`, `N/h` or `off`", false, reloads, str(func(c *Config) *string { return &c.RateLimits.PerUser })},
	{"rate_limits.per_ip", "the same, per client IP", false, reloads, str(func(c *Config) *string { return &c.RateLimits.PerIP })},
	{"rate_limits.per_api_key", "the same, per API key", false, reloads, str(func(c *Config) *string { return &c.RateLimits.PerAPIKey })},
	{"rate_limits.per_ip_failed_auth", "the same, per client IP, for failed authentications", false, reloads, str(func(c *Config) *string { return &c.RateLimits.PerIPFailedAuth })},
	{"cors.allowed_origins", "comma-separated origins; empty: none", true, reloads, list(func(c *Config) *[]string { return &c.CORS.AllowedOrigins })},
	{"trusted_proxies", "comma-separated IPs or CIDRs; empty: none", true, restartOnly, list(func(c *Config) *[]string { return &c.TrustedProxies })},
	{"log.format", "`json` or `text`", false, restartOnly, str(func(c *Config) *string { return &c.Log.Format })},
	{"log.level", "`debug`, `info`, `warn` or `error`", false, restartOnly, str(func(c *Config) *string { return &c.Log.Level })},
	{"pprof", "`true`: /debug/pprof/ on the admin listener", false, restartOnly, boolean(func(c *Config) *bool { return &c.Pprof })},
	{"sequence.batch_window", "group-commit window, e.g. `500us`", false, restartOnly, duration(func(c *Config) *time.Duration { return &c.Sequence.BatchWindow })},
	{"sequence.max_batch", "most calls in one group commit", false, restartOnly, integer(func(c *Config) *int { return &c.Sequence.MaxBatch })},
	{"sequence.disable_group_commit", "`true`: one statement per call", false, restartOnly, boolean(func(c *Config) *bool { return &c.Sequence.DisableGroupCommit })},
	{"sequence.clock_floor", "`true`: every sequence is at least the time in µs (a lost or restored store cannot repeat one)", false, restartOnly, boolean(func(c *Config) *bool { return &c.Sequence.ClockFloor })},
}

// otherVars are the variables that are not one scalar key, with their
// documentation. Those marked notConfig are read by tools around authserver
// (tests, docker compose); they are allowed so a shell that sets them can
// still run it.
var otherVars = []struct {
	name, doc string
	notConfig bool
}{
	{"AUTHSERVER_CONFIG", "the config file (`--config`)", false},
	{"AUTHSERVER_APP_KEY", "single application: its key; replaces `applications`", false},
	{"AUTHSERVER_APP_SECRET", "… and its secret (Base64), or:", false},
	{"AUTHSERVER_APP_SECRET_FILE", "… a file holding it", false},
	{"AUTHSERVER_API_KEYS", "`name:sha256:app1\\|app2,…` (`*` for all applications); replaces `api_keys`", false},
	{"AUTHSERVER_IDP_ISSUER", "one identity provider: its issuer (OIDC discovery); replaces `identity_providers`", false},
	{"AUTHSERVER_IDP_AUDIENCE", "… the audience its tokens must have (required with the issuer)", false},
	{"AUTHSERVER_IDP_JWKS_URL", "… its JWK Set URL, instead of discovery (optional)", false},
	{"AUTHSERVER_TEST_DATABASE_URL", "not read by authserver: `go test` uses this Postgres instead of a throwaway one", true},
	{"AUTHSERVER_VERSION", "not read by authserver: docker compose's image tag and build argument", true},
	{"AUTHSERVER_COMMIT", "not read by authserver: docker compose's build argument", true},
}

// EnvName is the variable that sets key: AUTHSERVER_ and the key in upper
// case with dots as underscores (tls.cert_file: AUTHSERVER_TLS_CERT_FILE).
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// EnvNames returns the names of all scalar environment overrides with the
// config key each sets.
func EnvNames() [][2]string {
	out := make([][2]string, 0, len(envVars))
	for _, e := range envVars {
		out = append(out, [2]string{EnvName(e.key), e.key})
	}
	return out
}

// EnvTable is the README's table of environment variables, in Markdown.
func EnvTable() string {
	var b strings.Builder
	b.WriteString("| variable | key | value |\n|---|---|---|\n")
	for _, e := range envVars {
		empty := ""
		if e.empty {
			empty = " (may be empty)"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s%s |\n", EnvName(e.key), e.key, e.doc, empty)
	}
	for _, o := range otherVars {
		fmt.Fprintf(&b, "| `%s` | | %s |\n", o.name, o.doc)
	}
	return b.String()
}

// knownEnv reports whether name is a variable authserver knows.
func knownEnv(name string) bool {
	for _, e := range envVars {
		if EnvName(e.key) == name {
			return true
		}
	}
	for _, o := range otherVars {
		if o.name == name {
			return true
		}
	}
	return false
}

// checkEnvNames refuses AUTHSERVER_* variables that map to nothing, naming
// each (with the closest known name), and empty values of variables that do
// not allow them: a typo must not be silently ignored.
func checkEnvNames(env Env) []error {
	var names []string
	for k := range env {
		if strings.HasPrefix(k, EnvPrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	// Suggestions compare the part after AUTHSERVER_, which all share.
	var known []string
	for _, e := range envVars {
		known = append(known, strings.TrimPrefix(EnvName(e.key), EnvPrefix))
	}
	for _, o := range otherVars {
		known = append(known, strings.TrimPrefix(o.name, EnvPrefix))
	}
	var errs []error
	for _, k := range names {
		if !knownEnv(k) {
			msg := "unknown variable"
			if s := suggest(strings.TrimPrefix(k, EnvPrefix), known); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", EnvPrefix+s)
			}
			errs = append(errs, errf(k, "%s; unset it, or see the README's list", msg))
			continue
		}
		if env[k] == "" && !emptyAllowed(k) {
			errs = append(errs, errf(k, "is set but empty; unset it to keep the file's or the default value"))
		}
	}
	return errs
}

func emptyAllowed(name string) bool {
	for _, e := range envVars {
		if EnvName(e.key) == name {
			return e.empty
		}
	}
	return false
}

// ApplyEnv applies AUTHSERVER_* overrides: the scalar keys, the
// single-application shortcut (AUTHSERVER_APP_KEY with AUTHSERVER_APP_SECRET
// or AUTHSERVER_APP_SECRET_FILE), AUTHSERVER_API_KEYS and one identity
// provider (AUTHSERVER_IDP_*), each of which replaces the file's list. An
// unknown AUTHSERVER_* name or an empty value is an error; every problem
// found is returned (errors.Join).
func ApplyEnv(c *Config, env Env) error {
	errs := checkEnvNames(env)
	for _, e := range envVars {
		v, ok := env[EnvName(e.key)]
		if !ok || v == "" && !e.empty {
			continue
		}
		if err := e.set(c, v); err != nil {
			errs = append(errs, errf(e.key, "from %s: %v", EnvName(e.key), err))
		}
	}
	errs = append(errs, applyEnvApp(c, env)...)
	errs = append(errs, applyEnvAPIKeys(c, env)...)
	errs = append(errs, applyEnvProvider(c, env)...)
	return joinErrors(errs)
}

func applyEnvApp(c *Config, env Env) []error {
	key := env.Get("AUTHSERVER_APP_KEY")
	secret, secretFile := env.Get("AUTHSERVER_APP_SECRET"), env.Get("AUTHSERVER_APP_SECRET_FILE")
	switch {
	case key == "" && (secret != "" || secretFile != ""):
		return []error{errf("AUTHSERVER_APP_KEY", "must be set with AUTHSERVER_APP_SECRET or AUTHSERVER_APP_SECRET_FILE")}
	case key == "":
		return nil
	case secret != "" && secretFile != "":
		return []error{errf("AUTHSERVER_APP_SECRET", "set only one of AUTHSERVER_APP_SECRET and AUTHSERVER_APP_SECRET_FILE")}
	case secret == "" && secretFile == "":
		return []error{errf("AUTHSERVER_APP_SECRET", "AUTHSERVER_APP_KEY needs AUTHSERVER_APP_SECRET or AUTHSERVER_APP_SECRET_FILE")}
	}
	app := Application{Key: key, Default: true, SecretFile: secretFile}
	if secret != "" {
		app.SecretEnv = "AUTHSERVER_APP_SECRET"
	}
	c.Applications = []Application{app}
	return nil
}

// applyEnvAPIKeys parses AUTHSERVER_API_KEYS, "name:sha256:app1|app2,…".
// A problem names the entry by position and name, never by its text, which
// could hold a key pasted in clear.
func applyEnvAPIKeys(c *Config, env Env) []error {
	v := env.Get("AUTHSERVER_API_KEYS")
	if v == "" {
		return nil
	}
	var keys []APIKey
	var errs []error
	for i, entry := range strings.Split(v, ",") {
		parts := strings.Split(strings.TrimSpace(entry), ":")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			errs = append(errs, errf("AUTHSERVER_API_KEYS", "entry %d: want name:sha256:applications (applications: app1|app2, or *)", i+1))
			continue
		}
		keys = append(keys, APIKey{Name: parts[0], SHA256: parts[1], Applications: strings.Split(parts[2], "|")})
	}
	if len(errs) == 0 {
		c.APIKeys = keys
	}
	return errs
}

// applyEnvProvider makes one identity provider from AUTHSERVER_IDP_*.
func applyEnvProvider(c *Config, env Env) []error {
	iss, aud, jwks := env.Get("AUTHSERVER_IDP_ISSUER"), env.Get("AUTHSERVER_IDP_AUDIENCE"), env.Get("AUTHSERVER_IDP_JWKS_URL")
	switch {
	case iss == "" && (aud != "" || jwks != ""):
		return []error{errf("AUTHSERVER_IDP_ISSUER", "must be set with AUTHSERVER_IDP_AUDIENCE and AUTHSERVER_IDP_JWKS_URL")}
	case iss == "":
		return nil
	case aud == "":
		return []error{errf("AUTHSERVER_IDP_AUDIENCE", "is required with AUTHSERVER_IDP_ISSUER: tokens meant for another client must not be accepted")}
	}
	c.IdentityProviders = []IdentityProvider{{Issuer: iss, Audience: aud, JWKSURL: jwks}}
	return nil
}

// joinErrors is errors.Join, flat (joined errors in errs are spread), that
// returns a single error as it is.
func joinErrors(errs []error) error {
	var flat []error
	for _, e := range errs {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			flat = append(flat, j.Unwrap()...)
		} else if e != nil {
			flat = append(flat, e)
		}
	}
	if len(flat) == 1 {
		return flat[0]
	}
	return errors.Join(flat...)
}

// ParseRate parses "N/s", "N/m" or "N/h"; "", "0" and "off" mean unlimited.
func ParseRate(s string) (Rate, error) {
	switch strings.TrimSpace(s) {
	case "", "0", "off":
		return Rate{}, nil
	}
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q: want N/s, N/m or N/h", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count <= 0 {
		return Rate{}, fmt.Errorf("%q: N must be a positive integer", s)
	}
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return Rate{}, fmt.Errorf("%q: unit must be s, m or h", s)
	}
	return Rate{N: count, Period: per}, nil
}
