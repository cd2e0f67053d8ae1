package migrations_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3/lock"

	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func mustPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	return pgtest.Pool(tb, url)
}

// Four replicas starting at once: all must succeed (without the lock, the
// losers fail with "relation already exists" or a duplicate version row),
// and the schema must be applied exactly once.
func TestUpConcurrentReplicas(t *testing.T) {
	url := pgtest.DB(t)

	// goose logs through the standard logger unless told otherwise.
	var logged bytes.Buffer
	defer log.SetOutput(log.Writer())
	log.SetOutput(&logged)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		pool := mustPool(t, url) // one pool per replica
		wg.Go(func() { errs[i] = migrations.Up(ctx, pool) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if logged.Len() != 0 {
		t.Errorf("goose logged:\n%s", logged.String())
	}

	pool := mustPool(t, url)
	var applied int
	if err := pool.QueryRow(ctx, "select count(*) from goose_db_version where version_id = 1 and is_applied").Scan(&applied); err != nil || applied != 1 {
		t.Errorf("migration 1 recorded %d times (%v), want once", applied, err)
	}
	var table *string
	if err := pool.QueryRow(ctx, "select to_regclass('sequences')::text").Scan(&table); err != nil || table == nil {
		t.Fatalf("table sequences missing after Up: %v", err)
	}
	if _, err := pool.Exec(ctx, "insert into sequences values ('a', 'u', 1)"); err != nil {
		t.Errorf("insert a valid row: %v", err)
	}
	if _, err := pool.Exec(ctx, "insert into sequences values ('a', 'u', 2)"); err == nil {
		t.Error("duplicate (application_key, user_id) accepted")
	}
	if _, err := pool.Exec(ctx, "insert into sequences values ('a', 'v', -1)"); err == nil {
		t.Error("negative sequence accepted")
	}
	if _, err := pool.Exec(ctx, "insert into sequences values ('a', NULL, 1)"); err == nil {
		t.Error("NULL user_id accepted")
	}

	// Up on an up-to-date database is a no-op.
	if err := migrations.Up(ctx, pool); err != nil {
		t.Errorf("second Up: %v", err)
	}
}

func TestUpUnreachable(t *testing.T) {
	c, url := pgtest.New(t)
	pool := mustPool(t, url)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := migrations.Up(ctx, pool); err == nil {
		t.Fatal("Up against a stopped server succeeded")
	}
}

// TestMigrateReports: Migrate says when it waits for another session's lock,
// reports each migration it applies and the version reached; Status reads the
// version without migrating.
func TestMigrateReports(t *testing.T) {
	url := pgtest.DB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool := mustPool(t, url)
	if cur, latest, err := migrations.Status(ctx, pool); err != nil || cur != 0 || latest != 1 {
		t.Fatalf("Status on a new database = %d, %d, %v; want 0, 1", cur, latest, err)
	}

	// Another replica holds the lock.
	holder, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", lock.DefaultLockID); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	var applied []string
	type result struct {
		version int64
		err     error
	}
	done := make(chan result, 1)
	other := mustPool(t, url) // the migrating replica's own pool
	go func() {
		v, err := migrations.Migrate(ctx, other, migrations.Progress{
			Waiting: func() { close(waiting) },
			Applied: func(v int64, file string, d time.Duration) { applied = append(applied, fmt.Sprintf("%d %s", v, file)) },
		})
		done <- result{v, err}
	}()
	select {
	case <-waiting:
	case r := <-done:
		t.Fatalf("Migrate returned %+v while another session held the lock, without saying it waits", r)
	case <-time.After(20 * time.Second):
		t.Fatal("Migrate did not report waiting for the lock")
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock($1)", lock.DefaultLockID); err != nil {
		t.Fatal(err)
	}
	holder.Release()
	r := <-done
	if r.err != nil || r.version != 1 {
		t.Fatalf("Migrate = %d, %v; want version 1", r.version, r.err)
	}
	if want := []string{"1 001_sequences.sql"}; !slices.Equal(applied, want) {
		t.Errorf("applied %q, want %q", applied, want)
	}

	applied = nil
	v, err := migrations.Migrate(ctx, pool, migrations.Progress{
		Waiting: func() { t.Error("waiting reported with no lock held") },
		Applied: func(v int64, file string, d time.Duration) { applied = append(applied, file) },
	})
	if err != nil || v != 1 || len(applied) != 0 {
		t.Errorf("second Migrate = %d, %v, applied %q; want 1 and nothing applied", v, err, applied)
	}
	if cur, latest, err := migrations.Status(ctx, pool); err != nil || cur != 1 || latest != 1 {
		t.Errorf("Status after Migrate = %d, %d, %v; want 1, 1", cur, latest, err)
	}
}
