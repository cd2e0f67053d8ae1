package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/authserver-dev/authserver/internal/servertest"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// Names the harness gives the application and its credentials.
const (
	benchAppKey   = "bench-app"
	benchAudience = "authserver-bench"
)

// env is what every server of a run shares: binaries, certificate, the
// application secret, the API key and the identity provider.
type env struct {
	dir          string // temporary root: binaries, certificate, configs, logs, data
	authserver   string // binary
	baseline     string // binary
	seqbench     string // binary, built by the first seq or preload scenario
	other        string // -other: another authserver binary, for scenario "other"
	certFile     string
	keyFile      string
	roots        *x509.CertPool
	secret       string // Base64 application secret
	secretFile   string
	apiKey       string
	issuer       string // the in-harness OIDC provider ("" when none)
	pprof        bool
	authLogLevel string
	started      int // servers started so far: names their files
}

// newEnv builds both binaries and writes the files every server needs.
func newEnv(ctx context.Context, dir string, stderr io.Writer) (*env, error) {
	e := &env{dir: dir, authLogLevel: "info"}
	bin := filepath.Join(dir, "bin")
	fmt.Fprintf(stderr, "bench: go build -o %s ./cmd/authserver ./bench/baseline\n", bin)
	if err := servertest.BuildInto(ctx, bin, "./cmd/authserver", "./bench/baseline"); err != nil {
		return nil, err
	}
	e.authserver, e.baseline = filepath.Join(bin, "authserver"), filepath.Join(bin, "baseline")

	// The same self-signed ECDSA P-256 certificate as `authserver dev`.
	var err error
	if e.certFile, e.keyFile, err = tlsutil.SelfSigned(filepath.Join(dir, "tls"), time.Now()); err != nil {
		return nil, err
	}
	cert, err := servertest.Certificate(e.certFile)
	if err != nil {
		return nil, err
	}
	e.roots = x509.NewCertPool()
	e.roots.AddCert(cert)

	e.secret = servertest.RandomBase64(16)
	e.secretFile = filepath.Join(dir, "app-secret")
	if err := os.WriteFile(e.secretFile, []byte(e.secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	e.apiKey = "bench-" + servertest.RandomHex(16)
	return e, nil
}

// serverKind names one way of running a server.
type serverKind string

const (
	baselineJWT     serverKind = "baseline"              // bench/baseline -mode jwt
	baselineBare    serverKind = "bare-tls"              // bench/baseline -mode bare
	baselineHello   serverKind = "hello-tls"             // bench/baseline -mode hello: the yardstick
	authBolt        serverKind = "authserver"            // embedded store (clock floor on: the default)
	authBoltNoFloor serverKind = "authserver-nofloor"    // embedded store, sequence.clock_floor: false
	authPG          serverKind = "authserver-pg"         // Postgres, group commit and clock floor (the defaults)
	authPGNoFloor   serverKind = "authserver-pg-nofloor" // Postgres, sequence.clock_floor: false
	authPGNoGC      serverKind = "authserver-pg-1"       // Postgres, sequence.disable_group_commit: true
	authOther       serverKind = "authserver-other"      // the -other binary, embedded store
)

func (k serverKind) isAuthserver() bool { return strings.HasPrefix(string(k), "authserver") }

// server is one running server process.
type server struct {
	kind    serverKind
	proc    *servertest.Process
	url     string // https://127.0.0.1:port
	admin   string // http://127.0.0.1:port; authserver only
	pprof   string // base URL of /debug/pprof/ when the harness's -pprof is set
	logPath string
	logFile *os.File
	started time.Time
	ready   time.Duration // exec to ready
}

// startOptions are per-start choices.
type startOptions struct {
	databaseURL string // Postgres kinds
	dataDir     string // authBolt; empty: a fresh one
}

// start launches a server of kind and waits until it answers.
func (e *env) start(ctx context.Context, kind serverKind, o startOptions) (*server, error) {
	addr, err := servertest.FreeAddr() // fixed before start: the baseline reports no address
	if err != nil {
		return nil, err
	}
	s := &server{kind: kind, url: "https://" + addr}
	e.started++
	name := fmt.Sprintf("%s-%d", kind, e.started)
	var args []string
	var bin string
	switch kind {
	case baselineJWT, baselineBare, baselineHello:
		mode := map[serverKind]string{baselineJWT: "jwt", baselineBare: "bare", baselineHello: "hello"}[kind]
		bin = e.baseline
		args = []string{"-listen", addr, "-cert", e.certFile, "-key", e.keyFile,
			"-mode", mode, "-app-key", benchAppKey, "-app-secret", e.secret}
		if e.pprof {
			pp, err := servertest.FreeAddr()
			if err != nil {
				return nil, err
			}
			s.pprof = "http://" + pp
			args = append(args, "-pprof-listen", pp)
		}
	default:
		adminAddr, err := servertest.FreeAddr()
		if err != nil {
			return nil, err
		}
		s.admin = "http://" + adminAddr
		s.pprof = s.admin
		cfgPath := filepath.Join(e.dir, name+".yaml")
		if err := os.WriteFile(cfgPath, e.authConfig(kind, addr, adminAddr, o, name), 0o600); err != nil {
			return nil, err
		}
		bin = e.authserver
		if kind == authOther {
			bin = e.other
		}
		args = []string{"serve", "--config", cfgPath}
	}
	s.logPath = filepath.Join(e.dir, name+".log")
	if s.logFile, err = os.Create(s.logPath); err != nil {
		return nil, err
	}
	s.started = time.Now()
	if s.proc, err = servertest.Launch(servertest.Options{Binary: bin, Args: args, Output: s.logFile}); err != nil {
		s.logFile.Close()
		return nil, err
	}
	if err := s.waitReady(ctx, e, 60*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w\n%s", kind, err, tail(s.logPath, 2000))
	}
	return s, nil
}

// authConfig writes the YAML of one authserver: the bench application, one
// API key, the in-harness OIDC provider, rate limits on but far above what
// the harness can send, and the default access log (info, JSON) kept on.
func (e *env) authConfig(kind serverKind, addr, adminAddr string, o startOptions, name string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "listen: %s\nadmin_listen: %s\n", addr, adminAddr)
	fmt.Fprintf(&b, "tls: {cert_file: %q, key_file: %q}\n", e.certFile, e.keyFile)
	switch kind {
	case authBolt, authBoltNoFloor, authOther, authBoltApps, authBoltKeys, authBoltIdPs:
		dir := o.dataDir
		if dir == "" {
			dir = filepath.Join(e.dir, name+"-data")
		}
		fmt.Fprintf(&b, "data_dir: %q\n", dir)
	default:
		fmt.Fprintf(&b, "database_url: %q\n", o.databaseURL)
	}
	b.WriteString("applications:\n")
	writeWide(&b, e, kind, "applications") // before the bench application: the old scan's worst case
	fmt.Fprintf(&b, "  - key: %s\n    secret_file: %q\n    default: true\n", benchAppKey, e.secretFile)
	if e.issuer != "" {
		fmt.Fprintf(&b, "identity_providers:\n  - issuer: %q\n    audience: %s\n", e.issuer, benchAudience)
		writeWide(&b, e, kind, "identity_providers")
	}
	b.WriteString("api_keys:\n")
	writeWide(&b, e, kind, "api_keys") // before the bench key: the old scan's worst case
	fmt.Fprintf(&b, "  - name: bench\n    sha256: %s\n    applications: [\"*\"]\n", servertest.KeyHash(e.apiKey))
	b.WriteString("rate_limits: {per_user: \"1000000/s\", per_ip: \"1000000/s\", per_api_key: \"1000000/s\"}\n")
	fmt.Fprintf(&b, "log: {format: json, level: %s}\n", e.authLogLevel)
	fmt.Fprintf(&b, "pprof: %t\n", e.pprof)
	switch kind {
	case authPGNoGC:
		b.WriteString("sequence: {disable_group_commit: true}\n")
	case authPGNoFloor, authBoltNoFloor:
		b.WriteString("sequence: {clock_floor: false}\n")
	}
	return b.Bytes()
}

// withPoolSize sets pgxpool's pool_max_conns on a database URL.
func withPoolSize(url string, n int) string {
	if n <= 0 {
		return url
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "pool_max_conns=" + strconv.Itoa(n)
}

// waitReady polls until the server is ready: authserver's /readyz, the
// baseline's public port (one real request).
func (s *server) waitReady(ctx context.Context, e *env, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	plain := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer plain.CloseIdleConnections()
	secure := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: e.roots},
	}}
	defer secure.CloseIdleConnections()
	for {
		var ok bool
		if s.admin != "" {
			if resp, err := plain.Get(s.admin + "/readyz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
		} else {
			req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/registration-tokens", strings.NewReader(`{"userId":"ready"}`))
			if resp, err := secure.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
		}
		if ok {
			s.ready = time.Since(s.started)
			return nil
		}
		select {
		case <-s.proc.Done():
			return fmt.Errorf("exited before it was ready: %v", s.proc.Err())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", limit)
		}
	}
}

// stop sends SIGTERM, waits for the drain, and kills after 15 s.
func (s *server) stop() {
	_ = s.proc.Stop(15 * time.Second)
	s.logFile.Close()
}

// pid is the server process's id.
func (s *server) pid() int { return s.proc.Pid() }

// cpuTime is the user+system CPU the process has used (all threads), from
// /proc/<pid>/stat, in clock ticks of 1/100 s (USER_HZ on Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// fetch GETs url into path (pprof profiles).
func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// batchStats are the sum and count of authserver_sequence_batch_size.
// dsum is authserver_sequence_store_duration_seconds_sum (any store).
type batchStats struct{ sum, count, dsum float64 }

// scrapeBatches reads the sequence store's batch histogram from /metrics;
// zero for the baseline or on any error.
func scrapeBatches(s *server) batchStats {
	var b batchStats
	if s.admin == "" {
		return b
	}
	text, err := servertest.Scrape(s.admin)
	if err != nil {
		return b
	}
	all := servertest.ParseSamples(text)
	b.sum, b.count = all["authserver_sequence_batch_size_sum"], all["authserver_sequence_batch_size_count"]
	for name, v := range all {
		if strings.HasPrefix(name, "authserver_sequence_store_duration_seconds_sum") {
			b.dsum += v
		}
	}
	return b
}
