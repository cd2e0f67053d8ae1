// Package migrations holds the PostgreSQL schema as goose migrations,
// embedded in the binary so that a deployment is one file.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var fsys embed.FS

// Up applies every migration not yet applied to the database behind pool.
//
// It is safe to call from several replicas starting at once: a PostgreSQL
// session-level advisory lock lets one of them migrate while the others
// wait (polling once a second, for up to five minutes) and then find
// nothing left to do. The lock is released by the server if the process
// holding it dies, so a crashed migration cannot wedge the others.
//
// goose's own logging is discarded: the caller logs the outcome.
func Up(ctx context.Context, pool *pgxpool.Pool) error {
	locker, err := lock.NewPostgresSessionLocker(
		// The default polls every 5 s; a waiting replica would sit idle for
		// that long after a migration that takes milliseconds.
		lock.WithLockTimeout(1, 300),
	)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// Closing this *sql.DB does not close the pool, which stays the caller's.
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker),
		goose.WithSlog(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}
