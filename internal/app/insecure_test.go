package app

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
)

// TestNewVerifierWarnsInsecureProvider: a provider allowed to fetch its keys
// over plain http to another host (allow_insecure_http) is named in a
// warning at start.
func TestNewVerifierWarnsInsecureProvider(t *testing.T) {
	cfg := config.Defaults()
	cfg.Dev = true
	cfg.Applications = []config.Application{{Key: "app", Secret: "oYdgGRXoxEuJhGDY2KQ/HQ=="}}
	cfg.IdentityProviders = []config.IdentityProvider{
		{Issuer: "https://idp.example.com/", JWKSURL: "http://idp.invalid/jwks", Audience: "a", AllowInsecureHTTP: true},
	}
	if err := cfg.Resolve(func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b := &Builder{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := b.NewVerifier(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	var found bool
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "plain http") && strings.Contains(line, "http://idp.invalid/jwks") {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning naming the plain-http JWKS URL in:\n%s", logs.String())
	}
}
