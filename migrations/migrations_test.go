package migrations_test

import (
	"bytes"
	"context"
	"log"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/migrations"
)

func mustPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// Four replicas starting at once: all must succeed (without the lock, the
// losers fail with "relation already exists" or a duplicate version row),
// and the schema must be applied exactly once.
func TestUpConcurrentReplicas(t *testing.T) {
	_, url := pgtest.New(t)

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
