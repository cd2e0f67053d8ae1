package main

import (
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

	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// The dev server's fixed names, so the README's curl lines work verbatim.
// The API key is not a secret: dev listens on loopback only.
const (
	devAppKey = "demo-app"
	devAPIKey = "dev-api-key"
)

func runDev(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	dataDir := fs.String("data-dir", "./data", "where the dev certificate, secret and sequence store live")
	listen := fs.String("listen", "127.0.0.1:8443", "public HTTPS address")
	adminListen := fs.String("admin-listen", "127.0.0.1:9090", "admin HTTP address (metrics, health)")
	logFormat := fs.String("log-format", "text", "json or text")
	acceptReset := fs.Bool("accept-sequence-reset", false, acceptResetUsage)
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
	app := cfg.DefaultApplication()
	secretHint := "--app-secret-file " + secretFile
	if app.SecretFile == "" {
		secretHint = "(secret from AUTHSERVER_APP_SECRET)"
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

`, url, certFile, hostPort(admin), app.Key, secretFileOr(app, secretFile), devAPIKey, secretHint)
	}, &reloadSource{load: load, getenv: env})
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
