package httpapi

import (
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
)

// TestNextStateCarriesUnchangedLimiters: a reload keeps the rate limiters
// (and their counters) whose limit did not change, and starts fresh ones
// for changed limits.
func TestNextStateCarriesUnchangedLimiters(t *testing.T) {
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
	prev := NewState(cfg(10, 300, 6000), nil, nil)
	same := NextState(prev, cfg(10, 300, 6000), nil, nil)
	if same.userLimit != prev.userLimit || same.ipLimit != prev.ipLimit || same.keyLimit != prev.keyLimit {
		t.Fatal("unchanged limits got new limiters")
	}
	changed := NextState(same, cfg(20, 300, 0), nil, nil)
	if changed.userLimit == prev.userLimit || changed.userLimit == nil {
		t.Fatal("a changed per-user limit kept its limiter")
	}
	if changed.ipLimit != prev.ipLimit {
		t.Fatal("an unchanged per-IP limit got a new limiter")
	}
	if changed.keyLimit != nil {
		t.Fatal("a disabled limit still has a limiter")
	}
	if NextState(nil, cfg(1, 1, 1), nil, nil).userLimit == nil {
		t.Fatal("NextState without a previous state has no limiter")
	}
}
