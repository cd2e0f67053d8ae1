package main

import (
	"context"
	"io"
	"time"

	"github.com/authserver-dev/authserver/internal/app"
)

// runHealthcheck asks the admin listener's /readyz (or, with --check NAME,
// /readyz/NAME); Docker's HEALTHCHECK runs it because the image has no curl.
func runHealthcheck(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("healthcheck", stderr)
	url := fs.String("url", "http://127.0.0.1:9090/readyz", "readiness URL of the admin listener")
	check := fs.String("check", "", "ask one check instead: sequence_store, identity_providers or identity_provider_keys (URL/NAME)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return app.Ready(ctx, *url, *check)
}
