package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/signer"
)

// The dev server's fixed names (app.Dev*), so the README's curl lines work.
const (
	devAppKey = app.DevAppKey
	devAPIKey = app.DevAPIKey
)

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
	if err := signer.CheckUserID(*demoUser); err != nil {
		return fmt.Errorf("--demo-user: %w", err)
	}
	d, err := app.PrepareDev(app.DevOptions{
		DataDir: *dataDir, Listen: *listen, AdminListen: *adminListen, LogFormat: *logFormat,
		AcceptSequenceReset: *acceptReset, Env: env,
	})
	if err != nil {
		return err
	}
	cfg, err := d.Load()
	if err != nil {
		return err
	}
	certFile, secretFile, idpSecretFile := d.CertFile, d.SecretFile, d.IDPSecretFile
	demo := cfg.DefaultApplication()
	secretHint := "--app-secret-file " + secretFile
	if demo.SecretFile == "" {
		secretHint = "(secret from AUTHSERVER_APP_SECRET)"
	}
	now := time.Now()
	idToken, err := d.IDToken(*demoUser, now)
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
			*demoUser, app.DevIDPIssuer, app.DevIDPAudience, idpSecretFile, now.Add(app.DevIDPTokenTTL).UTC().Format(time.RFC3339), idToken)
	}, &app.Source{Load: d.Load, Getenv: env})
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
