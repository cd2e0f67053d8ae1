package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func mustConnect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newSeeded is New with a table t holding one row v, and a connection.
func newSeeded(t *testing.T, v string) (*Cluster, string, *pgx.Conn) {
	t.Helper()
	c, url := New(t)
	conn := mustConnect(t, url)
	mustExec(t, conn, "create table t (v int); insert into t values ("+v+")")
	return c, url, conn
}

// dbOf is the database name in a URL New returned.
func dbOf(url string) string { return url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")] }

func mustQueryString(tb testing.TB, conn *pgx.Conn, sql string) string {
	tb.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return s
}

func mustExec(tb testing.TB, conn *pgx.Conn, sql string) {
	tb.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	c, url := New(t)
	conn := mustConnect(t, url)

	var one int
	if err := conn.QueryRow(context.Background(), "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
	db := mustQueryString(t, conn, "select current_database()")
	if !strings.HasPrefix(db, "t_testnew_") || !strings.HasSuffix(url, "/"+db+"?sslmode=disable") {
		t.Errorf("database %q, url %q: want a fresh t_testnew_* database named in the URL", db, url)
	}
	if got := mustQueryString(t, conn, "show fsync"); got != "on" {
		t.Errorf("fsync = %s, want on by default", got)
	}
	if got := mustQueryString(t, conn, "show listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %s, want 127.0.0.1 only", got)
	}

	u2, err := c.CreateDatabase(context.Background(), "second")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustQueryString(t, mustConnect(t, u2), "select current_database()"); got != "second" {
		t.Errorf("CreateDatabase URL connects to %q, want second", got)
	}
}

func TestStopStart(t *testing.T) {
	t.Parallel()
	c, url, conn := newSeeded(t, "42")
	conn.Close(context.Background())

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, url); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped cluster")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil {
		t.Error("second Start on a running cluster succeeded")
	}
	conn = mustConnect(t, url)
	if got := mustQueryString(t, conn, "select v::text from t"); got != "42" {
		t.Errorf("after restart v = %s, want 42", got)
	}
}

func TestKill9Start(t *testing.T) {
	t.Parallel()
	c, url, setup := newSeeded(t, "7")

	// Idle sessions are postmaster children that must be gone before a
	// restart can succeed.
	held := []*pgx.Conn{setup}
	for range 3 {
		held = append(held, mustConnect(t, url))
	}
	if err := c.Kill9(); err != nil {
		t.Fatal(err)
	}
	if left, err := processesIn(c.data); err != nil || len(left) != 0 {
		t.Fatalf("after Kill9, processes still in the data directory: %v, %v", left, err)
	}
	if _, err := os.Stat(c.data + "/postmaster.pid"); err != nil {
		t.Errorf("postmaster.pid should survive a kill -9 (so recovery is exercised): %v", err)
	}
	for _, conn := range held {
		if _, err := conn.Exec(context.Background(), "select 1"); err == nil {
			t.Error("a session survived kill -9")
		}
	}
	if err := c.Kill9(); err == nil {
		t.Error("Kill9 on a dead cluster succeeded")
	}

	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	conn := mustConnect(t, url)
	if got := mustQueryString(t, conn, "select v::text from t"); got != "7" {
		t.Errorf("after crash recovery v = %s, want 7", got)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	t.Parallel()
	c, err := Start(Options{DisableFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	conn := mustConnect(t, c.URL(""))
	if got := mustQueryString(t, conn, "show fsync"); got != "off" {
		t.Errorf("fsync = %s with DisableFsync", got)
	}
	pid := c.proc.pid
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory still there after Close: %v", err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster %d still exists after Close", pid)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestExternal(t *testing.T) {
	// Not parallel: t.Setenv.
	host, _ := New(t)
	t.Setenv(EnvDatabaseURL, host.URL(""))

	c, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{"Stop": c.Stop, "Start": c.Start, "Kill9": c.Kill9} {
		if err := op(); !errors.Is(err, ErrExternal) {
			t.Errorf("%s on an external server: %v, want ErrExternal", name, err)
		}
	}

	var db string
	t.Run("sub", func(t *testing.T) {
		_, url := New(t)
		conn := mustConnect(t, url)
		db = mustQueryString(t, conn, "select current_database()")
		if !strings.HasPrefix(db, "t_testexternal_sub_") {
			t.Errorf("database %q", db)
		}
		conn.Close(context.Background())
	})
	// The subtest's cleanup must have dropped its database from the
	// external server.
	conn := mustConnect(t, host.URL(""))
	var n int
	if err := conn.QueryRow(context.Background(), "select count(*) from pg_database where datname = $1", db).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %q left behind on the external server (count %d, %v)", db, n, err)
	}
}

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()        {}
func (f *fatalTB) Cleanup(func()) {}
func (f *fatalTB) Fatalf(format string, a ...any) {
	f.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func TestMissingBinariesFailsWithInstructions(t *testing.T) {
	t.Setenv(EnvDatabaseURL, "")
	empty := t.TempDir()
	if _, err := Start(Options{BinDir: empty}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start with no binaries: %v, want ErrNotFound", err)
	}

	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		newWithOptions(tb, Options{BinDir: empty})
	}()
	<-done
	for _, want := range []string{"apt-get install -y postgresql", EnvDatabaseURL, empty} {
		if !strings.Contains(tb.msg, want) {
			t.Errorf("failure message %q does not mention %q", tb.msg, want)
		}
	}
}

func TestDatabaseName(t *testing.T) {
	a, b := databaseName("TestX/sub case"), databaseName("TestX/sub case")
	if a == b {
		t.Errorf("two names for one test are equal: %s", a)
	}
	if !strings.HasPrefix(a, "t_testx_sub_case_") {
		t.Errorf("name %q does not say which test made it", a)
	}
	long := databaseName(strings.Repeat("TestLong", 40))
	if len(long) > 63 {
		t.Errorf("name %q is %d bytes, over PostgreSQL's 63", long, len(long))
	}
}

func TestMain(m *testing.M) { Main(m) }

// TestDBSharesOneCluster: DB hands every test its own database on one
// server; DBFrom's copies start with what setup made, and setup runs once.
func TestDBSharesOneCluster(t *testing.T) {
	a, b := DB(t), DB(t)
	if a == b {
		t.Fatalf("two DB calls returned the same database %s", a)
	}
	ua, ub := mustParseURL(t, a), mustParseURL(t, b)
	if ua.Host != ub.Host {
		t.Errorf("DB started two servers: %s and %s", ua.Host, ub.Host)
	}
	ctx := context.Background()
	if _, err := mustConnect(t, a).Exec(ctx, "create table only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := mustConnect(t, b).QueryRow(ctx, "select count(*) from pg_tables where tablename = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Errorf("a table made in one test's database is in another's: %d %v", n, err)
	}

	setups := 0
	setup := func(ctx context.Context, url string) error {
		setups++
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "create table seeded (x int); insert into seeded values (42)")
		return err
	}
	for i := range 2 {
		url := DBFrom(t, "seeded", setup)
		if u := mustParseURL(t, url); u.Host != ua.Host {
			t.Errorf("DBFrom used another server: %s", u.Host)
		}
		conn := mustConnect(t, url)
		var x int
		if err := conn.QueryRow(ctx, "select x from seeded").Scan(&x); err != nil || x != 42 {
			t.Fatalf("copy %d: seeded row %d %v", i, x, err)
		}
		if _, err := conn.Exec(ctx, "insert into seeded values (1)"); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "select count(*) from seeded").Scan(&x); err != nil || x != 2 {
			t.Errorf("copy %d holds %d rows, want its own 2", i, x)
		}
	}
	if setups != 1 {
		t.Errorf("setup ran %d times, want once", setups)
	}
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
