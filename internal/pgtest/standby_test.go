package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/servertest"
)

// TestStandbyFailover makes a standby, checks that it streams the
// primary's commits and refuses writes, kills the primary, promotes the
// standby and writes to it.
func TestStandbyFailover(t *testing.T) {
	t.Parallel()
	c, url, primary := newSeeded(t, "1")
	db := dbOf(url)
	s := NewStandby(t, c)
	if s.HostPort() == c.HostPort() {
		t.Fatalf("standby and primary share %s", s.HostPort())
	}
	mustExec(t, primary, "insert into t values (2)")

	standby := mustConnect(t, s.URL(db))
	if err := servertest.Poll(30*time.Second, "the standby sees the second row", func() bool {
		return mustQueryString(t, standby, "select count(*)::text from t") == "2"
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.Exec(context.Background(), "insert into t values (3)"); err == nil {
		t.Error("the standby accepted a write before promotion")
	}

	if err := c.Kill9(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	mustExec(t, standby, "insert into t values (3)")
	if got := mustQueryString(t, standby, "select string_agg(v::text, ',' order by v) from t"); got != "1,2,3" {
		t.Errorf("after promotion t = %s, want 1,2,3", got)
	}
}

// TestDumpRestore restores a dump taken before a change: the change is gone.
func TestDumpRestore(t *testing.T) {
	t.Parallel()
	c, url, conn := newSeeded(t, "1")
	db := dbOf(url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dump, err := c.Dump(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "update t set v = 2")
	conn.Close(ctx)
	if err := c.Restore(ctx, db, dump); err != nil {
		t.Fatal(err)
	}
	if got := mustQueryString(t, mustConnect(t, url), "select v::text from t"); got != "1" {
		t.Errorf("after the restore v = %s, want 1", got)
	}
}
