//go:build faults

package faults

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/pgtest"
)

var soakDuration = flag.Duration("soak", 2*time.Minute, "how long TestSoak runs; 0 skips it")

// soakSample is one measurement of the server process.
type soakSample struct {
	at         time.Duration // since the load started
	rssKiB     float64       // VmRSS
	goroutines float64       // go_goroutines
	fds        float64       // entries of /proc/<pid>/fd
}

// TestSoak runs mixed JWT/signature traffic at a fixed moderate rate
// (about 100 requests/s: four keep-alive clients at 20/s each and one
// client opening a new TLS connection for each of its 20 requests/s)
// against a server on PostgreSQL for -soak (default 2m). Every request must
// succeed. Every 5s it samples the server's RSS (/proc/<pid>/status),
// goroutines (go_goroutines from the admin /metrics) and open files
// (/proc/<pid>/fd), and fails on clear growth between the first and the
// last minute's averages (the first and last half for runs under 2m):
// goroutines > first + 50, FDs > first + 20, RSS > 1.5 x first + 16 MiB.
func TestSoak(t *testing.T) {
	d := *soakDuration
	if d <= 0 {
		t.Skip("-soak=0")
	}
	const every = 5 * time.Second
	if d < 4*every {
		t.Fatalf("-soak=%s is too short to compare anything; use at least %s", d, 4*every)
	}
	_, dbURL := pgtest.New(t)
	f := newFixture(t)
	s := f.newServer("soak", serverConfig{DatabaseURL: dbURL})
	s.start()
	pid := s.pid()

	steady := startLoad(f, loadOpts{urls: []string{s.url()}, workers: 4, users: users("u", 50), jwtShare: 0.5, interval: 50 * time.Millisecond})
	churn := startLoad(f, loadOpts{urls: []string{s.url()}, workers: 1, users: users("c", 10), jwtShare: 0.5, interval: 50 * time.Millisecond, newConnEvery: time.Nanosecond})
	start := time.Now()
	var samples []soakSample
	tick := time.NewTicker(every)
	for time.Since(start) < d {
		<-tick.C
		smp, err := sampleProcess(s, pid)
		if err != nil {
			t.Errorf("sampling at %s: %v", time.Since(start).Round(time.Second), err)
			continue
		}
		smp.at = time.Since(start)
		samples = append(samples, smp)
	}
	tick.Stop()
	ops := append(steady.Stop(), churn.Stop()...)
	elapsed := time.Since(start)

	all := count(ops, nil)
	jwts, sigs := count(ops, ofKind(kindJWT, nil)), count(ops, ofKind(kindSig, nil))
	seqs := checkSequences(t, ops)
	t.Logf("soak %s: %v (%.0f requests/s)", elapsed.Round(time.Second), all, float64(all.sent)/elapsed.Seconds())
	t.Logf("JWTs: %v", jwts)
	t.Logf("signatures: %v; %v", sigs, seqs)
	lat := latencies(ops, nil)
	t.Logf("latency p50 %s p99 %s max %s", percentile(lat, 0.5).Round(time.Microsecond),
		percentile(lat, 0.99).Round(time.Microsecond), percentile(lat, 1).Round(time.Microsecond))
	for _, smp := range samples {
		t.Logf("  %6s  rss %7.1f MiB  goroutines %4.0f  fds %4.0f", smp.at.Round(time.Second), smp.rssKiB/1024, smp.goroutines, smp.fds)
	}

	window := min(time.Minute, d/2)
	var first, last []soakSample
	for _, smp := range samples {
		if smp.at <= window {
			first = append(first, smp)
		}
		if smp.at > samples[len(samples)-1].at-window {
			last = append(last, smp)
		}
	}
	if len(first) == 0 || len(last) == 0 {
		t.Fatalf("not enough samples (%d)", len(samples))
	}
	f0, f1 := average(first), average(last)
	t.Logf("first %s average: rss %.1f MiB, goroutines %.1f, fds %.1f (%d samples)", window, f0.rssKiB/1024, f0.goroutines, f0.fds, len(first))
	t.Logf("last  %s average: rss %.1f MiB, goroutines %.1f, fds %.1f (%d samples)", window, f1.rssKiB/1024, f1.goroutines, f1.fds, len(last))

	if all.ok != all.sent || all.badCredential > 0 {
		t.Errorf("errors during the soak: %v", all)
	}
	if f1.goroutines > f0.goroutines+50 {
		t.Errorf("goroutines grew: %.1f -> %.1f", f0.goroutines, f1.goroutines)
	}
	if f1.fds > f0.fds+20 {
		t.Errorf("open files grew: %.1f -> %.1f", f0.fds, f1.fds)
	}
	if f1.rssKiB > 1.5*f0.rssKiB+16*1024 {
		t.Errorf("RSS grew: %.1f MiB -> %.1f MiB", f0.rssKiB/1024, f1.rssKiB/1024)
	}
	if s.pid() != pid || s.exited() {
		t.Errorf("the server restarted or exited")
	}
}

func sampleProcess(s *server, pid int) (soakSample, error) {
	var smp soakSample
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return smp, err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			smp.rssKiB, err = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	f.Close()
	if err != nil || smp.rssKiB == 0 {
		return smp, fmt.Errorf("VmRSS: %v", err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return smp, err
	}
	smp.fds = float64(len(fds))
	m, err := s.scrape("go_goroutines")
	if err != nil {
		return smp, err
	}
	smp.goroutines = m["go_goroutines"]
	return smp, nil
}

func average(ss []soakSample) soakSample {
	var a soakSample
	for _, s := range ss {
		a.rssKiB += s.rssKiB
		a.goroutines += s.goroutines
		a.fds += s.fds
	}
	n := float64(len(ss))
	return soakSample{rssKiB: a.rssKiB / n, goroutines: a.goroutines / n, fds: a.fds / n}
}
