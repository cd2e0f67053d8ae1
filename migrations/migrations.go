// Package migrations holds the PostgreSQL schema as goose migrations,
// embedded in the binary so that a deployment is one file.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var fsys embed.FS

// lockID is the advisory lock goose's session locker takes (its default).
const lockID = lock.DefaultLockID

// Progress receives what Migrate does, for the migrate command's output.
// Either function may be nil.
type Progress struct {
	// Waiting is called once, before waiting, when another session (another
	// replica's migration) holds the migration lock.
	Waiting func()
	// Applied is called after each migration applied, with its version and
	// file name.
	Applied func(version int64, file string, d time.Duration)
}

// Up applies every migration not yet applied to the database behind pool.
// It is Migrate without progress reports.
func Up(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := Migrate(ctx, pool, Progress{})
	return err
}

// Migrate applies every migration not yet applied to the database behind
// pool and returns the version the database is at afterwards.
//
// It is safe to call from several replicas starting at once: a PostgreSQL
// session-level advisory lock lets one of them migrate while the others
// wait (polling once a second, for up to five minutes) and then find
// nothing left to do. The lock is released by the server if the process
// holding it dies, so a crashed migration cannot wedge the others.
//
// goose's own logging is discarded: the caller reports through p.
func Migrate(ctx context.Context, pool *pgxpool.Pool, p Progress) (version int64, err error) {
	locker, err := lock.NewPostgresSessionLocker(
		// The default polls every 5 s; a waiting replica would sit idle for
		// that long after a migration that takes milliseconds.
		lock.WithLockTimeout(1, 300),
		lock.WithLockID(lockID),
	)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	provider, closeDB, err := newProvider(pool, goose.WithSessionLocker(locker))
	if err != nil {
		return 0, err
	}
	defer closeDB()
	if p.Waiting != nil && lockHeld(ctx, pool) {
		p.Waiting()
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	for _, r := range results {
		if p.Applied != nil {
			p.Applied(r.Source.Version, filepath.Base(r.Source.Path), r.Duration)
		}
	}
	current, _, err := provider.GetVersions(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	return current, nil
}

// Status returns the version the database is at and the latest version
// this binary knows; current < latest means migrations are pending.
func Status(ctx context.Context, pool *pgxpool.Pool) (current, latest int64, err error) {
	provider, closeDB, err := newProvider(pool)
	if err != nil {
		return 0, 0, err
	}
	defer closeDB()
	current, latest, err = provider.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrations: %w", err)
	}
	return current, latest, nil
}

func newProvider(pool *pgxpool.Pool, opts ...goose.ProviderOption) (*goose.Provider, func(), error) {
	// Closing this *sql.DB does not close the pool, which stays the caller's.
	db := stdlib.OpenDBFromPool(pool)
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		append(opts, goose.WithSlog(slog.New(slog.DiscardHandler)))...)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	return provider, func() { db.Close() }, nil
}

// lockHeld reports whether another session holds the migration lock now,
// by taking and at once releasing it. A false answer may be stale by the
// time goose asks; it only decides whether to say "waiting".
func lockHeld(ctx context.Context, pool *pgxpool.Pool) bool {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockID).Scan(&got); err != nil {
		return false
	}
	if got {
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", lockID)
	}
	return !got
}
