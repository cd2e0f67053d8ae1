package app

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// The dev server's fixed names, so the README's curl lines work verbatim.
// The API key is not a secret: dev listens on loopback only.
const (
	DevAppKey = "demo-app"
	DevAPIKey = "dev-api-key"

	// The demo identity provider stands in for an app's login, so a browser
	// page (which must never hold an API key) can call dev with
	// `Authorization: Bearer`: HS256 tokens with this issuer and audience,
	// signed with the secret in <data-dir>/dev-idp-secret.
	DevIDPIssuer   = "authserver-dev-login"
	DevIDPAudience = "authserver-dev"
	DevIDPTokenTTL = 12 * time.Hour
)

// DevOrigins are the browser origins dev allows: pages served from this
// machine on any port.
func DevOrigins() []string { return []string{"http://localhost:*", "http://127.0.0.1:*"} }

// DevOptions are the settings of `authserver dev`.
type DevOptions struct {
	DataDir, Listen, AdminListen, LogFormat string
	AcceptSequenceReset                     bool
	DemoUser                                string     // the user of the demo identity token (--demo-user)
	Env                                     config.Env // AUTHSERVER_APP_KEY/_SECRET try a real Sinch app
}

// Dev is a prepared demo: its files in the data dir, and its configuration.
type Dev struct {
	CertFile, KeyFile, SecretFile, IDPSecretFile string
	o                                            DevOptions
}

// PrepareDev creates the data dir, a self-signed certificate, the demo
// application's secret and the demo identity provider's secret, each once
// per data dir (so tokens stay verifiable across restarts). It first checks
// that o.DemoUser is a valid user id.
func PrepareDev(o DevOptions) (*Dev, error) {
	if _, err := signer.ParseUserID(o.DemoUser); err != nil {
		return nil, fmt.Errorf("--demo-user: %w", err)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	d := &Dev{o: o, SecretFile: filepath.Join(o.DataDir, "dev-app-secret"), IDPSecretFile: filepath.Join(o.DataDir, "dev-idp-secret")}
	var err error
	if d.CertFile, d.KeyFile, err = tlsutil.SelfSigned(o.DataDir, time.Now()); err != nil {
		return nil, fmt.Errorf("dev certificate: %w", err)
	}
	// The demo application's secret: 16 bytes, Base64; the demo identity
	// provider's HS256 secret: 32 bytes, hex.
	if err := ensureRandomFile(d.SecretFile, 16, base64.StdEncoding.EncodeToString); err != nil {
		return nil, err
	}
	if err := ensureRandomFile(d.IDPSecretFile, 32, hex.EncodeToString); err != nil {
		return nil, err
	}
	return d, nil
}

// Load builds the dev config; a reload (SIGHUP, or editing the secret file)
// runs it again, so the demo secret can be rotated without a restart.
func (d *Dev) Load() (*config.Config, error) {
	sum := sha256.Sum256([]byte(DevAPIKey))
	cfg := config.Defaults()
	cfg.Dev = true
	cfg.Listen, cfg.AdminListen, cfg.DataDir = d.o.Listen, d.o.AdminListen, d.o.DataDir
	cfg.TLS = config.TLS{CertFile: d.CertFile, KeyFile: d.KeyFile}
	cfg.Log.Format = d.o.LogFormat
	cfg.Applications = []config.Application{{Key: DevAppKey, SecretFile: d.SecretFile, Default: true}}
	cfg.APIKeys = []config.APIKey{{Name: "dev", SHA256: hex.EncodeToString(sum[:]), Applications: []string{"*"}}}
	cfg.IdentityProviders = []config.IdentityProvider{{
		Issuer: DevIDPIssuer, Audience: DevIDPAudience, HS256SecretFile: d.IDPSecretFile, Applications: []string{"*"},
	}}
	cfg.CORS.AllowedOrigins = DevOrigins()
	cfg.RateLimits.PerUser = "60/m"
	cfg.AcceptSequenceReset = d.o.AcceptSequenceReset
	if err := config.ApplyEnv(&cfg, d.o.Env); err != nil {
		return nil, err
	}
	if err := cfg.Resolve(d.o.Env.Get); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// IDToken mints the demo identity provider's token for user, as an app's
// login would: HS256 over iss, aud, sub, iat and exp.
func (d *Dev) IDToken(user string, now time.Time) (string, error) {
	b, err := os.ReadFile(d.IDPSecretFile)
	if err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": DevIDPIssuer, "aud": DevIDPAudience, "sub": user,
		"iat": now.Unix(), "exp": now.Add(DevIDPTokenTTL).Unix(),
	})
	return tok.SignedString(bytes.TrimSpace(b))
}

// ensureRandomFile creates path once per data dir with n random bytes,
// encoded, so what it holds (the demo secret, the demo identity provider's
// HS256 secret) stays the same across restarts of dev.
func ensureRandomFile(path string, n int, encode func([]byte) string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(encode(b)+"\n"), 0o600)
}
