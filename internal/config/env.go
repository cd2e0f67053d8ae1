package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// envVar is one AUTHSERVER_<KEY> override of a scalar config key.
type envVar struct {
	name string
	key  string
	set  func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p(c) = b
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

// envVars lists every environment override; the README's table is this list.
var envVars = []envVar{
	{"AUTHSERVER_LISTEN", "listen", str(func(c *Config) *string { return &c.Listen })},
	{"AUTHSERVER_ADMIN_LISTEN", "admin_listen", str(func(c *Config) *string { return &c.AdminListen })},
	{"AUTHSERVER_TLS_CERT_FILE", "tls.cert_file", str(func(c *Config) *string { return &c.TLS.CertFile })},
	{"AUTHSERVER_TLS_KEY_FILE", "tls.key_file", str(func(c *Config) *string { return &c.TLS.KeyFile })},
	{"AUTHSERVER_INSECURE_HTTP", "insecure_http", boolean(func(c *Config) *bool { return &c.InsecureHTTP })},
	{"AUTHSERVER_DATABASE_URL", "database_url", str(func(c *Config) *string { return &c.DatabaseURL })},
	{"AUTHSERVER_DATA_DIR", "data_dir", str(func(c *Config) *string { return &c.DataDir })},
	{"AUTHSERVER_RATE_LIMITS_PER_USER", "rate_limits.per_user", str(func(c *Config) *string { return &c.RateLimits.PerUser })},
	{"AUTHSERVER_RATE_LIMITS_PER_IP", "rate_limits.per_ip", str(func(c *Config) *string { return &c.RateLimits.PerIP })},
	{"AUTHSERVER_RATE_LIMITS_PER_API_KEY", "rate_limits.per_api_key", str(func(c *Config) *string { return &c.RateLimits.PerAPIKey })},
	{"AUTHSERVER_RATE_LIMITS_PER_IP_FAILED_AUTH", "rate_limits.per_ip_failed_auth", str(func(c *Config) *string { return &c.RateLimits.PerIPFailedAuth })},
	{"AUTHSERVER_CORS_ALLOWED_ORIGINS", "cors.allowed_origins", list(func(c *Config) *[]string { return &c.CORS.AllowedOrigins })},
	{"AUTHSERVER_TRUSTED_PROXIES", "trusted_proxies", list(func(c *Config) *[]string { return &c.TrustedProxies })},
	{"AUTHSERVER_LOG_FORMAT", "log.format", str(func(c *Config) *string { return &c.Log.Format })},
	{"AUTHSERVER_LOG_LEVEL", "log.level", str(func(c *Config) *string { return &c.Log.Level })},
	{"AUTHSERVER_PPROF", "pprof", boolean(func(c *Config) *bool { return &c.Pprof })},
	{"AUTHSERVER_SEQUENCE_DISABLE_GROUP_COMMIT", "sequence.disable_group_commit", boolean(func(c *Config) *bool { return &c.Sequence.DisableGroupCommit })},
	{"AUTHSERVER_SEQUENCE_CLOCK_FLOOR", "sequence.clock_floor", boolean(func(c *Config) *bool { return &c.Sequence.ClockFloor })},
	{"AUTHSERVER_SEQUENCE_BATCH_WINDOW", "sequence.batch_window", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 500us", v)
		}
		c.Sequence.BatchWindow = d
		return nil
	}},
}

// EnvNames returns the names of all scalar environment overrides with the
// config key each sets.
func EnvNames() [][2]string {
	out := make([][2]string, 0, len(envVars)+3)
	for _, e := range envVars {
		out = append(out, [2]string{e.name, e.key})
	}
	return out
}

// ApplyEnv applies AUTHSERVER_* overrides and the single-application
// shortcut (AUTHSERVER_APP_KEY with AUTHSERVER_APP_SECRET or
// AUTHSERVER_APP_SECRET_FILE), which replaces the file's applications.
func ApplyEnv(c *Config, getenv func(string) string) error {
	for _, e := range envVars {
		v := getenv(e.name)
		if v == "" {
			continue
		}
		if err := e.set(c, v); err != nil {
			return errf(e.key, "from %s: %v", e.name, err)
		}
	}
	key := getenv("AUTHSERVER_APP_KEY")
	secret, secretFile := getenv("AUTHSERVER_APP_SECRET"), getenv("AUTHSERVER_APP_SECRET_FILE")
	switch {
	case key == "" && (secret != "" || secretFile != ""):
		return errf("AUTHSERVER_APP_KEY", "must be set with AUTHSERVER_APP_SECRET or AUTHSERVER_APP_SECRET_FILE")
	case key == "":
		return nil
	case secret != "" && secretFile != "":
		return errf("AUTHSERVER_APP_SECRET", "set only one of AUTHSERVER_APP_SECRET and AUTHSERVER_APP_SECRET_FILE")
	case secret == "" && secretFile == "":
		return errf("AUTHSERVER_APP_SECRET", "AUTHSERVER_APP_KEY needs AUTHSERVER_APP_SECRET or AUTHSERVER_APP_SECRET_FILE")
	}
	app := Application{Key: key, Default: true, SecretFile: secretFile}
	if secret != "" {
		app.SecretEnv = "AUTHSERVER_APP_SECRET"
	}
	c.Applications = []Application{app}
	return nil
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
