package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/authserver-dev/authserver/migrations"
)

// Migrate applies the Postgres migrations at url, or with status only
// reports the schema version, writing its progress to out.
func Migrate(ctx context.Context, url string, status bool, out io.Writer) error {
	pool, err := OpenPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if status {
		cur, latest, err := migrations.Status(ctx, pool)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if cur < latest {
			fmt.Fprintf(out, "at version %d; %d migration(s) pending (latest %d): run authserver migrate\n", cur, latest-cur, latest)
		} else {
			fmt.Fprintf(out, "at version %d (latest)\n", cur)
		}
		return nil
	}
	applied := 0
	version, err := migrations.Migrate(ctx, pool, migrations.Progress{
		Waiting: func() {
			fmt.Fprintln(out, "waiting for another replica's migration to finish (it holds the lock; up to 5 minutes)")
		},
		Applied: func(v int64, file string, d time.Duration) {
			applied++
			fmt.Fprintf(out, "applied %s (version %d) in %s\n", file, v, d.Round(time.Millisecond))
		},
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if applied == 0 {
		fmt.Fprintf(out, "already at version %d\n", version)
	} else {
		fmt.Fprintf(out, "now at version %d\n", version)
	}
	return nil
}
