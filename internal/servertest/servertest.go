// Package servertest runs the real authserver binary for tests and the
// benchmark harness: it builds the binary once, starts it with a clean
// environment, waits for it by polling (never a fixed sleep), scrapes
// /metrics, reads the JSON log, and stops it gracefully or with kill -9.
//
// It imports only the standard library, so any test package (including
// those of internal/auth and internal/config) may use it without a cycle.
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Package is the import path of the command the harness builds.
const Package = "github.com/authserver-dev/authserver/cmd/authserver"

// builds caches one build of the binary per test process: the harness's
// only state, and only test infrastructure.
var builds struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the authserver binary, building it on first
// use in this process. The build goes to a directory shared by every test
// process of the module (named after the module's directory) under a file
// lock: the first package to ask links it, the others find it up to date
// (`go build` does not relink a target whose build ID matches).
func Binary(tb testing.TB) string {
	tb.Helper()
	builds.once.Do(func() { builds.path, builds.err = Build(context.Background()) })
	if builds.err != nil {
		tb.Fatal(builds.err)
	}
	return builds.path
}

// ModuleRoot returns the directory of the module the current directory is
// in (go env GOMOD), where `go build` of the module's packages runs.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("servertest: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("servertest: not inside the authserver module")
	}
	return filepath.Dir(mod), nil
}

// BuildInto builds the module's main packages (import paths, or paths
// relative to the module's root such as ./bench/baseline) into dir, each
// binary named after its package's directory.
func BuildInto(ctx context.Context, dir string, pkgs ...string) error {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("servertest: go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// Build builds the binary into the shared directory and returns its path.
func Build(ctx context.Context) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("authserver-servertest-%s-uid%d", hex.EncodeToString(sum[:6]), os.Geteuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("servertest: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("servertest: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("servertest: locking %s: %w", lock.Name(), err)
	}
	if err := BuildInto(ctx, dir, Package); err != nil {
		return "", err
	}
	return filepath.Join(dir, "authserver"), nil
}

// CleanEnv is the test's environment without AUTHSERVER_* variables, which
// would override the configuration a test writes.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHSERVER_") {
			env = append(env, kv)
		}
	}
	return env
}

// RandomHex returns n random bytes in hex: API keys, names that must not
// collide. (crypto/rand.Read never returns an error.)
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RandomBase64 returns n random bytes in standard Base64: an application
// secret as the configuration and the signer take it.
func RandomBase64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// KeyHash is the hex SHA-256 of an API key: what a configuration's
// api_keys[].sha256 holds.
func KeyHash(apiKey string) string {
	sum := sha256.Sum256([]byte(apiKey))
	return hex.EncodeToString(sum[:])
}

// ProcStatusKB reads a "Name:   N kB" line of /proc/<pid>/status, such as
// VmRSS or VmHWM (Linux only).
func ProcStatusKB(pid int, name string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, name)
}

// FreeAddr returns a loopback address whose port was free a moment ago.
// Prefer port 0 and the address the server reports; this is for servers
// that must come back at the same address after a restart.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("servertest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Certificate reads the first certificate of a PEM file (a server's
// self-signed certificate, for a client's roots).
func Certificate(certFile string) (*x509.Certificate, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", certFile)
	}
	return x509.ParseCertificate(block.Bytes)
}

// Buffer is an io.Writer that a server's goroutines (or a child process's
// output copier) and the test may share.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Bytes returns a copy of everything written so far.
func (b *Buffer) Bytes() []byte { return []byte(b.String()) }

// Lines returns the JSON log lines whose msg is msg (every JSON line when
// msg is empty); lines that are not JSON objects are skipped.
func (b *Buffer) Lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if !strings.HasPrefix(strings.TrimSpace(line), "{") || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if msg == "" || m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Poll calls cond every few milliseconds until it returns true, or until
// timeout, when it returns an error naming what.
func Poll(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("servertest: %s: not within %s", what, timeout)
		}
		time.Sleep(wait)
	}
	return nil
}

// Scrape returns the text of adminURL/metrics.
func Scrape(adminURL string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(adminURL + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/metrics: %s", adminURL, resp.Status)
	}
	return string(body), nil
}

// Samples returns the value of each sample in the exposition text whose
// series (name with its labels, exactly as exposed) is asked for. A missing
// series is an error.
func Samples(text string, series ...string) (map[string]float64, error) {
	all := ParseSamples(text)
	out := map[string]float64{}
	for _, s := range series {
		v, ok := all[s]
		if !ok {
			return nil, fmt.Errorf("/metrics has no %s", s)
		}
		out[s] = v
	}
	return out, nil
}

// ParseSamples returns every sample of the exposition text by series (name
// with its labels, exactly as exposed); comments and lines whose value does
// not parse are skipped.
func ParseSamples(text string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			out[name] = f
		}
	}
	return out
}

// Process is one run of the binary.
type Process struct {
	Cmd *exec.Cmd
	// Out is the process's stdout and stderr (interleaved); nil when
	// Options.Output was given.
	Out *Buffer
	// Public and Admin are host:port, from the "authserver started" log
	// line (JSON log) or Options.Public/Admin.
	Public, Admin string

	done chan struct{} // closed once the process has exited and been reaped
	err  error         // exit status, valid after done
}

// Options says how to start the binary.
type Options struct {
	Binary string   // required
	Args   []string // e.g. serve --config FILE
	Env    []string // added to CleanEnv
	// Output receives stdout and stderr instead of Out (a log file, for
	// long runs).
	Output io.Writer
	// Public and Admin, when set, are the addresses the configuration
	// fixes; otherwise Start reads them from the JSON "authserver started"
	// log line (configure listen and admin_listen as 127.0.0.1:0).
	Public, Admin string
}

// Launch starts the process and returns without waiting for it.
//
// The child gets Pdeathsig, so a test binary that dies takes its servers
// with it; Pdeathsig fires when the starting thread exits, so the child is
// started and waited for on one locked thread that lives as long as it.
func Launch(o Options) (*Process, error) {
	p := &Process{Cmd: exec.Command(o.Binary, o.Args...), Public: o.Public, Admin: o.Admin, done: make(chan struct{})}
	p.Cmd.Env = append(CleanEnv(), o.Env...)
	out := o.Output
	if out == nil {
		p.Out = &Buffer{}
		out = p.Out
	}
	p.Cmd.Stdout, p.Cmd.Stderr = out, out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := p.Cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("servertest: starting %s: %w", o.Binary, err)
	}
	return p, nil
}

// New starts the process for one test, waits until it is ready and stops
// it (SIGTERM, then SIGKILL) when the test ends, logging its output if the
// test failed.
func New(tb testing.TB, o Options) *Process {
	tb.Helper()
	p, err := Launch(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Stop(15 * time.Second); errors.Is(err, ErrKilled) {
			tb.Error(err)
		}
		if tb.Failed() && p.Out != nil {
			tb.Logf("%s output:%s", p.name(), p.outTail())
		}
	})
	if err := p.WaitReady(context.Background(), 60*time.Second); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Start launches the process and waits until it is ready (WaitReady).
func Start(ctx context.Context, o Options, timeout time.Duration) (*Process, error) {
	p, err := Launch(o)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx, timeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// WaitReady polls until the addresses are known and /readyz answers 200;
// it fails at once if the process exits.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last string
	err := Poll(timeout, "ready", func() bool {
		if p.Exited() || ctx.Err() != nil {
			return true
		}
		if p.Admin == "" {
			if p.Out == nil {
				last = "no admin address (Options.Admin or Out needed)"
				return false
			}
			l := p.Out.Lines("authserver started")
			if len(l) == 0 {
				last = "no \"authserver started\" log line yet"
				return false
			}
			p.Public, _ = l[0]["listen"].(string)
			p.Admin, _ = l[0]["admin_listen"].(string)
		}
		resp, err := c.Get("http://" + p.Admin + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		last = "/readyz: " + resp.Status
		return resp.StatusCode == http.StatusOK
	})
	switch {
	case p.Exited():
		return fmt.Errorf("servertest: %s exited before it was ready (%v)%s", p.name(), p.err, p.outTail())
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("%w (last: %s)%s", err, last, p.outTail())
	}
	return nil
}

func (p *Process) name() string { return strings.Join(p.Cmd.Args, " ") }

func (p *Process) outTail() string {
	if p.Out == nil {
		return ""
	}
	s := p.Out.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return "\n" + s
}

// AdminURL and PublicURL are the listeners' base URLs.
func (p *Process) AdminURL() string  { return "http://" + p.Admin }
func (p *Process) PublicURL() string { return "https://" + p.Public }

// Pid is the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the exit status; valid once Done is closed.
func (p *Process) Err() error { <-p.done; return p.err }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return syscall.Kill(p.Pid(), sig) }

// Wait waits up to timeout for the process to exit and returns its exit
// status.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("servertest: %s did not exit within %s", p.name(), timeout)
	}
}

// ErrKilled is what Stop returns when it had to kill the process.
var ErrKilled = errors.New("servertest: killed")

// Stop sends SIGTERM (what docker stop and Kubernetes send) and waits for
// the drain; after timeout it kills the process and says so.
func (p *Process) Stop(timeout time.Duration) error {
	if !p.Exited() {
		_ = p.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%w: %s did not stop within %s of SIGTERM", ErrKilled, p.name(), timeout)
	}
}

// Kill crashes the process (SIGKILL) and waits until it is reaped.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Metrics scrapes the process's /metrics.
func (p *Process) Metrics() (string, error) { return Scrape(p.AdminURL()) }

// Samples scrapes /metrics and returns the asked-for series' values.
func (p *Process) Samples(series ...string) (map[string]float64, error) {
	text, err := p.Metrics()
	if err != nil {
		return nil, err
	}
	return Samples(text, series...)
}

// Run runs the binary to completion with a clean environment plus env and
// returns its stdout, stderr and exit code (-1 with an error if it could
// not run or timed out).
func Run(bin string, env []string, timeout time.Duration, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(CleanEnv(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0, nil
	case errors.As(err, &ee) && ctx.Err() == nil:
		return o.String(), e.String(), ee.ExitCode(), nil
	}
	return o.String(), e.String(), -1, fmt.Errorf("servertest: authserver %s: %w", strings.Join(args, " "), err)
}
