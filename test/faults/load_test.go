//go:build faults

package faults

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/signer"
)

const (
	kindJWT = "jwt"
	kindSig = "sig"
)

// loadOpts shapes the load generator's traffic.
type loadOpts struct {
	urls          []string      // worker i talks to urls[i%len(urls)]
	workers       int           // concurrent clients, one keep-alive connection each
	users         []string      // users picked uniformly ...
	hotUser       string        // ... except this one, picked with probability hotShare
	hotShare      float64       //
	jwtShare      float64       // probability of a JWT request (else a signature)
	interval      time.Duration // per-worker pacing; 0: back to back
	rate          float64       // requests/s shared by all workers (see pace); overrides interval
	stopOnRefused bool          // a worker stops at its first refused connection
	backoff       time.Duration // pause after a 503 or a transport error; default 20ms
	newConnEvery  time.Duration // close idle connections this often (new TLS handshakes)
	localAddr     string        // connect from this loopback address; "": the system's choice
}

// op is one request the load generator made.
type op struct {
	worker     int
	kind       string
	user       string
	start, end time.Time
	status     int // 0: transport error
	retryAfter string
	err        error
	refused    bool // connection refused
	reused     bool // sent on a reused keep-alive connection
	seq        uint64
	signedBy   int    // index of the fixture secret that signed the credential; -1: none verifies
	problem    string // start of a non-200 body
	serial     string // leaf serial of a TLS handshake made for this request, if any
	token      string // the JWT of a 200 JWT response
}

// load is a running load generator.
type load struct {
	f      *fixture
	o      loadOpts
	stop   chan struct{}
	halted atomic.Bool // Stop was called
	wg     sync.WaitGroup

	tokens  chan struct{} // with rate: one per request a worker may send
	dropped atomic.Int64  // with rate: tokens issued while the bucket was full

	mu  sync.Mutex
	ops [][]op // per worker, in request order
}

func startLoad(f *fixture, o loadOpts) *load {
	if o.backoff == 0 {
		o.backoff = 20 * time.Millisecond
	}
	l := &load{f: f, o: o, stop: make(chan struct{}), ops: make([][]op, o.workers)}
	if o.rate > 0 {
		l.tokens = make(chan struct{}, max(o.workers, int(o.rate/4)))
		l.wg.Add(1)
		go l.pace()
	}
	for w := 0; w < o.workers; w++ {
		l.wg.Add(1)
		go l.worker(w)
	}
	return l
}

// startWarm starts the load and waits until warmOps requests have ended:
// the traffic a fault is then injected into.
func startWarm(t testing.TB, f *fixture, o loadOpts) *load {
	t.Helper()
	l := startLoad(f, o)
	l.waitOps(t, warmOps, time.Time{})
	return l
}

// crashMix is the traffic the crash tests kill a process under: 8 workers
// over 20 users, a fifth of the requests JWTs (which need no store).
func crashMix(s *server) loadOpts {
	return loadOpts{urls: []string{s.url()}, workers: 8, users: users("u", 20), jwtShare: 0.2}
}

// pace is a token bucket for opts.rate: every few milliseconds it issues
// the tokens due since the start (rate x elapsed, so the long-run rate is
// exact whatever the timer's jitter), and idle workers take one each per
// request. The bucket holds 250ms of tokens (at least one per worker), so a
// stall of the workers (a GC pause, a slow commit) is made up for with a
// burst afterwards; tokens due while it is full are dropped and counted:
// the workers could not keep up.
func (l *load) pace() {
	defer l.wg.Done()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var issued int64
	for {
		select {
		case <-tick.C:
		case <-l.stop:
			return
		}
		for due := int64(time.Since(start).Seconds() * l.o.rate); issued < due; issued++ {
			select {
			case l.tokens <- struct{}{}:
			default:
				l.dropped.Add(1)
			}
		}
	}
}

// Stop stops the workers (requests in flight finish) and returns every op.
func (l *load) Stop() []op {
	l.halted.Store(true)
	close(l.stop)
	l.wg.Wait()
	return l.all()
}

func (l *load) all() []op {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []op
	for _, w := range l.ops {
		out = append(out, w...)
	}
	return out
}

// waitFor polls until cond holds for the ops so far, or the timeout passes.
func (l *load) waitFor(timeout time.Duration, cond func(ops []op) bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond(l.all()) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond(l.all())
}

// recovery waits until a signature request sent after since succeeds
// (failing the test after timeout, naming what since was), lets the load run
// on for 2 s and stops it. It returns when that first success ended, the
// start of the steady window (the last 1.5 s), the ops and the stop time.
func (l *load) recovery(t *testing.T, s *server, since time.Time, timeout time.Duration, what string) (recovered, steady time.Time, ops []op, end time.Time) {
	t.Helper()
	if !l.waitFor(timeout, func(ops []op) bool {
		for _, o := range ops {
			if o.kind == kindSig && o.status == http.StatusOK && o.start.After(since) {
				recovered = o.end
				return true
			}
		}
		return false
	}) {
		l.Stop()
		t.Fatalf("authserver did not recover within %s of %s:\n%s", timeout, what, tail(s.logPath, 20))
	}
	// A window of deliberate length: the steady state after recovery.
	time.Sleep(2 * time.Second)
	steady = time.Now().Add(-1500 * time.Millisecond)
	ops = l.Stop()
	return recovered, steady, ops, time.Now()
}

// warmOps is how many requests make "load" on one side of a fault.
const warmOps = 100

// waitOps waits until n requests that started after since have ended: load
// on one side of a fault, established by what was served rather than by a
// fixed sleep. It stops the load and fails the test after 30 s.
func (l *load) waitOps(t testing.TB, n int, since time.Time) {
	t.Helper()
	if !l.waitFor(30*time.Second, func(ops []op) bool {
		return count(ops, func(o op) bool { return o.start.After(since) }).sent >= n
	}) {
		l.Stop()
		t.Fatalf("fewer than %d requests ended within 30 s", n)
	}
}

func (l *load) stopped() bool { return l.halted.Load() }

func (l *load) worker(w int) {
	defer l.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
	client := l.f.newClientFrom(l.o.localAddr)
	defer client.CloseIdleConnections()
	url := l.o.urls[w%len(l.o.urls)]
	var tick *time.Ticker
	if l.o.interval > 0 && l.o.rate == 0 {
		tick = time.NewTicker(l.o.interval)
		defer tick.Stop()
	}
	lastReconnect := time.Now()
	for !l.stopped() {
		if l.tokens != nil {
			select {
			case <-l.tokens:
			case <-l.stop:
				return
			}
		} else if tick != nil {
			select {
			case <-tick.C:
			case <-l.stop:
				return
			}
		}
		if l.o.newConnEvery > 0 && time.Since(lastReconnect) > l.o.newConnEvery {
			client.CloseIdleConnections()
			lastReconnect = time.Now()
		}
		user := l.o.hotUser
		if user == "" || rng.Float64() >= l.o.hotShare {
			user = l.o.users[rng.IntN(len(l.o.users))]
		}
		kind := kindSig
		if rng.Float64() < l.o.jwtShare {
			kind = kindJWT
		}
		o := l.f.request(client, url, kind, user)
		o.worker = w
		l.mu.Lock()
		l.ops[w] = append(l.ops[w], o)
		l.mu.Unlock()
		if o.refused && l.o.stopOnRefused {
			return
		}
		if o.status == http.StatusServiceUnavailable || o.err != nil {
			sleepOrDone(l.o.backoff, l.stop)
		}
	}
}

// request makes one credential request with the fixture's API key and
// checks the credential it gets against the fixture's secrets.
func (f *fixture) request(client *http.Client, url, kind, user string) op {
	o := op{kind: kind, user: user, signedBy: -1}
	path := "/v1/registration-signatures"
	if kind == kindJWT {
		path = "/v1/registration-tokens"
	}
	trace := &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { o.reused = i.Reused },
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			if err == nil && len(cs.PeerCertificates) > 0 {
				o.serial = cs.PeerCertificates[0].SerialNumber.String()
			}
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
		http.MethodPost, url+path, strings.NewReader(`{"userId":"`+user+`"}`))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", f.apiKey)
	o.start = time.Now()
	resp, err := client.Do(req)
	if err != nil {
		o.end = time.Now()
		o.err = err
		o.refused = isRefused(err)
		return o
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	o.end = time.Now()
	if err != nil {
		// A status line without its body is a failed request too.
		o.err = fmt.Errorf("reading the %d response: %w", resp.StatusCode, err)
		return o
	}
	o.status = resp.StatusCode
	o.retryAfter = resp.Header.Get("Retry-After")
	if o.status != http.StatusOK {
		o.problem = string(body[:min(len(body), 200)])
		return o
	}
	if kind == kindJWT {
		var r struct{ Token, UserID string }
		if json.Unmarshal(body, &r) == nil && r.UserID == user {
			o.token = r.Token
			o.signedBy = f.signedByJWT(r.Token)
		}
		return o
	}
	var r struct {
		UserID    string
		Sequence  uint64
		Signature string
	}
	if json.Unmarshal(body, &r) == nil && r.UserID == user {
		o.seq = r.Sequence
		o.signedBy = f.signedBySig(user, r.Sequence, r.Signature)
	}
	return o
}

// signedByJWT returns the index of the secret the token verifies with.
func (f *fixture) signedByJWT(tok string) int {
	for i, s := range f.secrets {
		if _, err := signer.Verify(tok, signer.VerifyParams{ApplicationKey: f.appKey, Secrets: []signer.Secret{s}, Now: time.Now()}); err == nil {
			return i
		}
	}
	return -1
}

// signedBySig recomputes the legacy signature independently of the signer
// package: Base64(SHA1(userId + applicationKey + sequence + secret text)).
func (f *fixture) signedBySig(user string, seq uint64, sig string) int {
	for i, text := range f.secretTexts {
		sum := sha1.Sum([]byte(user + f.appKey + strconv.FormatUint(seq, 10) + text))
		if base64.StdEncoding.EncodeToString(sum[:]) == sig {
			return i
		}
	}
	return -1
}

// tally counts outcomes.
type tally struct {
	sent, ok, unavailable, noRetryAfter, otherStatus, transport, refused, badCredential int
	codes                                                                               map[int]int
	firstErr                                                                            string
}

func (c tally) String() string {
	s := fmt.Sprintf("sent=%d ok=%d 503=%d other-status=%d transport-errors=%d (refused %d)",
		c.sent, c.ok, c.unavailable, c.otherStatus, c.transport, c.refused)
	if c.noRetryAfter > 0 {
		s += fmt.Sprintf(" 503-without-Retry-After=%d", c.noRetryAfter)
	}
	if c.badCredential > 0 {
		s += fmt.Sprintf(" bad-credentials=%d", c.badCredential)
	}
	if len(c.codes) > 0 {
		s += fmt.Sprintf(" codes=%v", c.codes)
	}
	if c.firstErr != "" {
		s += " first-error=" + strconv.Quote(c.firstErr)
	}
	return s
}

// count tallies the ops that satisfy keep (all when keep is nil).
func count(ops []op, keep func(op) bool) tally {
	c := tally{codes: map[int]int{}}
	for _, o := range ops {
		if keep != nil && !keep(o) {
			continue
		}
		c.sent++
		switch {
		case o.err != nil:
			c.transport++
			if o.refused {
				c.refused++
			} else if c.firstErr == "" {
				c.firstErr = o.err.Error()
			}
		case o.status == http.StatusOK:
			c.ok++
			if o.signedBy < 0 {
				c.badCredential++
			}
		case o.status == http.StatusServiceUnavailable:
			c.unavailable++
			if n, err := strconv.Atoi(o.retryAfter); err != nil || n < 1 {
				c.noRetryAfter++
			}
		default:
			c.otherStatus++
			c.codes[o.status]++
			if c.firstErr == "" {
				c.firstErr = fmt.Sprintf("%d %s", o.status, o.problem)
			}
		}
	}
	return c
}

func started(from, to time.Time) func(op) bool {
	return func(o op) bool { return !o.start.Before(from) && o.start.Before(to) }
}

func ofKind(kind string, and func(op) bool) func(op) bool {
	return func(o op) bool { return o.kind == kind && (and == nil || and(o)) }
}

// seqCheck is what checkSequences found.
type seqCheck struct {
	values    int                 // sequences received
	repeats   int                 // a value received twice for one user
	backwards int                 // a client got a value not above its previous one for that user
	byUser    map[string][]uint64 // sorted
}

func (s seqCheck) String() string {
	return fmt.Sprintf("sequences=%d users=%d repeats=%d backwards=%d", s.values, len(s.byUser), s.repeats, s.backwards)
}

// checkSequences checks the legacy-signature sequences received: per user
// never the same value twice (across workers, replicas and restarts), and
// per client and user strictly increasing. It reports failures on t.
func checkSequences(t testing.TB, ops []op) seqCheck {
	t.Helper()
	sc, problems := tallySequences(ops)
	for i, p := range problems {
		if i == 10 {
			t.Errorf("... and %d more", len(problems)-i)
			break
		}
		t.Error(p)
	}
	return sc
}

// tallySequences counts what checkSequences checks and describes each
// problem, without reporting: a test that shows the repeats a fault causes
// when nothing prevents them expects some.
func tallySequences(ops []op) (seqCheck, []string) {
	sc := seqCheck{byUser: map[string][]uint64{}}
	var problems []string
	seen := map[string]map[uint64]int{} // user -> seq -> worker
	last := map[[2]string]uint64{}      // (worker, user) -> last seq
	for _, o := range ops {
		if o.kind != kindSig || o.status != http.StatusOK {
			continue
		}
		if o.seq == 0 {
			problems = append(problems, fmt.Sprintf("worker %d, user %s: a 200 without a sequence", o.worker, o.user))
			continue
		}
		sc.values++
		if seen[o.user] == nil {
			seen[o.user] = map[uint64]int{}
		}
		if w, dup := seen[o.user][o.seq]; dup {
			sc.repeats++
			problems = append(problems, fmt.Sprintf("user %s: sequence %d handed out twice (workers %d and %d)", o.user, o.seq, w, o.worker))
		}
		seen[o.user][o.seq] = o.worker
		k := [2]string{strconv.Itoa(o.worker), o.user}
		if prev, ok := last[k]; ok && o.seq <= prev {
			sc.backwards++
			problems = append(problems, fmt.Sprintf("worker %d, user %s: sequence %d after %d", o.worker, o.user, o.seq, prev))
		}
		last[k] = o.seq
		sc.byUser[o.user] = append(sc.byUser[o.user], o.seq)
	}
	for _, v := range sc.byUser {
		slices.Sort(v)
	}
	return sc, problems
}

// checkCommitted compares the sequences received with the store's committed
// values: nothing above what was committed may have been handed out, and it
// returns how many committed values nobody received (gaps).
func checkCommitted(t testing.TB, sc seqCheck, committed map[string]uint64) (gaps int) {
	t.Helper()
	users := make([]string, 0, len(committed))
	for u := range committed {
		users = append(users, u)
	}
	sort.Strings(users)
	for u := range sc.byUser {
		if _, ok := committed[u]; !ok {
			t.Errorf("user %s: received sequences but the store has no row", u)
		}
	}
	for _, u := range users {
		got := sc.byUser[u]
		if n := len(got); n > 0 && got[n-1] > committed[u] {
			t.Errorf("user %s: received sequence %d, but the store's committed value is only %d", u, got[n-1], committed[u])
		}
		gaps += int(committed[u]) - len(slices.Compact(slices.Clone(got)))
	}
	return gaps
}

// users returns n user ids.
func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return out
}

// percentile returns the p-th percentile (0..1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func latencies(ops []op, keep func(op) bool) []time.Duration {
	var out []time.Duration
	for _, o := range ops {
		if keep == nil || keep(o) {
			out = append(out, o.end.Sub(o.start))
		}
	}
	return out
}

// tlsConfig is the clients' TLS configuration: the fixture's roots only.
func (f *fixture) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: f.roots, MinVersion: tls.VersionTLS12}
}

// newClient returns a client with its own keep-alive transport: one
// connection per client, HTTP/1.1.
func (f *fixture) newClient() *http.Client { return f.newClientFrom("") }

// newClientFrom is newClient connecting from the local address ip (any of
// 127.0.0.0/8 on Linux), so that the server sees another client address;
// "" lets the system choose.
func (f *fixture) newClientFrom(ip string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     f.tlsConfig(),
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     60 * time.Second,
			DialContext:         d.DialContext,
		},
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// drain reads and discards up to 1 MiB.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 1<<20)) }
