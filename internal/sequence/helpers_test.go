package sequence_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/internal/sequence"
	"github.com/authserver-dev/authserver/migrations"
)

// mustDatabase returns a fresh database with the schema applied, on the
// package's shared PostgreSQL.
func mustDatabase(tb testing.TB) string {
	tb.Helper()
	return pgtest.DBFrom(tb, "migrated", migrate)
}

// mustOwnDatabase is mustDatabase on a throwaway server of the test's own,
// for the tests that stop or kill it.
func mustOwnDatabase(tb testing.TB) (*pgtest.Cluster, string) {
	tb.Helper()
	c, url := pgtest.New(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := migrate(ctx, url); err != nil {
		tb.Fatal(err)
	}
	return c, url
}

func migrate(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrations.Up(ctx, pool)
}

func mustPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	return pgtest.Pool(tb, url)
}

// mustPostgres returns a store on its own pool, closed when the test ends.
func mustPostgres(tb testing.TB, url string, opts sequence.PostgresOptions) *sequence.Postgres {
	tb.Helper()
	s := sequence.NewPostgres(mustPool(tb, url), opts)
	tb.Cleanup(func() { s.Close() }) // before the pool's cleanup (LIFO)
	return s
}

func mustBolt(tb testing.TB, path string, opts sequence.BoltOptions) *sequence.Bolt {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "seq.db")
	}
	s, err := sequence.OpenBolt(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func mustNext(tb testing.TB, s sequence.Store, app, user string) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := s.Next(ctx, app, user)
	if err != nil {
		tb.Fatalf("Next(%q, %q): %v", app, user, err)
	}
	return v
}

// dbSequence reads a user's committed sequence straight from the table.
func dbSequence(tb testing.TB, pool *pgxpool.Pool, app, user string) uint64 {
	tb.Helper()
	var v int64
	err := pool.QueryRow(context.Background(),
		"select sequence from sequences where application_key = $1 and user_id = $2", app, user).Scan(&v)
	if err != nil {
		tb.Fatalf("reading %s/%s: %v", app, user, err)
	}
	return uint64(v)
}

// call is one observed Next call.
type call struct {
	worker     int
	user       string
	v          uint64
	err        error
	start, end time.Time
}

// hotUser is the one user that half of all calls go to, so batches carry
// several calls for one row and replicas contend on its lock.
const hotUser = "hot"

func pickUser(r *rand.Rand, users int) string {
	if r.IntN(2) == 0 {
		return hotUser
	}
	return fmt.Sprintf("user-%02d", r.IntN(users))
}

// hammer makes total Next calls from workers goroutines, each call on a
// randomly chosen store (replica), and returns them all.
func hammer(tb testing.TB, stores []sequence.Store, app string, workers, total, users int) []call {
	tb.Helper()
	var (
		mu    sync.Mutex
		calls []call
		wg    sync.WaitGroup
	)
	for w := range workers {
		n := total / workers
		if w < total%workers {
			n++
		}
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			local := make([]call, 0, n)
			for range n {
				u := pickUser(r, users)
				s := stores[r.IntN(len(stores))]
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c := call{worker: w, user: u, start: time.Now()}
				c.v, c.err = s.Next(ctx, app, u)
				c.end = time.Now()
				cancel()
				local = append(local, c)
			}
			mu.Lock()
			calls = append(calls, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return calls
}

// checkCalls asserts the store's promises over a set of calls: no value
// is handed out twice per user; each worker sees strictly increasing values
// per user (its calls are sequential, so each must see the previous one's
// commit); every error wraps ErrUnavailable. It returns the successful
// values per user, sorted.
func checkCalls(tb testing.TB, calls []call) map[string][]uint64 {
	tb.Helper()
	values := map[string][]uint64{}
	seen := map[string]map[uint64]int{}
	last := map[[2]string]uint64{}
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].start.Before(calls[j].start) })
	for _, c := range calls {
		if c.err != nil {
			if !errors.Is(c.err, sequence.ErrUnavailable) {
				tb.Errorf("worker %d, %s: error %v does not wrap ErrUnavailable", c.worker, c.user, c.err)
			}
			continue
		}
		if c.v == 0 {
			tb.Errorf("worker %d, %s: got 0", c.worker, c.user)
		}
		if seen[c.user] == nil {
			seen[c.user] = map[uint64]int{}
		}
		if w, dup := seen[c.user][c.v]; dup {
			tb.Errorf("%s: value %d handed out twice (workers %d and %d)", c.user, c.v, w, c.worker)
		}
		seen[c.user][c.v] = c.worker
		k := [2]string{fmt.Sprint(c.worker), c.user}
		if c.v <= last[k] {
			tb.Errorf("worker %d, %s: got %d after %d", c.worker, c.user, c.v, last[k])
		}
		last[k] = c.v
		values[c.user] = append(values[c.user], c.v)
	}
	for _, vs := range values {
		sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	}
	return values
}

// checkNoGaps asserts that, when nothing failed, each user got exactly
// 1..count: group commit must not lose or skip numbers in healthy operation.
func checkNoGaps(tb testing.TB, values map[string][]uint64, final func(user string) uint64) {
	tb.Helper()
	for u, vs := range values {
		if got := vs[len(vs)-1]; got != uint64(len(vs)) {
			tb.Errorf("%s: %d calls but highest value %d", u, len(vs), got)
		}
		if f := final(u); f != uint64(len(vs)) {
			tb.Errorf("%s: %d calls but the store holds %d", u, len(vs), f)
		}
	}
}
