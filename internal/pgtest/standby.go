package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replicas, failover and backups, for the tests of what a store that lost
// its last commits does: a streaming standby made with pg_basebackup -R,
// promoted after the primary is killed; a pg_dump restored over a database.

// HostPort returns the server's address, for multi-host URLs
// (host=A,B target_session_attrs=read-write).
func (c *Cluster) HostPort() string {
	if c.external != nil {
		return c.external.Host
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port))
}

// tool returns the path of a client or server program of postgres's
// installation: next to the real postgres binary (PATH may hold symlinks to
// only some of them), else on PATH.
func (c *Cluster) tool(name string) string {
	if real, err := filepath.EvalSymlinks(c.bin); err == nil {
		if p := filepath.Join(filepath.Dir(real), name); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join(filepath.Dir(c.bin), name)
}

// StartStandby makes an asynchronous streaming standby of c and starts it:
// a base backup of the running primary (pg_basebackup -R, which writes
// standby.signal and primary_conninfo) in a new directory, on its own port.
// It returns once the standby accepts (read-only) connections and the
// primary lists it in pg_stat_replication. The standby is closed with
// Close like any cluster.
func (c *Cluster) StartStandby(ctx context.Context) (*Cluster, error) {
	if c.external != nil {
		return nil, ErrExternal
	}
	dir, err := os.MkdirTemp("", "pgtest-standby-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Cluster{dir: dir, data: filepath.Join(dir, "data"), bin: c.bin, cred: c.cred, fsync: c.fsync}
	fail := func(err error) (*Cluster, error) {
		_ = s.Close()
		return nil, err
	}
	if err := chownTo(dir, c.cred); err != nil {
		return fail(err)
	}
	if err := runAs(c.cred, dir, c.tool("pg_basebackup"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres",
		"-D", s.data, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"); err != nil {
		return fail(err)
	}
	if s.port, err = freePort(); err != nil {
		return fail(err)
	}
	if err := s.Start(); err != nil {
		return fail(err)
	}
	// Wait for the standby to stream: the primary lists it.
	conn, err := pgx.Connect(ctx, c.URL(""))
	if err != nil {
		return fail(fmt.Errorf("pgtest: connecting to the primary: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").Scan(&n); err != nil {
			return fail(fmt.Errorf("pgtest: pg_stat_replication: %w", err))
		}
		if n > 0 {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("pgtest: the standby is not streaming: %w", ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Promote ends a standby's recovery (pg_promote) and returns once it
// accepts writes.
func (c *Cluster) Promote(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.URL(""))
	if err != nil {
		return fmt.Errorf("pgtest: connecting to the standby: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
		return fmt.Errorf("pgtest: pg_promote: %w", err)
	}
	if !ok {
		return errors.New("pgtest: pg_promote did not finish within 60s")
	}
	return nil
}

// Dump returns a plain-SQL pg_dump of database db, as a nightly backup
// would take it.
func (c *Cluster) Dump(ctx context.Context, db string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.tool("pg_dump"), "--no-owner", "--dbname", c.URL(db))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pgtest: pg_dump: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

// Restore replaces database db with a dump from Dump: the database is
// dropped (its sessions disconnected), created again and the dump loaded
// with psql, stopping at the first error.
func (c *Cluster) Restore(ctx context.Context, db string, dump []byte) error {
	if err := c.dropDatabase(ctx, db); err != nil {
		return err
	}
	if _, err := c.CreateDatabase(ctx, db); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, c.tool("psql"), "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--dbname", c.URL(db))
	cmd.Stdin = bytes.NewReader(dump)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgtest: psql restore: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
