//go:build faults

package faults

import (
	"context"
	"errors"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authserver-dev/authserver/internal/pgtest"
)

// storeCase is one sequence store a test runs against.
type storeCase struct {
	name string
	// setup returns the server config and a function reading the committed
	// sequences (called with the server stopped).
	setup func(t *testing.T) (serverConfig, func(s *server) map[string]uint64)
	// stall, when set, makes the store's commits hang until release is
	// called, so that requests are in flight for a while.
	stall func(t *testing.T, cfg serverConfig, user string) (release func())
}

// serve starts a server named prefix-<store> on the case's store, with a
// fresh fixture; committed reads the store's sequences (call it with the
// server stopped).
func (sc storeCase) serve(t *testing.T, prefix string) (s *server, committed func() map[string]uint64) {
	t.Helper()
	cfg, read := sc.setup(t)
	s = newFixture(t).newServer(prefix+"-"+sc.name, cfg)
	s.start()
	return s, func() map[string]uint64 { return read(s) }
}

var storeCases = []storeCase{
	{"postgres", func(t *testing.T) (serverConfig, func(*server) map[string]uint64) {
		url := pgtest.DB(t)
		return serverConfig{DatabaseURL: url}, func(*server) map[string]uint64 { return committedPostgres(t, url) }
	}, stallPostgres},
	{"embedded", func(t *testing.T) (serverConfig, func(*server) map[string]uint64) {
		return serverConfig{}, func(s *server) map[string]uint64 { return committedBolt(t, s.dataDir) }
	}, nil},
}

// TestAuthserverKill9UnderLoad crashes authserver (kill -9) under load and
// starts it again on the same store: no sequence may be handed out twice
// across the crash, and none above what the store committed.
func TestAuthserverKill9UnderLoad(t *testing.T) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			s, committed := sc.serve(t, "kill9")
			l := startWarm(t, s.f, crashMix(s))

			killAt := time.Now()
			s.kill9()
			time.Sleep(300 * time.Millisecond)
			s.start()
			readyAt := time.Now()
			l.waitOps(t, warmOps, readyAt)
			ops := l.Stop()
			end := time.Now()
			s.signal(syscall.SIGTERM)
			if err := s.wait(15 * time.Second); err != nil {
				t.Errorf("exit after SIGTERM: %v", err)
			}

			// Requests in flight at the kill fail; those that ended before it
			// or started once the new process was ready must not.
			all := count(ops, nil)
			before := count(ops, func(o op) bool { return o.end.Before(killAt) })
			downtime := count(ops, func(o op) bool { return !o.end.Before(killAt) && o.start.Before(readyAt) })
			after := count(ops, started(readyAt, end))
			seqs := checkSequences(t, ops)
			gaps := checkCommitted(t, seqs, committed())
			t.Logf("all:            %v", all)
			t.Logf("before kill -9: %v", before)
			t.Logf("in flight or sent while down (%s): %v", readyAt.Sub(killAt).Round(time.Millisecond), downtime)
			t.Logf("after restart:  %v", after)
			t.Logf("%v; committed but never delivered (in flight at the kill): %d", seqs, gaps)

			if all.otherStatus > 0 || all.unavailable > 0 {
				t.Errorf("statuses other than 200: %v", all)
			}
			if all.badCredential > 0 {
				t.Errorf("credentials that do not verify: %d", all.badCredential)
			}
			if before.transport > 0 || after.transport > 0 {
				t.Errorf("transport errors while authserver was up: before %v, after %v", before, after)
			}
			if before.ok == 0 || after.ok == 0 {
				t.Errorf("no traffic served before the kill (%d) or after the restart (%d)", before.ok, after.ok)
			}
		})
	}
}

// TestSIGTERMUnderLoad stops authserver gracefully under signature load.
// Every request that got a response must be a 200. Clients stop at their
// first refused connection (the listener is closed); those refusals are
// counted, not failures. A request sent on a keep-alive connection the
// server was closing as idle never reached a handler; that it was not
// accepted is proven, not assumed: the store's committed sequences must be
// exactly those the clients received, so no request the server processed
// lost its response.
func TestSIGTERMUnderLoad(t *testing.T) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			s, committed := sc.serve(t, "sigterm")
			l := startWarm(t, s.f, loadOpts{urls: []string{s.url()}, workers: 8, users: users("u", 20), stopOnRefused: true})

			// With PostgreSQL, a transaction holds one user's row lock
			// across the SIGTERM: the batch that includes that user, and
			// the requests queued behind it, are in flight for a second
			// and must still be answered.
			var release func()
			if sc.stall != nil {
				release = sc.stall(t, s.cfg, "u-00")
				time.Sleep(200 * time.Millisecond)
			}
			termAt := time.Now()
			s.signal(syscall.SIGTERM)
			if release != nil {
				time.Sleep(time.Second)
				release()
			}
			err := s.wait(15 * time.Second)
			exited := time.Now()
			if err != nil {
				t.Errorf("exit status after SIGTERM: %v, want 0", err)
			}
			// The workers stop at their first refused connection.
			if !l.waitFor(10*time.Second, func(ops []op) bool {
				stopped := map[int]bool{}
				for _, o := range ops {
					if o.refused {
						stopped[o.worker] = true
					}
				}
				return len(stopped) == l.o.workers
			}) {
				t.Errorf("not every client saw the listener close within 10s of the exit")
			}
			ops := l.Stop()

			before := count(ops, func(o op) bool { return o.end.Before(termAt) })
			inFlight := count(ops, func(o op) bool { return o.start.Before(termAt) && !o.end.Before(termAt) })
			after := count(ops, started(termAt, exited.Add(time.Hour)))
			var responded, notAccepted, refused, other int
			for _, o := range ops {
				switch {
				case o.err == nil:
					responded++
				case o.refused:
					refused++
				case o.reused && !o.end.Before(termAt) && closedBeforeResponse(o.err):
					// Sent on a keep-alive connection as Shutdown closed it
					// as idle: the server never read it (checked below).
					notAccepted++
				default:
					other++
					if other <= 5 {
						t.Errorf("worker %d: request started %s after SIGTERM failed: %v", o.worker, o.start.Sub(termAt), o.err)
					}
				}
			}
			seqs := checkSequences(t, ops)
			gaps := checkCommitted(t, seqs, committed())
			t.Logf("before SIGTERM:       %v", before)
			t.Logf("in flight at SIGTERM: %v", inFlight)
			t.Logf("sent after SIGTERM:   %v (exit %s after SIGTERM)", after, exited.Sub(termAt).Round(time.Millisecond))
			t.Logf("responses=%d refused-after-close=%d closed-idle-not-accepted=%d failed=%d", responded, refused, notAccepted, other)
			t.Logf("%v; committed but never delivered: %d", seqs, gaps)

			if c := count(ops, nil); c.ok != responded {
				t.Errorf("responses that are not 200: %v", c)
			}
			if before.transport > 0 {
				t.Errorf("transport errors before SIGTERM: %v", before)
			}
			if release != nil && inFlight.ok < l.o.workers/2 {
				t.Errorf("the stalled store should have kept most clients' requests in flight at SIGTERM: %v", inFlight)
			}
			if gaps != 0 {
				t.Errorf("%d sequences were committed for requests that never got their response: in-flight requests failed", gaps)
			}
		})
	}
}

// stallPostgres locks user's row in a transaction until release.
func stallPostgres(t *testing.T, cfg serverConfig, user string) func() {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seq int64
	if err := tx.QueryRow(ctx, "SELECT sequence FROM sequences WHERE application_key = $1 AND user_id = $2 FOR UPDATE", appKey, user).Scan(&seq); err != nil {
		t.Fatalf("locking %s's row: %v", user, err)
	}
	return func() {
		if err := tx.Commit(ctx); err != nil {
			t.Error(err)
		}
		conn.Close(ctx)
	}
}

// closedBeforeResponse reports whether err is the server closing the
// connection before any response byte: EOF or a reset.
func closedBeforeResponse(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || err.Error() == "http: server closed idle connection" ||
		errors.Is(err, http.ErrServerClosed)
}
