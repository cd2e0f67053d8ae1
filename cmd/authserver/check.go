package main

import (
	"context"
	"fmt"
	"io"

	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/config"
)

// runCheck loads and validates everything serve would, without serving:
// the file and environment, secrets, the TLS pair, the API keys and, unless
// --offline, the database and each identity provider's keys. It prints a
// summary and returns nil, or returns every problem found (main prints one
// line each).
func runCheck(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	path := fs.String("config", env.Get("AUTHSERVER_CONFIG"), "config file (YAML); env AUTHSERVER_CONFIG")
	offline := fs.Bool("offline", false, "do not contact the database or the identity providers")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" && env.Get("AUTHSERVER_APP_KEY") == "" {
		return errNoConfig
	}
	cfg, err := config.Load(*path, env)
	if err != nil {
		return err
	}
	lines, err := app.Check(ctx, cfg, *offline)
	if err != nil {
		return err
	}
	src := *path
	if src == "" {
		src = "the environment"
	}
	fmt.Fprintf(stdout, "config OK: %s\n", src)
	for _, l := range lines {
		fmt.Fprintf(stdout, "  %-19s %s\n", l[0], l[1])
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stdout, "warning: "+w)
	}
	return nil
}
