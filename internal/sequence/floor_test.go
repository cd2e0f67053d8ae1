package sequence_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/sequence"
)

// fakeClock is a clock the test sets, in microseconds since 1970.
type fakeClock struct{ us atomic.Int64 }

func (c *fakeClock) now() time.Time { return time.UnixMicro(c.us.Load()) }

// flooredStores returns one fresh store of each kind with the clock floor
// on the given clock.
func flooredStores(t *testing.T, c *fakeClock) map[string]sequence.Store {
	t.Helper()
	url := mustDatabase(t)
	floor := sequence.ClockFloor(c.now)
	return map[string]sequence.Store{
		"postgres":                 mustPostgres(t, url, sequence.PostgresOptions{Floor: floor}),
		"postgres-no-group-commit": mustPostgres(t, url, sequence.PostgresOptions{Floor: floor, DisableGroupCommit: true}),
		"bolt":                     mustBolt(t, "", sequence.BoltOptions{Floor: floor}),
	}
}

// TestClockFloor checks max(h, floor-1)+1 on each store: a new user starts
// at the floor, a user above the floor goes on from its high, a clock going
// back changes nothing, and a clock moving past the high lifts the next
// number to it.
func TestClockFloor(t *testing.T) {
	t.Parallel()
	var c fakeClock
	const t0 = 1_764_460_800_000_000 // 2025-11-30T00:00:00Z in µs
	for name, s := range flooredStores(t, &c) {
		t.Run(name, func(t *testing.T) {
			app := "app-" + name
			c.us.Store(t0)
			steps := []struct {
				clock int64
				user  string
				want  uint64
			}{
				{t0, "alice", t0},                 // new user: the floor itself
				{t0, "alice", t0 + 1},             // same microsecond: high+1
				{t0 - 5_000_000, "alice", t0 + 2}, // clock 5 s back: still high+1
				{t0 + 1000, "alice", t0 + 1000},   // clock past the high: the floor
				{t0 + 1000, "bob", t0 + 1000},     // users are independent
			}
			for _, st := range steps {
				c.us.Store(st.clock)
				if got := mustNext(t, s, app, st.user); got != st.want {
					t.Errorf("clock %d: Next(%s) = %d, want %d", st.clock, st.user, got, st.want)
				}
			}
		})
	}
}

// TestClockFloorConcurrent runs concurrent callers on a clock that stands
// still: however the calls were batched, each user must get exactly
// floor, floor+1, ... (a batch of n on high h gets max(h, floor-1)+1 ...
// +n), no repeats, no gaps; then a jump of the clock lifts everyone.
func TestClockFloorConcurrent(t *testing.T) {
	t.Parallel()
	var c fakeClock
	const t0 = 1_800_000_000_000_000
	for name, s := range flooredStores(t, &c) {
		t.Run(name, func(t *testing.T) {
			app := "app-" + name
			c.us.Store(t0)
			calls := hammer(t, []sequence.Store{s}, app, 32, 2000, 10)
			values := checkCalls(t, calls)
			for u, vs := range values {
				for i, v := range vs {
					if v != t0+uint64(i) {
						t.Fatalf("%s: value %d is %d, want %d (floor %d + %d)", u, i, v, t0+uint64(i), t0, i)
					}
				}
			}
			c.us.Store(t0 + 10_000_000)
			for u := range values {
				if got := mustNext(t, s, app, u); got != t0+10_000_000 {
					t.Errorf("%s after the clock moved on: %d, want %d", u, got, t0+10_000_000)
				}
			}
		})
	}
}

// TestClockFloorReplacesLostStore is the point of the floor: a store that
// lost its data (here: a fresh one) still hands out numbers above every
// number handed out before, because those were at most the time of their
// commit.
func TestClockFloorReplacesLostStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	floor := sequence.ClockFloor(time.Now)
	old := mustBolt(t, dir+"/old.db", sequence.BoltOptions{Floor: floor})
	var high uint64
	for range 100 {
		high = mustNext(t, old, "app", "u")
	}
	lost := mustBolt(t, dir+"/new.db", sequence.BoltOptions{Floor: floor})
	if got := mustNext(t, lost, "app", "u"); got <= high {
		t.Errorf("a new store handed out %d, not above the lost store's %d", got, high)
	}
	if high >= 1<<53 {
		t.Errorf("%d is not below 2^53", high)
	}
}
