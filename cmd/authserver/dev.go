package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/config"
)

// runDev runs `authserver dev`: a demo server with generated files under
// --data-dir; it prints the banner once it listens.
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
	d, err := app.PrepareDev(app.DevOptions{
		DataDir: *dataDir, Listen: *listen, AdminListen: *adminListen, LogFormat: *logFormat,
		AcceptSequenceReset: *acceptReset, DemoUser: *demoUser, Env: env,
	})
	if err != nil {
		return err
	}
	cfg, err := d.Load()
	if err != nil {
		return err
	}
	now := time.Now()
	idToken, err := d.IDToken(*demoUser, now)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stderr, func(pub, admin net.Addr) {
		fmt.Fprint(stdout, d.Banner(cfg, *demoUser, idToken, now, pub, admin))
	}, &app.Source{Load: d.Load, Getenv: env})
}
