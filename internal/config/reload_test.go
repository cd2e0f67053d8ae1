package config

import (
	"net/netip"
	"slices"
	"testing"
)

// TestEveryRowNamesAField: every row of the key table names a field, so the
// reload rules can read and restore it.
func TestEveryRowNamesAField(t *testing.T) {
	c := Defaults()
	for _, e := range envVars {
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("%s: %v", e.key, v)
				}
			}()
			field(&c, e.key)
		}()
	}
}

// TestKeepRestartOnly: the restart-only keys keep their running values (with
// what is derived from them) and are named in table order; reloadable keys
// take the new value.
func TestKeepRestartOnly(t *testing.T) {
	old, next := Defaults(), Defaults()
	old.Proxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	old.TrustedProxies = []string{"10.0.0.0/8"}
	next.Listen = "127.0.0.1:1"
	next.Log.Level = "debug"
	next.Sequence.MaxBatch = old.Sequence.MaxBatch + 1
	next.TrustedProxies, next.Proxies = nil, nil
	next.InsecureHTTP = !old.InsecureHTTP
	next.TLS.CertFile = "other.crt"
	next.CORS.AllowedOrigins = []string{"https://example.com"}
	got := KeepRestartOnly(&old, &next)
	want := []string{"listen", "insecure_http", "trusted_proxies", "log.level", "sequence.max_batch"}
	if !slices.Equal(got, want) {
		t.Errorf("named %v, want %v", got, want)
	}
	if next.Listen != old.Listen || next.Log != old.Log || next.Sequence != old.Sequence ||
		next.InsecureHTTP != old.InsecureHTTP || next.TLS != old.TLS || !slices.Equal(next.Proxies, old.Proxies) {
		t.Errorf("restart-only values not restored: %+v", next)
	}
	if len(next.CORS.AllowedOrigins) != 1 {
		t.Error("a reloadable key was restored")
	}
	// nil and empty lists are the same value.
	a, b := Defaults(), Defaults()
	a.TrustedProxies, b.TrustedProxies = nil, []string{}
	if got := KeepRestartOnly(&a, &b); len(got) != 0 {
		t.Errorf("nil vs empty named %v", got)
	}
}
