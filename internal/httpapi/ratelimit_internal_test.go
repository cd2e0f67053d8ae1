package httpapi

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestLimiterForgetsIdleKeys is the attack run's flood of distinct user ids:
// httprate's counters kept every id seen. After a flood, once the period
// has passed, the limiter holds only the keys still active.
func TestLimiterForgetsIdleKeys(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	l := NewLimiter(10, time.Minute, clock.now)
	const flood = 200_000
	for i := range flood {
		if ok, _ := l.Allow("app/user-" + strconv.Itoa(i)); !ok {
			t.Fatalf("first request of key %d refused", i)
		}
		if i%10_000 == 0 {
			clock.add(100 * time.Millisecond) // the flood takes 2 s
		}
	}
	if n := l.keys(); n != flood {
		t.Fatalf("%d keys after the flood, want %d", n, flood)
	}
	heapFlood := heapInUse()

	// A key still limited when the sweep runs must stay limited.
	clock.add(50 * time.Second)
	for range 10 {
		l.Allow("hot")
	}
	clock.add(10 * time.Second)
	// This request triggers the sweep; "hot" has 1.67 requests back.
	if ok, _ := l.Allow("hot"); !ok {
		t.Errorf("hot key: no request back after 10 s")
	}
	if n := l.keys(); n != 1 {
		t.Errorf("%d keys a period after the flood, want only the active one", n)
	}
	if ok, _ := l.Allow("hot"); ok {
		t.Errorf("a key that spent its budget was forgotten while limited")
	}
	heapAfter := heapInUse()
	t.Logf("heap in use: %d KiB with %d keys, %d KiB after the sweep", heapFlood>>10, flood, heapAfter>>10)
	if heapAfter > heapFlood/2 {
		t.Errorf("heap in use %d KiB after the sweep, %d KiB during the flood: the maps kept their space", heapAfter>>10, heapFlood>>10)
	}
	runtime.KeepAlive(l)
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestLimiterBudget checks the token bucket: N per period, Retry-After from
// the time to the next request, refunds, and exhausted without spending.
func TestLimiterBudget(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	l := NewLimiter(3, time.Minute, clock.now)
	for i := range 3 {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	ok, retry := l.Allow("k")
	if ok || retry != 20*time.Second {
		t.Errorf("4th request: ok %v, retry %v; want refused, 20s", ok, retry)
	}
	if spent, r := l.exhausted("k"); !spent || r != 20*time.Second {
		t.Errorf("exhausted: %v, %v", spent, r)
	}
	if spent, _ := l.exhausted("other"); spent || l.keys() != 1 {
		t.Errorf("exhausted of an unseen key: %v (and it must not be stored: %d keys)", spent, l.keys())
	}
	clock.add(20 * time.Second)
	refund, _ := l.reserve("k")
	if refund == nil {
		t.Fatal("no request back after 20s")
	}
	if refund, _ := l.reserve("k"); refund != nil {
		t.Fatal("two requests back after 20s")
	}
	refund()
	if ok, _ := l.Allow("k"); !ok {
		t.Error("the refunded request is not available")
	}
	if got := retryAfterSeconds(1500 * time.Millisecond); got != 2 {
		t.Errorf("retryAfterSeconds(1.5s) = %d", got)
	}
}
