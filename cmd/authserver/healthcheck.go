package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
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
	u := *url
	if *check != "" {
		u = strings.TrimSuffix(u, "/") + "/" + *check
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		// The first failed check's line says why, e.g.
		// "[-]sequence_store failed: ...".
		why := ""
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "[-]") {
				why = ": " + strings.TrimPrefix(sc.Text(), "[-]")
				break
			}
		}
		return fmt.Errorf("not ready: %s answered %s%s", u, resp.Status, why)
	}
	return nil
}
