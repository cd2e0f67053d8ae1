//go:build faults

package faults

import (
	"net/http"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/internal/servertest"
)

// TestPostgresKill9UnderLoad crashes PostgreSQL (kill -9 of the postmaster)
// under load and restarts it, without touching authserver. During the
// outage signatures must be 503 with Retry-After (JWTs need no store and
// keep being issued), never a 500 or a sequence that was not committed;
// after the restart authserver must recover on its own; no user may see a
// sequence twice or going backwards.
func TestPostgresKill9UnderLoad(t *testing.T) {
	cluster, dbURL := pgtest.New(t)
	f := newFixture(t)
	s := f.newServer("pg-kill", serverConfig{DatabaseURL: dbURL})
	s.start()

	l := startWarm(t, f, crashMix(s))

	killAt, down := killPostgres(t, cluster) // down: the postmaster and all its children are gone
	if err := servertest.Poll(10*time.Second, "/readyz/sequence_store 503", func() bool {
		return s.readyStatusOf("/readyz/sequence_store") == http.StatusServiceUnavailable
	}); err != nil {
		t.Error(err)
	}
	if code := s.readyStatus(); code != http.StatusOK {
		t.Errorf("/readyz during the outage: %d, want 200 (JWTs are still served)", code)
	}
	if code := s.readyStatusOf("/readyz/sequence_store"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz/sequence_store during the outage: %d, want 503", code)
	}
	time.Sleep(1500 * time.Millisecond)

	restartAt := time.Now()
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	// Recovered: a signature request sent after the restart succeeded.
	recovered, steady, ops, end := l.recovery(t, s, up, 15*time.Second, "PostgreSQL's restart")

	if code := s.readyStatusOf("/readyz/sequence_store"); code != http.StatusOK {
		t.Errorf("/readyz/sequence_store after recovery: %d, want 200", code)
	}
	all := count(ops, nil)
	before := count(ops, func(o op) bool { return o.end.Before(killAt) })
	outageSig := count(ops, ofKind(kindSig, started(down, restartAt)))
	outageJWT := count(ops, ofKind(kindJWT, started(down, restartAt)))
	crashRecovery := count(ops, started(restartAt, recovered))
	after := count(ops, started(recovered, end))
	lastSig := count(ops, ofKind(kindSig, started(steady, end)))
	sc := checkSequences(t, ops)
	gaps := checkCommitted(t, sc, committedPostgres(t, dbURL))

	t.Logf("all:                 %v", all)
	t.Logf("before the kill:     %v", before)
	t.Logf("outage, signatures:  %v (over %s)", outageSig, restartAt.Sub(down).Round(time.Millisecond))
	t.Logf("outage, JWTs:        %v", outageJWT)
	t.Logf("restart to recovery: %v (PostgreSQL up after %s, first signature %s later)", crashRecovery,
		up.Sub(restartAt).Round(time.Millisecond), recovered.Sub(up).Round(time.Millisecond))
	t.Logf("after recovery:      %v", after)
	t.Logf("%v; committed but never delivered (skipped numbers): %d", sc, gaps)

	if all.otherStatus > 0 {
		t.Errorf("statuses other than 200 and 503: %v", all)
	}
	if all.noRetryAfter > 0 {
		t.Errorf("503s without a Retry-After of at least 1s: %d", all.noRetryAfter)
	}
	if all.transport > 0 {
		t.Errorf("transport errors although authserver stayed up: %v", all)
	}
	if all.badCredential > 0 {
		t.Errorf("credentials that do not verify: %d", all.badCredential)
	}
	if before.ok == 0 || before.unavailable > 0 {
		t.Errorf("before the kill: %v; want only 200s", before)
	}
	if outageSig.ok > 0 {
		t.Errorf("signatures issued while PostgreSQL was down (uncommitted sequences?): %v", outageSig)
	}
	if outageSig.unavailable == 0 {
		t.Errorf("no 503 during the outage: %v", outageSig)
	}
	if outageJWT.ok != outageJWT.sent {
		t.Errorf("JWTs need no store, yet failed during the outage: %v", outageJWT)
	}
	if lastSig.sent == 0 || lastSig.ok != lastSig.sent {
		t.Errorf("not fully recovered: signatures in the last 1.5s: %v", lastSig)
	}
	if s.exited() {
		t.Errorf("authserver exited")
	}
}

// killPostgres crashes a PostgreSQL server (kill -9 to the postmaster) and returns
// when the kill was sent and when every process of the server was gone.
func killPostgres(t *testing.T, c *pgtest.Cluster) (killAt, down time.Time) {
	t.Helper()
	killAt = time.Now()
	if err := c.Kill9(); err != nil {
		t.Fatal(err)
	}
	return killAt, time.Now()
}
