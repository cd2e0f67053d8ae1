package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// New starts a throwaway cluster for one test (or uses the server named by
// EnvDatabaseURL), creates a fresh database on it, and returns the cluster
// and the database's URL. Everything is removed when the test ends.
//
// It never skips: a test that needs PostgreSQL and cannot have it fails,
// saying how to install it, so that a missing server cannot pass for a
// green run.
func New(tb testing.TB) (*Cluster, string) {
	tb.Helper()
	return newWithOptions(tb, Options{})
}

func newWithOptions(tb testing.TB, opts Options) (*Cluster, string) {
	tb.Helper()
	c, err := Start(opts)
	if errors.Is(err, ErrNotFound) {
		tb.Fatalf("%v\nThis test needs a real PostgreSQL server. Install one (Debian/Ubuntu: apt-get install -y postgresql), "+
			"or set %s=postgres://user:password@host:port/db to use an existing server.", err, EnvDatabaseURL)
	}
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})

	name := databaseName(tb.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := c.CreateDatabase(ctx, name)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	if c.external != nil {
		// A throwaway cluster disappears with its databases; an external
		// server keeps them unless they are dropped.
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.dropDatabase(ctx, name); err != nil {
				tb.Errorf("%v", err)
			}
		})
	}
	return c, u
}

// databaseName makes a database name that is unique (random suffix) and
// still says which test made it, which helps when looking at an external
// server after a failed run. Names are kept to lower-case letters, digits
// and '_' so they need no quoting, and under PostgreSQL's 63-byte limit.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails on supported platforms
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}

// NewStandby starts a streaming standby of primary for one test (see
// Cluster.StartStandby); it is removed when the test ends.
func NewStandby(tb testing.TB, primary *Cluster) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := primary.StartStandby(ctx)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return s
}
