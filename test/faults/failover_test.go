//go:build faults

package faults

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/pgtest"
)

// asyncWarning is in the start-up warning of a server whose database has
// asynchronous standbys while the clock floor is off.
const asyncWarning = "asynchronous standbys and sequence.clock_floor is off"

// dbName is the database of a pgtest URL.
func dbName(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// logSequenceCounts prints the counts the issue asks for.
func logSequenceCounts(t *testing.T, label string, ops []op, sc seqCheck) {
	t.Helper()
	sig := count(ops, ofKind(kindSig, nil))
	t.Logf("%s: calls=%d 200s=%d 503s=%d repeats=%d backwards=%d (signature calls; %d distinct users)",
		label, sig.sent, sig.ok, sig.unavailable, sc.repeats, sc.backwards, len(sc.byUser))
}

// TestPostgresFailover runs signature load through authserver on a
// multi-host database_url (primary, then a streaming standby, with
// target_session_attrs=read-write), kills the primary with kill -9 and
// promotes the standby. With the clock floor on, no (user, sequence) may
// repeat or go back, requests during the switch get 503 with Retry-After,
// and the service resumes without a restart. At start, a server with the
// floor off warns once that a failover can repeat sequences.
func TestPostgresFailover(t *testing.T) {
	primary, dbURL := pgtest.New(t)
	standby := pgtest.NewStandby(t, primary)
	multi := fmt.Sprintf("postgres://postgres@%s,%s/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		primary.HostPort(), standby.HostPort(), dbName(t, dbURL))
	f := newFixture(t)

	// The floor off: one warning at start, naming the way out.
	off := f.newServer("failover-nofloor", serverConfig{DatabaseURL: multi})
	off.start()
	off.signal(syscall.SIGTERM)
	if err := off.wait(15 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if n := off.logCount(asyncWarning); n != 1 {
		t.Errorf("%d start-up warnings about asynchronous standbys with the floor off, want 1:\n%s", n, tail(off.logPath, 10))
	}

	s := f.newServer("failover", serverConfig{DatabaseURL: multi, ClockFloor: true})
	s.start()
	if n := s.logCount(asyncWarning); n != 0 {
		t.Errorf("the asynchronous-standby warning with the floor on: %d lines", n)
	}
	l := startWarm(t, f, crashMix(s))

	killAt, down := killPostgres(t, primary) // down: the primary and all its backends are gone
	// No primary for a second: what an operator's failover takes, at best.
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	promoteAt := time.Now()
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	recovered, steady, ops, end := l.recovery(t, s, promoted, 20*time.Second, "the promotion")

	all := count(ops, nil)
	before := count(ops, func(o op) bool { return o.end.Before(killAt) })
	switchSig := count(ops, ofKind(kindSig, started(down, promoteAt)))
	after := count(ops, started(recovered, end))
	lastSig := count(ops, ofKind(kindSig, started(steady, end)))
	sc := checkSequences(t, ops)
	t.Logf("all:                   %v", all)
	t.Logf("before the kill:       %v", before)
	t.Logf("switch, signatures:    %v (no primary for %s)", switchSig, promoteAt.Sub(down).Round(time.Millisecond))
	t.Logf("after resuming:        %v (first signature %s after the promotion)", after, recovered.Sub(promoted).Round(time.Millisecond))
	logSequenceCounts(t, "failover, clock floor on", ops, sc)

	if sc.repeats != 0 || sc.backwards != 0 {
		t.Errorf("with the clock floor: %d repeats, %d backwards, want 0", sc.repeats, sc.backwards)
	}
	if all.otherStatus > 0 || all.transport > 0 {
		t.Errorf("statuses other than 200 and 503, or transport errors: %v", all)
	}
	if all.noRetryAfter > 0 {
		t.Errorf("503s without a Retry-After of at least 1s: %d", all.noRetryAfter)
	}
	if all.badCredential > 0 {
		t.Errorf("credentials that do not verify: %d", all.badCredential)
	}
	if switchSig.ok > 0 || switchSig.unavailable == 0 {
		t.Errorf("during the switch, want only 503s for signatures: %v", switchSig)
	}
	if before.ok == 0 || lastSig.sent == 0 || lastSig.ok != lastSig.sent {
		t.Errorf("not serving before the kill (%v) or not fully resumed after the promotion (%v)", before, lastSig)
	}
	if s.exited() {
		t.Errorf("authserver exited")
	}
}

// TestPostgresRestoreFromBackup takes a pg_dump under signature load, lets
// more calls commit, then restores the dump (as after losing the database)
// and serves again: with the clock floor no number repeats; without it,
// the numbers handed out after the dump are handed out again, which is
// what the floor is for (and shows the test can see repeats).
func TestPostgresRestoreFromBackup(t *testing.T) {
	for _, floor := range []bool{true, false} {
		t.Run(fmt.Sprintf("clock_floor=%t", floor), func(t *testing.T) {
			cluster, dbURL := pgtest.New(t)
			db := dbName(t, dbURL)
			f := newFixture(t)
			s := f.newServer(fmt.Sprintf("restore-%t", floor), serverConfig{DatabaseURL: dbURL, ClockFloor: floor})
			s.start()
			lo := loadOpts{urls: []string{s.url()}, workers: 8, users: users("u", 20)}
			l := startWarm(t, f, lo)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dump, err := cluster.Dump(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			l.waitOps(t, warmOps, time.Now()) // calls the backup does not have
			ops := l.Stop()
			s.signal(syscall.SIGTERM)
			if err := s.wait(15 * time.Second); err != nil {
				t.Errorf("exit after SIGTERM: %v", err)
			}

			if err := cluster.Restore(ctx, db, dump); err != nil {
				t.Fatal(err)
			}
			s.start()
			l = startWarm(t, f, lo)
			ops = append(ops, l.Stop()...)

			sc, problems := tallySequences(ops)
			all := count(ops, nil)
			t.Logf("all: %v", all)
			logSequenceCounts(t, fmt.Sprintf("restore of a backup, clock floor %t", floor), ops, sc)
			if all.ok != all.sent {
				t.Errorf("requests that failed: %v", all)
			}
			if floor {
				for i, p := range problems {
					if i < 10 {
						t.Error(p)
					}
				}
				if sc.repeats != 0 || sc.backwards != 0 {
					t.Errorf("with the clock floor: %d repeats, %d backwards, want 0", sc.repeats, sc.backwards)
				}
			} else if sc.repeats == 0 {
				t.Errorf("without the clock floor the restore repeated no number: the test does not show what the floor prevents")
			}
		})
	}
}
