package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
)

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name, value string
		check       func(c *config.Config) bool
	}{
		{"AUTHSERVER_LISTEN", ":9443", func(c *config.Config) bool { return c.Listen == ":9443" }},
		{"AUTHSERVER_ADMIN_LISTEN", "0.0.0.0:9191", func(c *config.Config) bool { return c.AdminListen == "0.0.0.0:9191" }},
		{"AUTHSERVER_TLS_CERT_FILE", "/etc/tls/cert.pem", func(c *config.Config) bool { return c.TLS.CertFile == "/etc/tls/cert.pem" }},
		{"AUTHSERVER_TLS_KEY_FILE", "/etc/tls/key.pem", func(c *config.Config) bool { return c.TLS.KeyFile == "/etc/tls/key.pem" }},
		{"AUTHSERVER_INSECURE_HTTP", "true", func(c *config.Config) bool { return c.InsecureHTTP }},
		{"AUTHSERVER_DATABASE_URL", "postgres://db/authserver", func(c *config.Config) bool { return c.DatabaseURL == "postgres://db/authserver" }},
		{"AUTHSERVER_DATA_DIR", "/var/lib/authserver", func(c *config.Config) bool { return c.DataDir == "/var/lib/authserver" }},
		{"AUTHSERVER_RATE_LIMITS_PER_USER", "1/s", func(c *config.Config) bool { return c.RateLimits.PerUser == "1/s" }},
		{"AUTHSERVER_RATE_LIMITS_PER_IP", "off", func(c *config.Config) bool { return c.RateLimits.PerIP == "off" }},
		{"AUTHSERVER_RATE_LIMITS_PER_API_KEY", "100/h", func(c *config.Config) bool { return c.RateLimits.PerAPIKey == "100/h" }},
		{"AUTHSERVER_RATE_LIMITS_PER_IP_FAILED_AUTH", "5/m", func(c *config.Config) bool { return c.RateLimits.PerIPFailedAuth == "5/m" }},
		{"AUTHSERVER_CORS_ALLOWED_ORIGINS", "https://a.example.com, https://b.example.com", func(c *config.Config) bool {
			return slices.Equal(c.CORS.AllowedOrigins, []string{"https://a.example.com", "https://b.example.com"})
		}},
		{"AUTHSERVER_TRUSTED_PROXIES", "10.0.0.0/8", func(c *config.Config) bool { return slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8"}) }},
		{"AUTHSERVER_LOG_FORMAT", "text", func(c *config.Config) bool { return c.Log.Format == "text" }},
		{"AUTHSERVER_LOG_LEVEL", "debug", func(c *config.Config) bool { return c.Log.Level == "debug" }},
		{"AUTHSERVER_PPROF", "1", func(c *config.Config) bool { return c.Pprof }},
		{"AUTHSERVER_SEQUENCE_DISABLE_GROUP_COMMIT", "TRUE", func(c *config.Config) bool { return c.Sequence.DisableGroupCommit }},
		{"AUTHSERVER_SEQUENCE_CLOCK_FLOOR", "false", func(c *config.Config) bool { return !c.Sequence.ClockFloor }},
		{"AUTHSERVER_SEQUENCE_BATCH_WINDOW", "750us", func(c *config.Config) bool { return c.Sequence.BatchWindow == 750*time.Microsecond }},
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			c := config.Defaults()
			if err := config.ApplyEnv(&c, mapEnv(map[string]string{tt.name: tt.value})); err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			if !tt.check(&c) {
				t.Errorf("%s=%q not applied: %+v", tt.name, tt.value, c)
			}
		})
	}
	for _, nk := range config.EnvNames() {
		if !tested[nk[0]] {
			t.Errorf("%s has no case in TestApplyEnv", nk[0])
		}
	}

	t.Run("empty values change nothing", func(t *testing.T) {
		env := map[string]string{}
		for _, nk := range config.EnvNames() {
			env[nk[0]] = ""
		}
		c := config.Defaults()
		if err := config.ApplyEnv(&c, mapEnv(env)); err != nil {
			t.Fatalf("ApplyEnv: %v", err)
		}
		d := config.Defaults()
		if c.Listen != d.Listen || c.AdminListen != d.AdminListen || c.DataDir != d.DataDir || c.RateLimits != d.RateLimits || c.Log != d.Log || c.Applications != nil {
			t.Errorf("got %+v, want the defaults", c)
		}
	})
	t.Run("false turns a file's true off", func(t *testing.T) {
		c := config.Defaults()
		c.InsecureHTTP, c.Pprof = true, true
		if err := config.ApplyEnv(&c, mapEnv(map[string]string{"AUTHSERVER_INSECURE_HTTP": "false", "AUTHSERVER_PPROF": "0"})); err != nil {
			t.Fatalf("ApplyEnv: %v", err)
		}
		if c.InsecureHTTP || c.Pprof {
			t.Errorf("InsecureHTTP %v, Pprof %v", c.InsecureHTTP, c.Pprof)
		}
	})
	t.Run("a list of separators only clears the list", func(t *testing.T) {
		c := config.Defaults()
		c.CORS.AllowedOrigins = []string{"https://file.example.com"}
		if err := config.ApplyEnv(&c, mapEnv(map[string]string{"AUTHSERVER_CORS_ALLOWED_ORIGINS": " , "})); err != nil {
			t.Fatalf("ApplyEnv: %v", err)
		}
		if len(c.CORS.AllowedOrigins) != 0 {
			t.Errorf("AllowedOrigins = %q", c.CORS.AllowedOrigins)
		}
	})
}

func TestApplyEnvShortcut(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantKey string // the *config.Error key; "" means success
		want    config.Application
	}{
		{name: "none", env: map[string]string{}},
		{name: "key and secret", env: map[string]string{"AUTHSERVER_APP_KEY": appKey, "AUTHSERVER_APP_SECRET": secretA},
			want: config.Application{Key: appKey, Default: true, SecretEnv: "AUTHSERVER_APP_SECRET"}},
		{name: "key and secret file", env: map[string]string{"AUTHSERVER_APP_KEY": appKey, "AUTHSERVER_APP_SECRET_FILE": "/run/secrets/sinch"},
			want: config.Application{Key: appKey, Default: true, SecretFile: "/run/secrets/sinch"}},
		{name: "secret without key", env: map[string]string{"AUTHSERVER_APP_SECRET": secretA}, wantKey: "AUTHSERVER_APP_KEY"},
		{name: "secret file without key", env: map[string]string{"AUTHSERVER_APP_SECRET_FILE": "/run/secrets/sinch"}, wantKey: "AUTHSERVER_APP_KEY"},
		{name: "key without secret", env: map[string]string{"AUTHSERVER_APP_KEY": appKey}, wantKey: "AUTHSERVER_APP_SECRET"},
		{name: "secret and secret file", env: map[string]string{"AUTHSERVER_APP_KEY": appKey, "AUTHSERVER_APP_SECRET": secretA, "AUTHSERVER_APP_SECRET_FILE": "/run/secrets/sinch"}, wantKey: "AUTHSERVER_APP_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Defaults()
			file := []config.Application{{Key: "from-file", SecretFile: "/x"}}
			c.Applications = file
			err := config.ApplyEnv(&c, mapEnv(tt.env))
			if tt.wantKey != "" {
				var cerr *config.Error
				if !errors.As(err, &cerr) || cerr.Key != tt.wantKey {
					t.Fatalf("ApplyEnv = %v, want a *config.Error for %s", err, tt.wantKey)
				}
				if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: ") || strings.Contains(msg, secretA) {
					t.Errorf("bad error text %q", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			if tt.want.Key == "" {
				if len(c.Applications) != 1 || c.Applications[0].Key != "from-file" {
					t.Errorf("the file's applications changed: %+v", c.Applications)
				}
				return
			}
			if len(c.Applications) != 1 {
				t.Fatalf("%d applications, want the shortcut's one", len(c.Applications))
			}
			got := c.Applications[0]
			if got.Key != tt.want.Key || got.Default != tt.want.Default || got.SecretEnv != tt.want.SecretEnv || got.SecretFile != tt.want.SecretFile || got.Secret != "" {
				t.Errorf("application = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	valid := []struct {
		in   string
		want config.Rate
	}{
		{"", config.Rate{}},
		{"0", config.Rate{}},
		{"off", config.Rate{}},
		{" off ", config.Rate{}},
		{"10/m", config.Rate{N: 10, Period: time.Minute}},
		{"1/s", config.Rate{N: 1, Period: time.Second}},
		{"300/m", config.Rate{N: 300, Period: time.Minute}},
		{"5000/h", config.Rate{N: 5000, Period: time.Hour}},
		{" 20/s\t", config.Rate{N: 20, Period: time.Second}},
		{"007/m", config.Rate{N: 7, Period: time.Minute}},
	}
	for _, tt := range valid {
		t.Run("valid "+tt.in, func(t *testing.T) {
			got, err := config.ParseRate(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseRate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
	invalid := []string{
		"10",                     // no unit
		"10/d",                   // unknown unit
		"10/min",                 // units are one letter
		"10/M",                   // and lower case
		"10/",                    // empty unit
		"/m",                     // no count
		"0/m",                    // zero is written "0" or "off"
		"-1/m",                   // negative
		"1.5/s",                  // not an integer
		"ten/m",                  // not a number
		"10 /m",                  // space inside
		"10/m/s",                 // two units
		"none",                   // only "off" and "0" disable
		"1e3/m",                  // not a plain integer
		"0x10/s",                 // not decimal
		"+-/s",                   // garbage
		"99999999999999999999/s", // overflows int
	}
	for _, in := range invalid {
		t.Run("invalid "+in, func(t *testing.T) {
			got, err := config.ParseRate(in)
			if err == nil {
				t.Fatalf("ParseRate(%q) = %+v, want an error", in, got)
			}
			if got != (config.Rate{}) {
				t.Errorf("ParseRate(%q) returned %+v with its error", in, got)
			}
			if msg := err.Error(); !strings.Contains(msg, in) || strings.Contains(msg, "\n") {
				t.Errorf("error %q should quote the input on one line", msg)
			}
		})
	}
}
