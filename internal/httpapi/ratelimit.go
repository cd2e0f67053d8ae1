package httpapi

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// limiterShards spreads the keys of one limiter over this many locks.
const limiterShards = 16

// Limiter is a token bucket per key (x/time/rate): N requests per
// Period, with a burst of N. Its memory follows the keys active in the last
// Period, not every key ever seen: a key whose bucket has filled up again
// behaves exactly like a key never seen, so sweeps drop it, and rebuild the
// maps (a Go map never gives back the space of deleted entries). A sweep
// runs on the first request at least one Period after the last one.
type Limiter struct {
	limit  rate.Limit
	burst  int
	period time.Duration
	now    func() time.Time
	seed   maphash.Seed

	lastSweep atomic.Int64 // unix nanoseconds
	sweeping  sync.Mutex
	shards    [limiterShards]limiterShard
}

type limiterShard struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewLimiter returns a limiter of n requests per period, or nil (no limit)
// for n = 0.
func NewLimiter(n int, period time.Duration, now func() time.Time) *Limiter {
	if n == 0 {
		return nil
	}
	l := &Limiter{
		limit:  rate.Limit(float64(n) / period.Seconds()),
		burst:  n,
		period: period,
		now:    now,
		seed:   maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i].m = map[string]*rate.Limiter{}
	}
	l.lastSweep.Store(now().UnixNano())
	return l
}

// with runs f on key's bucket under its shard's lock (so a sweep cannot drop
// a bucket in use), creating the bucket when f may spend from it.
func (l *Limiter) with(key string, create bool, f func(b *rate.Limiter, now time.Time)) {
	now := l.now()
	l.maybeSweep(now)
	sh := &l.shards[maphash.String(l.seed, key)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.m[key]
	if b == nil {
		if !create {
			f(nil, now)
			return
		}
		b = rate.NewLimiter(l.limit, l.burst)
		b.SetBurstAt(now, l.burst) // start full at this clock's now, not time.Now
		sh.m[key] = b
	}
	f(b, now)
}

// Allow spends one request of key's budget, or reports how long until one
// is available. A nil Limiter allows everything. It is core.Limiter, for the
// Issuer's per-user limit.
func (l *Limiter) Allow(key string) (ok bool, retry time.Duration) {
	if l == nil {
		return true, 0
	}
	l.with(key, true, func(b *rate.Limiter, now time.Time) {
		ok, retry = reserve(b, now)
	})
	return ok, retry
}

// reserve spends one request of key's budget like allow; refund gives it
// back (the request turned out not to count against this limit).
func (l *Limiter) reserve(key string) (refund func(), retry time.Duration) {
	var ok bool
	l.with(key, true, func(b *rate.Limiter, now time.Time) {
		ok, retry = reserve(b, now)
	})
	if !ok {
		return nil, retry
	}
	return func() {
		l.with(key, false, func(b *rate.Limiter, now time.Time) {
			if b != nil {
				b.AllowN(now, -1) // a negative spend adds a token back (capped at the burst)
			}
		})
	}, 0
}

// exhausted reports, without spending, whether key has no request left, and
// when it will have one.
func (l *Limiter) exhausted(key string) (bool, time.Duration) {
	var retry time.Duration
	l.with(key, false, func(b *rate.Limiter, now time.Time) {
		if b == nil {
			return
		}
		if t := b.TokensAt(now); t < 1 {
			retry = time.Duration((1 - t) / float64(l.limit) * float64(time.Second))
		}
	})
	return retry > 0, retry
}

// spend takes one request from key's budget, if any is left.
func (l *Limiter) spend(key string) {
	l.with(key, true, func(b *rate.Limiter, now time.Time) { b.AllowN(now, 1) })
}

func reserve(b *rate.Limiter, now time.Time) (bool, time.Duration) {
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// maybeSweep drops full buckets once per period.
func (l *Limiter) maybeSweep(now time.Time) {
	last := l.lastSweep.Load()
	if now.UnixNano()-last < int64(l.period) || !l.sweeping.TryLock() {
		return
	}
	defer l.sweeping.Unlock()
	if !l.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		keep := make(map[string]*rate.Limiter, len(sh.m)/2)
		for k, b := range sh.m {
			if b.TokensAt(now) < float64(l.burst) {
				keep[k] = b
			}
		}
		sh.m = keep
		sh.mu.Unlock()
	}
}

// keys counts the buckets held, for tests.
func (l *Limiter) keys() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// retryAfterSeconds is a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
