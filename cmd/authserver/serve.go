package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	authserver "github.com/authserver-dev/authserver"
	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/config"
)

// acceptResetUsage is the help of --accept-sequence-reset (serve and dev).
const acceptResetUsage = "start the embedded sequence store over (or take its file as it is) when it is missing, empty, damaged, " +
	"replaced or older than when last used, instead of refusing to start; users may get numbers they had before unless sequence.clock_floor is on"

// errNoConfig is serve's answer when nothing says what to serve.
var errNoConfig = errors.New("no configuration: give --config FILE or set AUTHSERVER_CONFIG " +
	"(or AUTHSERVER_APP_KEY with AUTHSERVER_APP_SECRET and the other AUTHSERVER_* variables, see the README); " +
	"`authserver check --config FILE` validates a file without starting; `authserver dev` runs a demo with no setup")

func runServe(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("config", env.Get("AUTHSERVER_CONFIG"), "config file (YAML); env AUTHSERVER_CONFIG")
	logFormat := fs.String("log-format", "", "json or text (overrides log.format)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides log.level)")
	acceptReset := fs.Bool("accept-sequence-reset", false, acceptResetUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" && env.Get("AUTHSERVER_APP_KEY") == "" {
		return errNoConfig
	}
	// --log-format/--log-level win over the file and environment.
	env = env.With(map[string]string{"AUTHSERVER_LOG_FORMAT": *logFormat, "AUTHSERVER_LOG_LEVEL": *logLevel})
	cfg, err := config.Load(*path, env)
	if err != nil {
		return err
	}
	cfg.AcceptSequenceReset = *acceptReset
	return serve(ctx, cfg, stderr, nil, &app.Source{
		Load:   func() (*config.Config, error) { return config.Load(*path, env) },
		File:   *path,
		Getenv: env,
	})
}

// serve runs the server on cfg (app.Serve) with this binary's version and
// spec; onStart is told the listeners' addresses (tests and `dev`), and a
// nil src never reloads.
func serve(ctx context.Context, cfg *config.Config, logOut io.Writer, onStart func(public, admin net.Addr), src *app.Source) error {
	ver, rev := app.VersionInfo(version, commit)
	return app.Serve(ctx, cfg, logOut, app.ServeOptions{
		OnStart: onStart, Source: src, Version: ver, Revision: rev, Spec: []byte(authserver.OpenAPI),
	})
}

// runMigrate applies the Postgres migrations ("migrate", "migrate up") or
// prints the version ("migrate status"). It needs only database_url.
func runMigrate(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	path := fs.String("config", env.Get("AUTHSERVER_CONFIG"), "config file (YAML); env AUTHSERVER_CONFIG; only database_url is read")
	if err := parse(fs, args); err != nil {
		return err
	}
	sub := "up"
	switch fs.NArg() {
	case 0:
	case 1:
		sub = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "usage: authserver migrate [--config FILE] [up|status]")
		return usageError{errors.New("too many arguments")}
	}
	if sub != "up" && sub != "status" {
		fmt.Fprintf(stderr, "authserver migrate: unknown subcommand %q (up or status)\n", sub)
		return usageError{fmt.Errorf("unknown subcommand %q", sub)}
	}
	url, err := config.LoadDatabaseURL(*path, env)
	if err != nil {
		return err
	}
	return app.Migrate(ctx, url, sub == "status", stdout)
}
