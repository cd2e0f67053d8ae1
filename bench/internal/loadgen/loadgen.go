// Package loadgen is the closed-loop load generator of the benchmark
// commands (go run ./bench, go run ./bench/seqbench): workers that call
// back to back, an unmeasured warm-up, then a measured window in which
// only the calls that end inside it count.
package loadgen

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what the measured window saw.
type Result struct {
	Calls     int64           // calls that ended in the window without an error
	Errors    int64           // calls that ended in the window with one (context.Canceled aside)
	FirstErr  string          // the first of those errors
	Elapsed   time.Duration   // the window's length
	Latencies []time.Duration // of the counted calls, sorted
}

// Run starts workers goroutines, each calling call(ctx, worker) back to
// back, for warmup (unmeasured) and then dur, and returns what the calls
// that ended in the measured window saw. mark, if set, is called as the
// window opens (true) and closes (false): where a caller reads its own
// counters (CPU time, store statements) for the same window. Run returns
// early, with what it has, once ctx is done.
func Run(ctx context.Context, workers int, warmup, dur time.Duration, call func(ctx context.Context, worker int) error, mark func(start bool)) Result {
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		all       []time.Duration
		calls     atomic.Int64
		errs      atomic.Int64
		firstErr  atomic.Value
		measuring atomic.Bool
		stop      atomic.Bool
	)
	for w := range workers {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<14)
			for !stop.Load() && ctx.Err() == nil {
				t0 := time.Now()
				err := call(ctx, w)
				lat := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				calls.Add(1)
				local = append(local, lat)
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		})
	}
	Sleep(ctx, warmup)
	if mark != nil {
		mark(true)
	}
	measuring.Store(true)
	began := time.Now()
	Sleep(ctx, dur)
	// Calls that end after this are not counted.
	measuring.Store(false)
	elapsed := time.Since(began)
	if mark != nil {
		mark(false)
	}
	stop.Store(true)
	wg.Wait()
	slices.Sort(all)
	r := Result{Calls: calls.Load(), Errors: errs.Load(), Elapsed: elapsed, Latencies: all}
	r.FirstErr, _ = firstErr.Load().(string)
	return r
}

// Percentile is the p-quantile (0 to 1) of sorted durations; 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}

// Sleep waits d or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
