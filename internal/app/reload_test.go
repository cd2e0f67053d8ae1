package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/metrics"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// TestReloaderWatchesCertificates: with the tlsutil.Reloader's own checks
// off, the Reloader's one content watcher picks up replaced certificate
// files (key first, then certificate, as a deploy tool would).
func TestReloaderWatchesCertificates(t *testing.T) {
	dir := t.TempDir()
	cert, key, err := tlsutil.SelfSigned(filepath.Join(dir, "a"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2, err := tlsutil.SelfSigned(filepath.Join(dir, "b"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := tlsutil.NewReloader(cert, key, tlsutil.ReloaderOptions{CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{TLS: config.TLS{CertFile: cert, KeyFile: key}}
	b := &Builder{Metrics: metrics.New(metrics.BuildInfo{}), Logger: slog.New(slog.DiscardHandler)}
	snap, err := b.Build(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := &Source{Load: func() (*config.Config, error) { return cfg, nil }, PollEvery: 10 * time.Millisecond, Signals: make(chan os.Signal)}
	if !WatchesCertificates(src) {
		t.Fatal("a polling source does not watch the certificate")
	}
	r := NewReloader(b, snap, src)
	stop := r.Start(context.Background(), nil, certs)
	defer stop()

	old := certs.Leaf().SerialNumber.String()
	for _, p := range [][2]string{{key2, key}, {cert2, cert}} {
		data, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		tmp := p[1] + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p[1]); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); certs.Leaf().SerialNumber.String() == old; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate was not picked up")
		}
	}
}

// TestChangesNamesEveryRateLimit: a reload that changes only
// per_ip_failed_auth (which Build carries over or rebuilds like the other
// limits) is logged as a rate_limits change, not as "none".
func TestChangesNamesEveryRateLimit(t *testing.T) {
	old := config.Defaults()
	next := config.Defaults()
	next.RateLimits.PerIPFailedAuth = "7/m"
	next.RateLimits.IPFailedAuth = config.Rate{N: 7, Period: time.Minute}
	if got := changes(&old, &next); !slices.Equal(got, []string{"rate_limits"}) {
		t.Errorf("changes = %q, want [rate_limits]", got)
	}
}
