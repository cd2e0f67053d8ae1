package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/authserver-dev/authserver/bench/internal/loadgen"
)

// loadKind is what a scenario's virtual users send.
type loadKind string

const (
	loadJWTKey    loadKind = "jwt/api-key"         // POST /v1/registration-tokens, X-API-Key, random user
	loadJWTBearer loadKind = "jwt/rs256"           // the same with the user's own RS256 identity token
	loadSigMany   loadKind = "signature/many"      // POST /v1/registration-signatures, random user
	loadSigHot    loadKind = "signature/hot"       // the same, always one user
	loadMixed     loadKind = "mixed 90/10"         // 90% loadJWTKey, 10% loadSigMany
	loadNewConn   loadKind = "jwt/api-key new-TLS" // loadJWTKey on a new TLS connection per request
)

// hotUser is the one user of loadSigHot.
const hotUser = "hot-user"

// workload prepares requests. It is read-only once built.
type workload struct {
	kind    loadKind
	url     string // https://host:port
	apiKey  string
	bodies  []string   // {"userId":"user-N"} for N < users
	bearers [][]bearer // per virtual user
	roots   *x509.CertPool
}

type bearer struct {
	authz string // "Bearer <token>"
	body  string // {"userId":"<its subject>"}
}

// vu is one virtual user: one goroutine, one client (one connection with
// keep-alive), closed loop.
type vu struct {
	id     int
	client *http.Client
	rng    *mrand.Rand
	n      int
}

// stats is what one measured run collected.
type stats struct {
	Requests  int64           `json:"requests"`
	Errors    int64           `json:"errors"`
	Elapsed   time.Duration   `json:"elapsed_ns"`
	FirstErr  string          `json:"first_error,omitempty"`
	Latencies []time.Duration `json:"-"`
	Resumed   int64           `json:"tls_resumed,omitempty"`
	Handshake int64           `json:"tls_handshakes,omitempty"`
	ClientCPU time.Duration   `json:"client_cpu_ns"` // this process's CPU in the window
	// MachineBusy is the CPU time all processes used in the window.
	MachineBusy time.Duration `json:"machine_busy_ns"`
}

// driver runs one workload against one server with c virtual users; its
// clients (and their connections) live across runs.
type driver struct {
	w         *workload
	vus       []*vu
	resumed   atomic.Int64
	handshake atomic.Int64
}

func newDriver(w *workload, c int) *driver {
	d := &driver{w: w}
	cache := tls.NewLRUClientSessionCache(4 * c)
	for i := range c {
		// A TLS config of our own keeps the transport on HTTP/1.1, one
		// request at a time per connection, like most mobile clients' pools.
		conf := &tls.Config{RootCAs: w.roots}
		tr := &http.Transport{
			TLSClientConfig:     conf,
			MaxIdleConnsPerHost: 1,
			MaxConnsPerHost:     1,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		}
		if w.kind == loadNewConn {
			tr.DisableKeepAlives = true
			conf.ClientSessionCache = cache
			conf.VerifyConnection = func(cs tls.ConnectionState) error {
				d.handshake.Add(1)
				if cs.DidResume {
					d.resumed.Add(1)
				}
				return nil
			}
		}
		d.vus = append(d.vus, &vu{
			id:     i,
			client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
			rng:    mrand.New(mrand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))),
		})
	}
	return d
}

func (d *driver) close() {
	for _, v := range d.vus {
		v.client.CloseIdleConnections()
	}
}

// request builds v's next request.
func (w *workload) request(ctx context.Context, v *vu) *http.Request {
	path, body := "/v1/registration-tokens", ""
	var authz string
	switch w.kind {
	case loadJWTKey, loadNewConn:
		body = w.bodies[v.rng.IntN(len(w.bodies))]
	case loadJWTBearer:
		bs := w.bearers[v.id%len(w.bearers)]
		b := bs[v.n%len(bs)]
		authz, body = b.authz, b.body
	case loadSigMany:
		path, body = "/v1/registration-signatures", w.bodies[v.rng.IntN(len(w.bodies))]
	case loadSigHot:
		path, body = "/v1/registration-signatures", `{"userId":"`+hotUser+`"}`
	case loadMixed:
		if v.rng.IntN(10) == 0 {
			path = "/v1/registration-signatures"
		}
		body = w.bodies[v.rng.IntN(len(w.bodies))]
	}
	v.n++
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.url+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	} else {
		req.Header.Set("X-API-Key", w.apiKey)
	}
	return req
}

// run drives the server for warmup (unmeasured) and then dur; it returns
// what the measured part saw. A request counts if it ended in the window.
// mark, if set, is called as the window opens (true) and closes (false).
func (d *driver) run(ctx context.Context, warmup, dur time.Duration, mark func(start bool)) stats {
	var h0, r0, h1, r1 int64
	var cpu0, busy0, cpu1, busy1 time.Duration
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := loadgen.Run(ctx, len(d.vus), warmup, dur, func(ctx context.Context, i int) error {
		v := d.vus[i]
		resp, err := v.client.Do(d.w.request(ctx, v))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}, func(start bool) {
		if start {
			h0, r0 = d.handshake.Load(), d.resumed.Load()
			if mark != nil {
				mark(true)
			}
			cpu0, busy0 = selfCPU(), machineBusy()
			return
		}
		cpu1, busy1 = selfCPU(), machineBusy()
		if mark != nil {
			mark(false)
		}
		h1, r1 = d.handshake.Load(), d.resumed.Load()
	})
	return stats{Requests: res.Calls, Errors: res.Errors, FirstErr: res.FirstErr, Elapsed: res.Elapsed, Latencies: res.Latencies,
		Handshake: h1 - h0, Resumed: r1 - r0, ClientCPU: cpu1 - cpu0, MachineBusy: busy1 - busy0}
}

// selfCPU is the user+system CPU this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the non-idle CPU time of all CPUs since boot, from the
// first line of /proc/stat (USER_HZ ticks of 1/100 s).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		// user nice system idle iowait irq softirq steal (guest is in user)
		if i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// userBodies returns {"userId":"user-N"} for N < n.
func userBodies(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = `{"userId":"user-` + strconv.Itoa(i) + `"}`
	}
	return out
}
