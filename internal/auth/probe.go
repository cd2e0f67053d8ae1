package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Probe asks every provider that publishes its keys whether it answers now:
// one GET of its JWK Set URL, or of its discovery document when the JWK Set
// URL comes from discovery. It returns nil when all answer 200, else an error
// naming (by issuer) each that does not. Verify does not need it: tokens
// keep verifying with the keys loaded before an outage. It is for the
// identity_providers readiness check and the dependency metric.
func (v *Verifier) Probe(ctx context.Context) error {
	var errs []string
	for _, p := range v.providers {
		if p.hmacKeyfunc != nil {
			continue
		}
		u := cmp.Or(p.jwksURL, p.discoveryDoc())
		if err := v.probeURL(ctx, u); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", p.issuer, err))
		}
	}
	if len(errs) > 0 {
		return errors.New("identity provider unreachable: " + strings.Join(errs, "; "))
	}
	return nil
}

func (v *Verifier) probeURL(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return fmt.Errorf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDiscoveryBytes))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP status %d", u, resp.StatusCode)
	}
	return nil
}
