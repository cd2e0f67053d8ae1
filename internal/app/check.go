package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/tlsutil"
	"github.com/authserver-dev/authserver/migrations"
)

// checkTimeout bounds the network part of Check (database, providers).
const checkTimeout = 20 * time.Second

// Check builds and validates everything Serve would from cfg, without
// serving: the TLS pair, the API keys and, unless offline, the database and
// each identity provider's keys. It returns the summary lines (name, value)
// of `authserver check`, and every problem found (errors.Join).
func Check(ctx context.Context, cfg *config.Config, offline bool) ([][2]string, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()

	var probs []error
	var lines [][2]string
	add := func(k, v string) { lines = append(lines, [2]string{k, v}) }
	add("listen", cfg.Listen)
	add("admin_listen", cfg.AdminListen)
	if cfg.InsecureHTTP {
		add("tls", "none: insecure_http, behind a TLS-terminating proxy")
	} else if r, err := tlsutil.NewReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, tlsutil.ReloaderOptions{}); err != nil {
		probs = append(probs, &config.Error{Key: "tls", Problem: strings.TrimPrefix(err.Error(), "tls: ")})
	} else {
		leaf := r.Leaf()
		if time.Now().After(leaf.NotAfter) {
			probs = append(probs, &config.Error{Key: "tls.cert_file", Problem: "the certificate expired on " + leaf.NotAfter.UTC().Format(time.DateOnly)})
		}
		names := leaf.DNSNames
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		add("tls", fmt.Sprintf("%s (%s), expires %s", leaf.Subject.CommonName, strings.Join(names, ", "), leaf.NotAfter.UTC().Format(time.DateOnly)))
	}

	var apps []string
	for _, a := range cfg.Applications {
		var notes []string
		if a.Default {
			notes = append(notes, "default")
		}
		notes = append(notes, fmt.Sprintf("%d secret(s)", len(a.Secrets)), "token_ttl "+a.TokenTTL.String())
		if a.SignaturesEnabled() {
			notes = append(notes, "legacy signatures")
		}
		apps = append(apps, a.Key+" ("+strings.Join(notes, ", ")+")")
	}
	add("applications", strings.Join(apps, "; "))
	var keys []string
	for _, k := range cfg.APIKeys {
		keys = append(keys, k.Name+" ("+strings.Join(k.Applications, ", ")+")")
	}
	add("api keys", orNone(strings.Join(keys, "; ")))

	var provs []string
	for _, p := range cfg.IdentityProviders {
		provs = append(provs, p.Issuer+" (audience "+p.Audience+")")
	}
	provLine := orNone(strings.Join(provs, "; "))
	// The same construction as serve's, which loads each provider's keys
	// once; --offline builds the API keys only.
	authCfg := *cfg
	if offline {
		authCfg.IdentityProviders = nil
		if len(cfg.IdentityProviders) > 0 {
			provLine += "; not contacted (--offline)"
		}
	}
	_, err := NewAPIKeys(&authCfg)
	var v *auth.Verifier
	if err == nil {
		v, err = (&Builder{}).NewVerifier(ctx, &authCfg)
	}
	if err != nil {
		probs = append(probs, err)
	} else if v != nil {
		if err := v.Ready(); err != nil {
			probs = append(probs, &config.Error{Key: "identity_providers", Problem: strings.TrimPrefix(err.Error(), "auth: ")})
		} else {
			provLine += "; keys loaded"
		}
		v.Close()
	}
	add("identity providers", provLine)

	switch {
	case cfg.DatabaseURL == "":
		add("sequence store", "embedded, "+filepath.Join(cfg.DataDir, "sequences.db")+" (one process only)")
	case offline:
		add("sequence store", "postgres; not contacted (--offline)")
	default:
		pool, err := OpenPool(ctx, cfg.DatabaseURL)
		if err != nil {
			probs = append(probs, err)
			break
		}
		cur, latest, err := migrations.Status(ctx, pool)
		pool.Close()
		if err != nil {
			probs = append(probs, fmt.Errorf("database_url: %w", err))
			break
		}
		state := fmt.Sprintf("schema at version %d", cur)
		if cur < latest {
			state += fmt.Sprintf(", %d migration(s) pending (serve or migrate applies them)", latest-cur)
		}
		add("sequence store", "postgres, reachable, "+state)
	}
	return lines, errors.Join(probs...)

}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
