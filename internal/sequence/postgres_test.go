package sequence_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/sequence"
)

// batchLog records what an Observer is told.
type batchLog struct {
	mu     sync.Mutex
	sizes  []int
	stores map[string]int
	errs   int
}

func (l *batchLog) observer() sequence.Observer {
	return sequence.Observer{Batch: func(store string, size int, d time.Duration, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.stores == nil {
			l.stores = map[string]int{}
		}
		l.stores[store]++
		l.sizes = append(l.sizes, size)
		if err != nil {
			l.errs++
		}
	}}
}

func (l *batchLog) summary() (batches, calls, largest, errs int, stores map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sizes {
		calls += s
		largest = max(largest, s)
	}
	return len(l.sizes), calls, largest, l.errs, l.stores
}

// healthy is StatementTimeout for tests that assert no call fails. The
// tests run in parallel, several PostgreSQL servers on one disk, and a
// crash test's recovery can stall everyone's fsyncs for seconds: that is
// not what these tests are about.
const healthy = 30 * time.Second

// Two replicas on one database, 64 goroutines, 10,000 calls over 50 users
// and one hot user.
func TestPostgresConcurrentReplicas(t *testing.T) {
	t.Parallel()
	url := mustDatabase(t)
	pool := mustPool(t, url)
	for _, tc := range []struct {
		name string
		a, b sequence.PostgresOptions
	}{
		{"group-commit",
			sequence.PostgresOptions{StatementTimeout: healthy},
			sequence.PostgresOptions{StatementTimeout: healthy}},
		{"group-commit-4-in-flight",
			sequence.PostgresOptions{StatementTimeout: healthy, MaxInFlight: 4},
			sequence.PostgresOptions{StatementTimeout: healthy, MaxInFlight: 4, MaxBatch: 7}},
		{"mixed",
			sequence.PostgresOptions{StatementTimeout: healthy},
			sequence.PostgresOptions{StatementTimeout: healthy, DisableGroupCommit: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := "app-" + tc.name
			replicas := []sequence.Store{mustPostgres(t, url, tc.a), mustPostgres(t, url, tc.b)}
			calls := hammer(t, replicas, app, 64, 10_000, 50)
			failed := 0
			for _, c := range calls {
				if c.err != nil {
					failed++
				}
			}
			values := checkCalls(t, calls)
			if failed > 0 {
				t.Fatalf("%d of %d calls failed against a healthy database", failed, len(calls))
			}
			if len(values) != 51 {
				t.Errorf("%d users served, want 51", len(values))
			}
			checkNoGaps(t, values, func(u string) uint64 { return dbSequence(t, pool, app, u) })
		})
	}
}

func TestPostgresGroupCommitBatches(t *testing.T) {
	t.Parallel()
	url := mustDatabase(t)
	for _, disable := range []bool{false, true} {
		var log batchLog
		s := mustPostgres(t, url, sequence.PostgresOptions{DisableGroupCommit: disable, Observer: log.observer(), StatementTimeout: healthy})
		app := "app"
		if disable {
			app = "app-no-group-commit"
		}
		const total = 2000
		calls := hammer(t, []sequence.Store{s}, app, 64, total, 50)
		checkCalls(t, calls)
		batches, served, largest, errs, names := log.summary()
		t.Logf("DisableGroupCommit=%v: %d calls in %d statements, largest %d", disable, served, batches, largest)
		if served != total || errs != 0 || names["postgres"] != batches || len(names) != 1 {
			t.Errorf("observer saw %d calls, %d errors, stores %v; want %d, 0, only postgres", served, errs, names, total)
		}
		if !disable && largest < 2 {
			t.Errorf("64 concurrent callers never shared a statement (largest batch %d)", largest)
		}
		if disable && largest != 1 {
			t.Errorf("with group commit disabled, a statement served %d calls", largest)
		}
	}
}

// A caller that gives up while its batch waits gets an error promptly; its
// number is used up (the statement still commits) but never handed out.
func TestPostgresCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	url := mustDatabase(t)
	pool := mustPool(t, url)
	for _, disable := range []bool{false, true} {
		app := "app"
		if disable {
			app = "app-no-group-commit"
		}
		s := mustPostgres(t, url, sequence.PostgresOptions{DisableGroupCommit: disable, StatementTimeout: 10 * time.Second})
		if got := mustNext(t, s, app, "u"); got != 1 {
			t.Fatalf("first value %d", got)
		}

		// Another session holds the row lock, so the statement waits.
		ctx := context.Background()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "select 1 from sequences where application_key = $1 and user_id = 'u' for update", app); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		start := time.Now()
		_, err = s.Next(cctx, app, "u")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, sequence.ErrUnavailable) {
			t.Errorf("Next blocked past its deadline: %v, want DeadlineExceeded and ErrUnavailable", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Next took %v to notice its deadline of 200ms", d)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}

		got := mustNext(t, s, app, "u")
		if disable {
			// Cancelling the query's context cancels the statement.
			if got != 2 && got != 3 {
				t.Errorf("value after an abandoned call = %d, want 2 (cancelled) or 3 (committed)", got)
			}
		} else if got != 3 {
			// The batch had been sent: it commits 2 for nobody.
			t.Errorf("value after an abandoned call = %d, want 3 (2 used up by the abandoned call)", got)
		}
	}
}

// The database crashes (kill -9) in the middle of a stream of calls and
// comes back: calls during the outage fail promptly with ErrUnavailable;
// the same Store recovers by itself; nothing is handed out twice; values
// after the crash are above all values before it.
func TestPostgresCrash(t *testing.T) {
	t.Parallel()
	cluster, url := mustOwnDatabase(t)
	const timeout = time.Second
	var log batchLog
	s := mustPostgres(t, url, sequence.PostgresOptions{StatementTimeout: timeout, Observer: log.observer()})
	const app = "app"

	var (
		mu        sync.Mutex
		calls     []call
		successes atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			users := []string{hotUser, hotUser, "a", "b"}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				u := users[(i+w)%len(users)]
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c := call{worker: w, user: u, start: time.Now()}
				c.v, c.err = s.Next(ctx, app, u)
				c.end = time.Now()
				cancel()
				if c.err == nil {
					successes.Add(1)
				} else {
					time.Sleep(5 * time.Millisecond) // a client backing off
				}
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			}
		})
	}
	waitFor := func(n int64, what string) {
		t.Helper()
		target := successes.Load() + n
		deadline := time.Now().Add(30 * time.Second)
		for successes.Load() < target {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: only %d of %d successes within 30s", what, successes.Load(), target)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	waitFor(300, "before the crash")
	killStart := time.Now()
	if err := cluster.Kill9(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	time.Sleep(1500 * time.Millisecond) // the outage
	restartStart := time.Now()
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waitFor(300, "after the restart")
	close(stop)
	wg.Wait()

	values := checkCalls(t, calls)
	var before, after, outageErrs, outageCalls int
	var maxBefore uint64
	minAfter := map[string]uint64{}
	maxBeforeUser := map[string]uint64{}
	for _, c := range calls {
		// StatementTimeout bounds every call, including the ones that
		// queued behind a batch stuck on a dead connection.
		if d := c.end.Sub(c.start); d > timeout+time.Second {
			t.Errorf("a call took %v with StatementTimeout %v", d, timeout)
		}
		switch {
		case c.end.Before(killStart):
			if c.err == nil {
				before++
				maxBefore = max(maxBefore, c.v)
				maxBeforeUser[c.user] = max(maxBeforeUser[c.user], c.v)
			}
		case c.start.After(killed) && c.end.Before(restartStart):
			outageCalls++
			if c.err == nil {
				t.Errorf("a call made while the database was down returned %d", c.v)
			} else {
				outageErrs++
			}
		case c.start.After(restarted):
			if c.err == nil {
				after++
				if m, ok := minAfter[c.user]; !ok || c.v < m {
					minAfter[c.user] = c.v
				}
			}
		}
	}
	t.Logf("%d calls: %d ok before the crash, %d failed during the outage, %d ok after the restart", len(calls), before, outageErrs, after)
	if outageCalls == 0 {
		t.Error("no calls were made during the outage")
	}
	if after == 0 {
		t.Error("no successful calls after the restart: the store did not recover")
	}
	for u, m := range minAfter {
		if m <= maxBeforeUser[u] {
			t.Errorf("%s: value %d after the restart, but %d was handed out before the crash", u, m, maxBeforeUser[u])
		}
	}
	// Everything handed out was committed: the recovered table holds at
	// least the highest value returned.
	pool := mustPool(t, url)
	for u, vs := range values {
		if db := dbSequence(t, pool, app, u); db < vs[len(vs)-1] {
			t.Errorf("%s: handed out %d but the database, after recovery, holds %d", u, vs[len(vs)-1], db)
		}
	}
	if _, _, _, errs, _ := log.summary(); errs == 0 {
		t.Error("the observer saw no failed statements during the outage")
	}
}

func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	cluster, url := mustOwnDatabase(t)
	s := mustPostgres(t, url, sequence.PostgresOptions{StatementTimeout: time.Second})
	mustNext(t, s, "app", "u")
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	if err := s.Ping(ctx); !errors.Is(err, sequence.ErrUnavailable) {
		t.Errorf("Ping with the database down: %v, want ErrUnavailable", err)
	}
	start := time.Now()
	if _, err := s.Next(ctx, "app", "u"); !errors.Is(err, sequence.ErrUnavailable) {
		t.Errorf("Next with the database down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Next with the database down took %v", d)
	}
	if _, err := sequence.OpenPostgres(ctx, url, sequence.PostgresOptions{StatementTimeout: time.Second}); !errors.Is(err, sequence.ErrUnavailable) {
		t.Errorf("OpenPostgres with the database down: %v, want ErrUnavailable", err)
	}
	if _, err := sequence.OpenPostgres(ctx, "postgres://%zz", sequence.PostgresOptions{}); err == nil || errors.Is(err, sequence.ErrUnavailable) {
		t.Errorf("OpenPostgres with a malformed URL: %v, want a configuration error", err)
	}

	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	opened, err := sequence.OpenPostgres(ctx, url, sequence.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	if got := mustNext(t, opened, "app", "u"); got != 2 {
		t.Errorf("after restart got %d, want 2", got)
	}
}

// Close while callers are mid-flight: each either gets a committed value or
// ErrClosed; none hangs and none gets a value twice.
func TestPostgresCloseWhileBusy(t *testing.T) {
	t.Parallel()
	url := mustDatabase(t)
	s := mustPostgres(t, url, sequence.PostgresOptions{StatementTimeout: healthy})
	var (
		mu    sync.Mutex
		calls []call
		wg    sync.WaitGroup
		ok    atomic.Int64
	)
	for w := range 32 {
		wg.Go(func() {
			for {
				c := call{worker: w, user: hotUser, start: time.Now()}
				c.v, c.err = s.Next(context.Background(), "app", hotUser)
				c.end = time.Now()
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				if c.err != nil {
					if !errors.Is(c.err, sequence.ErrClosed) {
						t.Errorf("error other than ErrClosed: %v", c.err)
					}
					return
				}
				ok.Add(1)
			}
		})
	}
	for ok.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	values := checkCalls(t, calls)
	checkNoGaps(t, values, func(string) uint64 { return dbSequence(t, mustPool(t, url), "app", hotUser) })
}
