package sequence_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authserver-dev/authserver/internal/sequence"
)

// stores returns one fresh store of each kind, by name.
func stores(t *testing.T) map[string]sequence.Store {
	t.Helper()
	url := mustDatabase(t)
	return map[string]sequence.Store{
		"postgres":                 mustPostgres(t, url, sequence.PostgresOptions{}),
		"postgres-no-group-commit": mustPostgres(t, url, sequence.PostgresOptions{DisableGroupCommit: true}),
		"bolt":                     mustBolt(t, "", sequence.BoltOptions{}),
	}
}

func TestSequential(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			// The two Postgres stores share a database: keep them apart.
			app := "app-" + name
			steps := []struct {
				app, user string
				want      uint64
			}{
				{app, "alice", 1},
				{app, "alice", 2},
				{app, "alice", 3},
				{app, "bob", 1}, // users are independent
				{app + "-other", "alice", 1},
				{app, "alice", 4},
				{app, "bob", 2},
			}
			for _, st := range steps {
				if got := mustNext(t, s, st.app, st.user); got != st.want {
					t.Errorf("Next(%s, %s) = %d, want %d", st.app, st.user, got, st.want)
				}
			}
			if err := s.Ping(context.Background()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

func TestInvalidKey(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, k := range [][2]string{{"", "u"}, {"a", ""}, {"a\x00b", "u"}, {"a", "u\x00"}} {
				_, err := s.Next(context.Background(), k[0], k[1])
				if !errors.Is(err, sequence.ErrInvalidKey) || errors.Is(err, sequence.ErrUnavailable) {
					t.Errorf("Next(%q, %q): %v, want ErrInvalidKey only", k[0], k[1], err)
				}
			}
		})
	}
}

func TestCancelledBeforeCall(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := s.Next(ctx, "app-"+name, "u")
			if !errors.Is(err, context.Canceled) || !errors.Is(err, sequence.ErrUnavailable) {
				t.Errorf("Next with a cancelled context: %v, want context.Canceled and ErrUnavailable", err)
			}
			// Nothing was written for the abandoned call.
			if got := mustNext(t, s, "app-"+name, "u"); got != 1 {
				t.Errorf("first value after an abandoned call = %d, want 1", got)
			}
		})
	}
}

func TestNextAfterClose(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			mustNext(t, s, "app-"+name, "u")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			_, err := s.Next(context.Background(), "app-"+name, "u")
			if !errors.Is(err, sequence.ErrClosed) || !errors.Is(err, sequence.ErrUnavailable) {
				t.Errorf("Next after Close: %v, want ErrClosed and ErrUnavailable", err)
			}
			if err := s.Ping(context.Background()); !errors.Is(err, sequence.ErrClosed) {
				t.Errorf("Ping after Close: %v, want ErrClosed", err)
			}
		})
	}
}
