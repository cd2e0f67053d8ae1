package httpapi

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// limiterShards spreads the keys of one limiter over this many locks.
const limiterShards = 16

// Limiter allows each key N requests per Period, as a token bucket of N
// that refills at N per Period, kept in the GCRA form: per key, only the
// time at which its bucket will be full again ("tat", theoretical arrival
// time). That is one map entry of two words per key, the key being its
// 64-bit hash (two keys colliding would share a budget: at a million keys,
// odds of about 1 in 10^7).
//
// Memory follows the keys active in the last Period, not every key ever
// seen: a key whose bucket is full again behaves exactly like a key never
// seen, so a sweep drops it, and rebuilds the maps (a Go map never gives
// back the space of deleted entries). A sweep runs on the first request at
// least one Period after the previous sweep.
type Limiter struct {
	interval int64 // nanoseconds per request: Period / N
	period   int64 // nanoseconds; a bucket of N is this much time of credit
	now      func() time.Time
	seed     maphash.Seed

	lastSweep atomic.Int64 // unix nanoseconds
	sweeping  sync.Mutex
	shards    [limiterShards]limiterShard
}

type limiterShard struct {
	mu  sync.Mutex
	tat map[uint64]int64 // key hash -> unix nanoseconds when its bucket is full
}

// NewLimiter returns a limiter of n requests per period, or nil (no limit)
// for n = 0.
func NewLimiter(n int, period time.Duration, now func() time.Time) *Limiter {
	if n == 0 {
		return nil
	}
	l := &Limiter{
		interval: int64(period) / int64(n),
		period:   int64(period),
		now:      now,
		seed:     maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i].tat = map[uint64]int64{}
	}
	l.lastSweep.Store(now().UnixNano())
	return l
}

// take spends one request of key's budget when spend is set and one is
// left. It reports whether one was left and, if not, how long until one is.
func (l *Limiter) take(key string, spend bool) (ok bool, retry time.Duration) {
	now := l.now().UnixNano()
	l.maybeSweep(now)
	h := maphash.String(l.seed, key)
	sh := &l.shards[h%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	tat := max(sh.tat[h], now)
	next := tat + l.interval
	if next-now > l.period {
		return false, time.Duration(next - now - l.period)
	}
	if spend {
		sh.tat[h] = next
	}
	return true, 0
}

// Allow spends one request of key's budget, or reports how long until one
// is available. A nil Limiter allows everything. It is core.Limiter, for the
// Issuer's per-user limit.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	return l.take(key, true)
}

// reserve spends one request of key's budget like Allow; refund gives it
// back (the request turned out not to count against this limit).
func (l *Limiter) reserve(key string) (refund func(), retry time.Duration) {
	ok, retry := l.take(key, true)
	if !ok {
		return nil, retry
	}
	return func() {
		h := maphash.String(l.seed, key)
		sh := &l.shards[h%limiterShards]
		sh.mu.Lock()
		defer sh.mu.Unlock()
		if tat, ok := sh.tat[h]; ok {
			sh.tat[h] = tat - l.interval
		}
	}, 0
}

// exhausted reports, without spending, whether key has no request left, and
// when it will have one.
func (l *Limiter) exhausted(key string) (bool, time.Duration) {
	ok, retry := l.take(key, false)
	return !ok, retry
}

// spend takes one request from key's budget, if any is left.
func (l *Limiter) spend(key string) { l.take(key, true) }

// maybeSweep drops full buckets once per period.
func (l *Limiter) maybeSweep(now int64) {
	last := l.lastSweep.Load()
	if now-last < l.period || !l.sweeping.TryLock() {
		return
	}
	defer l.sweeping.Unlock()
	if !l.lastSweep.CompareAndSwap(last, now) {
		return
	}
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n := 0
		for _, tat := range sh.tat {
			if tat > now {
				n++
			}
		}
		keep := make(map[uint64]int64, n)
		for h, tat := range sh.tat {
			if tat > now {
				keep[h] = tat
			}
		}
		sh.tat = keep
		sh.mu.Unlock()
	}
}

// keys counts the buckets held, for tests.
func (l *Limiter) keys() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.tat)
		sh.mu.Unlock()
	}
	return n
}

// retryAfterSeconds is a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
