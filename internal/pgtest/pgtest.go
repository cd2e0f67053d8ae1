// Package pgtest runs throwaway PostgreSQL servers for tests and benchmarks.
//
// Tests talk to a real server, never a mock: the sequence store's promises
// (one atomic statement, row locks taken in one order, nothing handed out
// before it is committed, recovery after the server dies) can only be checked
// against the real thing.
//
// A Cluster is a private postmaster on 127.0.0.1 and a free port, with its
// data directory in a fresh temporary directory, copied from a template
// that initdb makes once and leaves in the system temporary directory
// ($TMPDIR/authserver-pgtest-*, about 30 MB, safe to delete). When running
// as root, the server runs as the "postgres" user. Setting
// AUTHSERVER_TEST_DATABASE_URL points everything at an existing server
// instead; then only the operations that need no control over the server
// process work.
//
// Tests that only need a database share one cluster per test process (DB,
// DBFrom; TestMain calls Main to close it) and get a fresh database each;
// tests that stop, kill or restart the server start their own (New).
//
// For the tests of lost commits, a cluster can also get a streaming
// standby (StartStandby, NewStandby) to promote after killing it, and take
// and restore a pg_dump (Dump, Restore); see standby.go.
package pgtest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// EnvDatabaseURL names the environment variable that, when set, makes Start
// use that server instead of starting one. The URL is used as-is; its
// database is where new databases are created from.
const EnvDatabaseURL = "AUTHSERVER_TEST_DATABASE_URL"

// ErrExternal is returned by the operations that need to control the server
// process (Stop, Start, Kill9) when the cluster is an external server.
var ErrExternal = errors.New("pgtest: stopping, starting or killing the server is unsupported on an external database (" + EnvDatabaseURL + ")")

// ErrNotFound is returned by Start when no PostgreSQL server binaries can be
// found, so callers can tell "not installed" from "failed to start".
var ErrNotFound = errors.New("pgtest: PostgreSQL server binaries (initdb, postgres) not found")

// Options tunes a throwaway cluster. The zero value is what tests want.
type Options struct {
	// DisableFsync turns fsync off, which makes commits cheaper. It only
	// matters for an operating-system crash: a killed postmaster (Kill9)
	// loses nothing either way, because the written data is already in the
	// kernel. Off by default so that benchmarks measure real commits.
	DisableFsync bool

	// BinDir is the directory holding initdb and postgres. Empty means: the
	// directory of initdb on PATH, else the highest /usr/lib/postgresql/*/bin.
	BinDir string
}

// Cluster is one PostgreSQL server: either a throwaway one owned by this
// process or an external one named by EnvDatabaseURL. Its methods are safe
// for concurrent use.
type Cluster struct {
	external *url.URL // non-nil: an external server; the fields below are unused

	dir   string              // temporary root: data directory, socket, log
	data  string              // the data directory
	port  int                 // fixed for the cluster's life so URLs stay valid across restarts
	bin   string              // the postgres binary
	cred  *syscall.Credential // non-nil when running as root: postgres refuses to run as root
	fsync bool

	mu     sync.Mutex
	proc   *process // nil while stopped
	closed bool
}

// process is one run of the postmaster.
type process struct {
	pid  int
	done chan struct{} // closed once the postmaster has exited and been reaped
}

// Start starts a throwaway cluster, or returns one standing for the server
// named by EnvDatabaseURL when that is set.
func Start(opts Options) (*Cluster, error) {
	if raw := os.Getenv(EnvDatabaseURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("pgtest: %s must be a postgres:// URL", EnvDatabaseURL)
		}
		return &Cluster{external: u}, nil
	}

	bins, err := findBinaries(opts.BinDir)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	tmpl, err := templateDir(bins, cred)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{
		dir:   dir,
		data:  filepath.Join(dir, "data"),
		bin:   bins.postgres,
		cred:  cred,
		fsync: !opts.DisableFsync,
	}
	if err := chownTo(dir, cred); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := copyTree(filepath.Join(tmpl, "data"), c.data, cred); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: copying template data directory: %w", err)
	}

	// The free port is found by binding and releasing it, so another
	// process can take it before the postmaster binds: retry with a new one.
	for attempt := 0; ; attempt++ {
		c.port, err = freePort()
		if err == nil {
			err = c.Start()
		}
		if err == nil {
			return c, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "already in use") {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// URL returns the connection URL for database db on this cluster. An empty
// db means the server's default database ("postgres", or the one in
// EnvDatabaseURL).
func (c *Cluster) URL(db string) string {
	if c.external != nil {
		u := *c.external
		if db != "" {
			u.Path = "/" + db
			u.RawPath = ""
		}
		return u.String()
	}
	if db == "" {
		db = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates database name and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	return c.createDatabase(ctx, name, "")
}

// createDatabase creates database name, empty or a copy of template, and
// returns its URL.
func (c *Cluster) createDatabase(ctx context.Context, name, template string) (string, error) {
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := c.exec(ctx, stmt); err != nil {
		return "", fmt.Errorf("pgtest: creating database %q: %w", name, err)
	}
	return c.URL(name), nil
}

// dropDatabase removes database name, disconnecting its sessions. It is how
// tests clean up after themselves on an external server.
func (c *Cluster) dropDatabase(ctx context.Context, name string) error {
	if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: dropping database %q: %w", name, err)
	}
	return nil
}

// exec runs one statement in the server's default database.
func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL(""))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// Start starts the server again after Stop or Kill9, on the same port and
// data directory, and returns once it accepts connections (after crash
// recovery, if it was killed).
func (c *Cluster) Start() error { return c.control(c.startLocked) }

// control runs one of the process operations (Start, Stop, Kill9) under
// the cluster's lock; an external server has no process of ours to run.
func (c *Cluster) control(op func() error) error {
	if c.external != nil {
		return ErrExternal
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return op()
}

func (c *Cluster) startLocked() error {
	if c.closed {
		return errors.New("pgtest: cluster is closed")
	}
	if c.proc != nil {
		return errors.New("pgtest: cluster is already running")
	}
	p, err := c.launch()
	if err != nil {
		return err
	}
	c.proc = p
	return nil
}

// Stop shuts the server down the fast way (SIGINT: sessions are
// disconnected, a checkpoint is written) and waits for it to exit.
func (c *Cluster) Stop() error {
	return c.control(func() error { return c.stopLocked(syscall.SIGINT) })
}

// Kill9 crashes the server: SIGKILL to the postmaster named in
// postmaster.pid, as an out-of-memory kill or a power cut of the process
// would. It returns once the postmaster's children have gone and the port is
// free, so that Start can run crash recovery straight away: a child left
// attached to the old shared memory would make the new postmaster refuse to
// start.
func (c *Cluster) Kill9() error { return c.control(c.kill9Locked) }

func (c *Cluster) kill9Locked() error {
	if c.proc == nil {
		return errors.New("pgtest: cluster is not running")
	}
	pid, err := c.postmasterPID()
	if err != nil {
		return err
	}
	if pid != c.proc.pid {
		// Never signal a pid that is not our own child: a stale file could
		// name an unrelated process.
		return fmt.Errorf("pgtest: postmaster.pid names %d, but the postmaster is %d", pid, c.proc.pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("pgtest: kill -9 %d: %w", pid, err)
	}
	p := c.proc
	c.proc = nil
	<-p.done

	// The children notice the postmaster's death through a pipe and exit
	// on their own; wait for them, then for the port.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := processesIn(c.data)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postmaster children %v still running 30s after kill -9", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)))
		if err == nil {
			return l.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: port %d still busy 30s after kill -9: %w", c.port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops the server (immediate shutdown: the data is thrown away
// anyway) and removes its directory. It is a no-op for an external server
// and after the first call.
func (c *Cluster) Close() error {
	if c.external != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	err := c.stopLocked(syscall.SIGQUIT)
	if rmErr := os.RemoveAll(c.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("pgtest: %w", rmErr)
	}
	return err
}

// stopLocked signals the postmaster and waits for it, killing it if it does
// not finish in time. Every shutdown mode makes the postmaster wait for its
// children, so nothing is left running once it has exited.
func (c *Cluster) stopLocked(sig syscall.Signal) error {
	p := c.proc
	if p == nil {
		return nil
	}
	c.proc = nil
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgtest: signalling postmaster %d: %w", p.pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("pgtest: postmaster %d ignored %v for 60s; killed it", p.pid, sig)
	}
}

// launch starts the postmaster and waits until it accepts connections.
//
// The postmaster is run directly as a child rather than daemonised by
// pg_ctl, for two reasons: it gets Pdeathsig, so a test binary that dies
// (panic, go test -timeout) takes its servers with it instead of leaking
// them; and this process reaps it, so its exit can be waited for exactly.
func (c *Cluster) launch() (*process, error) {
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	logStart, _ := logFile.Seek(0, io.SeekEnd)
	fsync := "off"
	if c.fsync {
		fsync = "on"
	}
	cmd := exec.Command(c.bin,
		"-D", c.data,
		"-k", c.dir,
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync="+fsync,
		"-c", "logging_collector=off",
	)
	cmd.Dir = c.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.cred,
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true, // a terminal's ^C goes to the test, which then cleans up
	}

	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the *thread* that started the child exits,
		// not the process, so start and wait on one locked thread that
		// lives as long as the child. The thread is not unlocked: the
		// runtime retires it after the child is reaped.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.done)
	}()
	err = <-started
	logFile.Close() // the child holds its own copy
	if err != nil {
		return nil, fmt.Errorf("pgtest: starting %s: %w", c.bin, err)
	}
	p.pid = cmd.Process.Pid

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgconn.Connect(ctx, c.URL(""))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("pgtest: postgres exited during start-up:\n%s", logTail(logPath, logStart))
		default:
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			<-p.done
			return nil, fmt.Errorf("pgtest: postgres not accepting connections after 60s: %v\n%s", err, logTail(logPath, logStart))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// postmasterPID reads the postmaster's pid from the first line of
// postmaster.pid.
func (c *Cluster) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil {
		return 0, fmt.Errorf("pgtest: postmaster.pid: %w", err)
	}
	return pid, nil
}

// processesIn lists the live (not zombie) processes whose working directory
// is dir. Every postmaster child runs in the data directory, and after the
// postmaster's death they are no longer its children, so this is how to find
// them.
func processesIn(dir string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // no procfs: nothing to wait for that we can see
		}
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || cwd != dir {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Format: pid (comm) state ...; comm may contain spaces or ')'.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// logTail returns the server log written since offset, for error messages.
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	b = b[offset:]
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// binaries are the server programs of one PostgreSQL installation.
type binaries struct {
	initdb, postgres string
	version          string // first line of `postgres --version`
}

// findBinaries locates initdb and postgres: in binDir if given, else next
// to initdb on PATH, else in the highest-versioned /usr/lib/postgresql/*/bin
// (Debian's layout, which keeps them off PATH).
func findBinaries(binDir string) (binaries, error) {
	var dirs []string
	if binDir != "" {
		dirs = []string{binDir}
	} else {
		if p, err := exec.LookPath("initdb"); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sortVersionDirsDesc(matches)
		dirs = append(dirs, matches...)
	}
	for _, d := range dirs {
		b := binaries{initdb: filepath.Join(d, "initdb"), postgres: filepath.Join(d, "postgres")}
		if !isExecutable(b.initdb) || !isExecutable(b.postgres) {
			continue
		}
		out, err := exec.Command(b.postgres, "--version").Output()
		if err != nil {
			return binaries{}, fmt.Errorf("pgtest: %s --version: %w", b.postgres, err)
		}
		b.version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
		return b, nil
	}
	if binDir != "" {
		return binaries{}, fmt.Errorf("%w in %s", ErrNotFound, binDir)
	}
	return binaries{}, fmt.Errorf("%w on PATH or under /usr/lib/postgresql/*/bin", ErrNotFound)
}

// sortVersionDirsDesc sorts /usr/lib/postgresql/<major>/bin paths by major
// version, highest first (numerically: 9.6 < 10 < 15).
func sortVersionDirsDesc(dirs []string) {
	key := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortStableFunc(dirs, func(a, b string) int { return cmp.Compare(key(b), key(a)) })
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// serverCredential returns the identity to run the server programs under:
// nil (ourselves) unless we are root, which initdb and postgres refuse to
// run as. Then it is the "postgres" user, or "nobody" where that does not
// exist; pgtest never creates users.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtest: running as root, and neither a \"postgres\" nor a \"nobody\" user exists to run PostgreSQL as (initdb refuses root)")
}

// chownTo gives path to the server's user when running as root.
func chownTo(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	if err := os.Lchown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// runAs runs a server program under cred and returns its output in the
// error if it fails.
func runAs(cred *syscall.Credential, dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		var lines []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			lines = append(lines, "  "+sc.Text())
		}
		return fmt.Errorf("pgtest: %s: %w\n%s", filepath.Base(name), err, strings.Join(lines, "\n"))
	}
	return nil
}
