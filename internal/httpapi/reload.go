package httpapi

import (
	"time"

	"github.com/authserver-dev/authserver/internal/config"
)

// NextState builds the State a configuration reload swaps in after prev.
// Rate limiters whose limit is unchanged are carried over with their
// counters, so a reload neither resets anyone's budget nor lets a burst
// through; a changed limit starts with fresh counters.
func NextState(prev *State, cfg *config.Config, keys APIKeyAuthenticator, verifier TokenVerifier) *State {
	if prev == nil {
		return NewState(cfg, keys, verifier)
	}
	old := prev.Config.RateLimits
	return (&State{
		Config: cfg, APIKeys: keys, Verifier: verifier,
		userLimit: carryLimiter(prev.userLimit, old.User, cfg.RateLimits.User),
		ipLimit:   carryLimiter(prev.ipLimit, old.IP, cfg.RateLimits.IP),
		keyLimit:  carryLimiter(prev.keyLimit, old.APIKey, cfg.RateLimits.APIKey),
		failLimit: carryLimiter(prev.failLimit, old.IPFailedAuth, cfg.RateLimits.IPFailedAuth),
	}).indexApps()
}

func carryLimiter(prev *keyedLimiter, was, now config.Rate) *keyedLimiter {
	if was == now {
		return prev
	}
	return newKeyedLimiter(now, time.Now)
}
