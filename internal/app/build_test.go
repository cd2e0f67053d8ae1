package app

import (
	"context"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
)

// TestBuildCarriesUnchangedLimiters: a reload keeps the rate limiters (and
// their counters) whose limit did not change, and starts fresh ones for
// changed limits.
func TestBuildCarriesUnchangedLimiters(t *testing.T) {
	cfg := func(user, ip, key int) *config.Config {
		c := &config.Config{}
		c.RateLimits.User = config.Rate{N: user, Period: time.Minute}
		c.RateLimits.IP = config.Rate{N: ip, Period: time.Minute}
		c.RateLimits.APIKey = config.Rate{N: key, Period: time.Minute}
		if key == 0 {
			c.RateLimits.APIKey = config.Rate{}
		}
		return c
	}
	b := &Builder{}
	build := func(c *config.Config, prev *Snapshot) *Snapshot {
		t.Helper()
		s, err := b.Build(context.Background(), c, prev)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	prev := build(cfg(10, 300, 6000), nil)
	same := build(cfg(10, 300, 6000), prev)
	if same.userLimit != prev.userLimit || same.State.IPLimit != prev.State.IPLimit || same.State.APIKeyLimit != prev.State.APIKeyLimit {
		t.Fatal("unchanged limits got new limiters")
	}
	changed := build(cfg(20, 300, 0), same)
	if changed.userLimit == prev.userLimit || changed.userLimit == nil {
		t.Fatal("a changed per-user limit kept its limiter")
	}
	if changed.State.IPLimit != prev.State.IPLimit {
		t.Fatal("an unchanged per-IP limit got a new limiter")
	}
	if changed.State.APIKeyLimit != nil {
		t.Fatal("a disabled limit still has a limiter")
	}
	if build(cfg(1, 1, 1), nil).userLimit == nil {
		t.Fatal("Build without a previous snapshot has no limiter")
	}
}

// TestBuildTypedErrors: what Build refuses names its config key through
// *config.Error, not through the text.
func TestBuildTypedErrors(t *testing.T) {
	c := &config.Config{APIKeys: []config.APIKey{{Name: "k", SHA256: "not-hex", Applications: []string{"*"}}}}
	_, err := (&Builder{}).Build(context.Background(), c, nil)
	if config.KeyOf(err) != "api_keys" {
		t.Fatalf("error %v has key %q, want api_keys", err, config.KeyOf(err))
	}
}
