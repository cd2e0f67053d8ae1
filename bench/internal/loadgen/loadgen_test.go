package loadgen

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsOnlyTheWindow(t *testing.T) {
	var inWindow atomic.Bool
	var marks []bool
	var failures atomic.Int64
	r := Run(context.Background(), 3, 30*time.Millisecond, 60*time.Millisecond, func(ctx context.Context, w int) error {
		time.Sleep(time.Millisecond)
		if w == 2 && inWindow.Load() {
			failures.Add(1)
			return errors.New("worker 2 fails")
		}
		return nil
	}, func(start bool) {
		marks = append(marks, start)
		inWindow.Store(start)
	})
	if !slices.Equal(marks, []bool{true, false}) {
		t.Errorf("mark calls %v, want [true false]", marks)
	}
	if r.Calls == 0 || int64(len(r.Latencies)) != r.Calls {
		t.Errorf("%d calls with %d latencies", r.Calls, len(r.Latencies))
	}
	if r.Errors == 0 || r.Errors > failures.Load() || r.FirstErr != "worker 2 fails" {
		t.Errorf("errors %d (of %d failures in the window), first %q", r.Errors, failures.Load(), r.FirstErr)
	}
	if r.Elapsed < 60*time.Millisecond {
		t.Errorf("window %v, want at least 60ms", r.Elapsed)
	}
	if !slices.IsSorted(r.Latencies) {
		t.Error("latencies not sorted")
	}
}

func TestRunIgnoresCanceledAndStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() {
		done <- Run(ctx, 2, 0, time.Hour, func(ctx context.Context, _ int) error {
			<-ctx.Done()
			return ctx.Err()
		}, nil)
	}()
	cancel()
	select {
	case r := <-done:
		if r.Errors != 0 || r.Calls != 0 {
			t.Errorf("a canceled call counted: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was canceled")
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := Percentile(d, .5); p != 5 {
		t.Errorf("p50 = %v", p)
	}
	if p := Percentile(d, .99); p != 9 {
		t.Errorf("p99 = %v", p)
	}
	if p := Percentile(nil, .5); p != 0 {
		t.Errorf("p50 of nothing = %v", p)
	}
}
