package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool opens a connection pool on url, closed when the test ends.
func Pool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// shared is the one cluster a test process (a package's test binary) starts
// for the tests that only need a database: test infrastructure, not
// production state. Main closes it.
var shared struct {
	mu        sync.Mutex
	main      bool // Main is running the tests
	c         *Cluster
	err       error
	templates map[string]*template // by the name DBFrom was given
}

// Main runs the package's tests and then closes the shared cluster, if DB
// started one. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	c := shared.c
	shared.mu.Unlock()
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, t := range shared.templates {
			if c.external != nil && t.err == nil {
				_ = c.dropDatabase(ctx, t.name)
			}
		}
		cancel()
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// sharedCluster starts the process's shared cluster on first use.
func sharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		tb.Fatal("pgtest: DB needs the package's TestMain to call pgtest.Main(m), which closes the shared cluster")
	}
	if shared.c == nil && shared.err == nil {
		// Nobody stops or kills the shared cluster: fsync buys nothing.
		shared.c, shared.err = Start(Options{DisableFsync: true})
	}
	if shared.err != nil {
		fatalStart(tb, shared.err)
	}
	return shared.c
}

// DB returns the URL of a fresh, empty database on the package's shared
// cluster (started once per test process). The database is the test's
// alone; the server is not: a test that stops, kills or restarts the server
// uses New instead.
func DB(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, sharedCluster(tb), "")
}

// DBFrom is DB for a database that starts as a copy of a template (CREATE
// DATABASE … TEMPLATE): the first call in the process with this name
// creates the template and runs setup on it (for example, applying migrations);
// every call returns a fresh copy.
func DBFrom(tb testing.TB, name string, setup func(ctx context.Context, url string) error) string {
	tb.Helper()
	c := sharedCluster(tb)
	shared.mu.Lock()
	defer shared.mu.Unlock() // serialises copies too: a copy needs the template free of sessions
	if shared.templates == nil {
		shared.templates = map[string]*template{}
	}
	t := shared.templates[name]
	if t == nil {
		t = c.makeTemplate(name, setup)
		shared.templates[name] = t
	}
	if t.err != nil {
		tb.Fatalf("pgtest: template %s: %v", name, t.err)
	}
	return newDatabase(tb, c, t.name)
}

// template is a database DBFrom copies.
type template struct {
	name string // on the server
	err  error  // of its setup
}

func (c *Cluster) makeTemplate(name string, setup func(ctx context.Context, url string) error) *template {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t := &template{name: "tmpl_" + name}
	if c.external != nil {
		t.name += "_" + randomSuffix() // not a leftover of another run
	}
	u, err := c.CreateDatabase(ctx, t.name)
	if err == nil {
		err = setup(ctx, u)
	}
	t.err = err
	return t
}

func fatalStart(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ErrNotFound) {
		tb.Fatalf("%v\nThis test needs a real PostgreSQL server. Install one (Debian/Ubuntu: apt-get install -y postgresql), "+
			"or set %s=postgres://user:password@host:port/db to use an existing server.", err, EnvDatabaseURL)
	}
	tb.Fatalf("pgtest: %v", err)
}

// New starts a throwaway cluster for one test (or uses the server named by
// EnvDatabaseURL), creates a fresh database on it, and returns the cluster
// and the database's URL. Everything is removed when the test ends. It is
// for the tests that stop, kill or restart the server; the others share
// one cluster through DB.
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
	if err != nil {
		fatalStart(tb, err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return c, newDatabase(tb, c, "")
}

// newDatabase creates a database for one test, empty or a copy of template.
// A throwaway cluster disappears with its databases; an external server
// keeps them unless they are dropped.
func newDatabase(tb testing.TB, c *Cluster, template string) string {
	tb.Helper()
	name := databaseName(tb.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, err := c.createDatabase(ctx, name, template)
	if err != nil {
		tb.Fatal(err)
	}
	if c.external != nil {
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.dropDatabase(ctx, name); err != nil {
				tb.Errorf("%v", err)
			}
		})
	}
	return url
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
	b.WriteByte('_')
	b.WriteString(randomSuffix())
	return b.String()
}

func randomSuffix() string {
	var suffix [6]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(suffix[:])
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
