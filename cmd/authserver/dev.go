package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// The dev server's fixed names, so the README's curl lines work verbatim.
// The API key is not a secret: dev listens on loopback only.
const (
	devAppKey = "demo-app"
	devAPIKey = "dev-api-key"

	// The demo identity provider stands in for an app's login, so a browser
	// page (which must never hold an API key) can call dev with
	// `Authorization: Bearer`: HS256 tokens with this issuer and audience,
	// signed with the secret in <data-dir>/dev-idp-secret.
	devIDPIssuer   = "authserver-dev-login"
	devIDPAudience = "authserver-dev"
	devIDPTokenTTL = 12 * time.Hour
)

// devOrigins are the browser origins dev allows: pages served from this
// machine on any port.
func devOrigins() []string { return []string{"http://localhost:*", "http://127.0.0.1:*"} }

func runDev(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	dataDir := fs.String("data-dir", "./data", "where the dev certificate, secret and sequence store live")
	listen := fs.String("listen", "127.0.0.1:8443", "public HTTPS address")
	adminListen := fs.String("admin-listen", "127.0.0.1:9090", "admin HTTP address (metrics, health)")
	logFormat := fs.String("log-format", "text", "json or text")
	acceptReset := fs.Bool("accept-sequence-reset", false, acceptResetUsage)
	demoUser := fs.String("demo-user", "alice", "the user of the demo identity token the banner prints")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	certFile, keyFile, err := tlsutil.SelfSigned(*dataDir, time.Now())
	if err != nil {
		return fmt.Errorf("dev certificate: %w", err)
	}
	secretFile := filepath.Join(*dataDir, "dev-app-secret")
	if err := ensureSecretFile(secretFile); err != nil {
		return err
	}
	idpSecretFile := filepath.Join(*dataDir, "dev-idp-secret")
	if err := ensureIDPSecretFile(idpSecretFile); err != nil {
		return err
	}
	if err := signer.CheckUserID(*demoUser); err != nil {
		return fmt.Errorf("--demo-user: %w", err)
	}
	sum := sha256.Sum256([]byte(devAPIKey))

	// load builds the dev config; SIGHUP (or editing the secret file)
	// runs it again, so the demo secret can be rotated without a restart.
	load := func() (*config.Config, error) {
		cfg := config.Defaults()
		cfg.Dev = true
		cfg.Listen, cfg.AdminListen, cfg.DataDir = *listen, *adminListen, *dataDir
		cfg.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
		cfg.Log.Format = *logFormat
		cfg.Applications = []config.Application{{Key: devAppKey, SecretFile: secretFile, Default: true}}
		cfg.APIKeys = []config.APIKey{{Name: "dev", SHA256: hex.EncodeToString(sum[:]), Applications: []string{"*"}}}
		cfg.IdentityProviders = []config.IdentityProvider{{
			Issuer: devIDPIssuer, Audience: devIDPAudience, HS256SecretFile: idpSecretFile, Applications: []string{"*"},
		}}
		cfg.CORS.AllowedOrigins = devOrigins()
		cfg.RateLimits.PerUser = "60/m"
		cfg.AcceptSequenceReset = *acceptReset
		// AUTHSERVER_APP_KEY/_SECRET let a developer try their real Sinch app.
		if err := config.ApplyEnv(&cfg, env); err != nil {
			return nil, err
		}
		if err := cfg.Resolve(env.Get); err != nil {
			return nil, err
		}
		return &cfg, nil
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	demo := cfg.DefaultApplication()
	secretHint := "--app-secret-file " + secretFile
	if demo.SecretFile == "" {
		secretHint = "(secret from AUTHSERVER_APP_SECRET)"
	}
	now := time.Now()
	idToken, err := demoIDToken(idpSecretFile, *demoUser, now)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stderr, func(pub, admin net.Addr) {
		url := "https://" + hostPort(pub)
		fmt.Fprintf(stdout, `authserver dev is running. Not for production.

  public API   %[1]s   (self-signed certificate: %[2]s)
  admin        http://%[3]s/metrics   /healthz   /readyz
  application  %[4]s   (default; secret in %[5]s)
  API key      %[6]s

Get a registration JWT:

  curl --cacert %[2]s -H 'X-API-Key: %[6]s' -H 'Content-Type: application/json' \
    -d '{"userId":"alice"}' %[1]s/v1/registration-tokens

Get a legacy signature and sequence:

  curl --cacert %[2]s -H 'X-API-Key: %[6]s' -H 'Content-Type: application/json' \
    -d '{"userId":"alice"}' %[1]s/v1/registration-signatures

Check a token:

  go run ./cmd/authserver verify %[7]s TOKEN

As an end user, the way an app or a browser page calls (no API key): a demo
identity token for user %[8]s (HS256, issuer %[9]s, audience %[10]s,
secret in %[11]s; valid until %[12]s; --demo-user NAME for another user):

  %[13]s

  curl --cacert %[2]s -H 'Authorization: Bearer %[13]s' \
    -X POST %[1]s/v1/registration-tokens

Browser pages on http://localhost:* and http://127.0.0.1:* may call the API
(CORS); examples/web/demo.html is such a page.

`, url, certFile, hostPort(admin), demo.Key, secretFileOr(demo, secretFile), devAPIKey, secretHint,
			*demoUser, devIDPIssuer, devIDPAudience, idpSecretFile, now.Add(devIDPTokenTTL).UTC().Format(time.RFC3339), idToken)
	}, &app.Source{Load: load, Getenv: env})
}

func secretFileOr(app *config.Application, def string) string {
	if app.SecretFile != "" {
		return app.SecretFile
	}
	return "AUTHSERVER_APP_SECRET"
}

// hostPort prints a listener address the way a URL needs it.
func hostPort(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.IsUnspecified() {
		if ok {
			return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
		}
		return a.String()
	}
	return a.String()
}

// ensureIDPSecretFile creates the demo identity provider's HS256 secret
// once per data dir: 32 random bytes, hex.
func ensureIDPSecretFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(hex.EncodeToString(b[:])+"\n"), 0o600)
}

// demoIDToken mints the demo identity provider's token for user, as an
// app's login would: HS256 over iss, aud, sub, iat and exp.
func demoIDToken(secretFile, user string, now time.Time) (string, error) {
	b, err := os.ReadFile(secretFile)
	if err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": devIDPIssuer, "aud": devIDPAudience, "sub": user,
		"iat": now.Unix(), "exp": now.Add(devIDPTokenTTL).Unix(),
	})
	return tok.SignedString(bytes.TrimSpace(b))
}

// ensureSecretFile creates a random demo secret once per data dir, so tokens
// stay verifiable across restarts of dev.
func ensureSecretFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b[:])+"\n"), 0o600)
}
