//go:build faults

package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/pgtest"
)

// TestThreeReplicas runs three authserver processes on one PostgreSQL
// database (started together, so their migrations race for the lock) and
// hammers them with signature requests for 20 users plus one hot user that
// gets half the traffic. No sequence may repeat, each client must see every
// user's sequences increase, and with no failed request every committed
// value must have reached a client.
func TestThreeReplicas(t *testing.T) {
	dbURL := pgtest.DB(t)
	f := newFixture(t)
	var replicas []*server
	var urls []string
	for i := range 3 {
		s := f.newServer(fmt.Sprintf("replica-%d", i), serverConfig{DatabaseURL: dbURL})
		s.launch()
		replicas = append(replicas, s)
		urls = append(urls, s.url())
	}
	for _, s := range replicas {
		s.waitReady(30 * time.Second)
	}

	const hot = "hot-user"
	l := startLoad(f, loadOpts{urls: urls, workers: 12, users: users("u", 20), hotUser: hot, hotShare: 0.5, jwtShare: 0.1})
	time.Sleep(5 * time.Second)
	ops := l.Stop()

	all := count(ops, nil)
	seqs := checkSequences(t, ops)
	gaps := checkCommitted(t, seqs, committedPostgres(t, dbURL))
	for i := range urls {
		t.Logf("replica %d: %v", i, count(ops, func(o op) bool { return o.worker%len(urls) == i }))
	}
	t.Logf("all: %v", all)
	t.Logf("hot user: %d sequences; %v; committed but never delivered: %d", len(seqs.byUser[hot]), seqs, gaps)

	if all.ok != all.sent {
		t.Errorf("failed requests: %v", all)
	}
	if all.badCredential > 0 {
		t.Errorf("credentials that do not verify: %d", all.badCredential)
	}
	if gaps != 0 {
		t.Errorf("%d committed sequences reached no client although no request failed", gaps)
	}
	for i, s := range replicas {
		if s.exited() {
			t.Errorf("replica %d exited", i)
		}
	}
}
