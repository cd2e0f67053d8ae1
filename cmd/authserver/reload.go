package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/httpapi"
	"github.com/authserver-dev/authserver/internal/metrics"
	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// defaultPollEvery is how often the config file and the secret files are
// checked for changes.
const defaultPollEvery = time.Second

// reloadSource tells serve where a configuration reload reads from.
type reloadSource struct {
	// load reads and validates the configuration afresh, the way it was
	// read at start.
	load func() (*config.Config, error)
	// file is the config file ("" when there is none). Its contents are
	// watched, with those of the secret files the configuration names.
	file string
	// getenv is the environment load applies; it is used to find the
	// secret files of a configuration that fails to load, so that fixing
	// one of them triggers a reload too.
	getenv config.Env
	// pollEvery is how often the files are checked: 0 means
	// defaultPollEvery, negative means never (reload on signals only).
	pollEvery time.Duration
	// signals triggers a reload on every receive. nil: SIGHUP, subscribed
	// to while serve runs (and only then, so a SIGHUP outside serve keeps
	// its default action).
	signals <-chan os.Signal
	// done, when set, is called after every reload attempt (tests).
	done func(error)
}

// reloader applies configuration reloads to a running server: it builds the
// new State (API keys, identity token verifier, rate limiters) before
// touching anything, switches the TLS certificate files if they changed, and
// swaps the State in one atomic store. A reload that fails anywhere leaves
// everything as it was.
type reloader struct {
	m   *metrics.Metrics
	log *slog.Logger
	src *reloadSource // nil: no reloads

	verifier atomic.Pointer[auth.Verifier] // in use; nil without identity providers

	mu    sync.Mutex // one reload at a time; guards the fields below
	ctx   context.Context
	cfg   *config.Config // running
	st    *httpapi.State
	srv   *httpapi.Server
	certs *tlsutil.Reloader // nil with insecure_http
	watch []string          // files whose contents trigger a reload
	stamp string            // fingerprint of watch when last (re)loaded
}

func newReloader(cfg *config.Config, v *auth.Verifier, m *metrics.Metrics, logger *slog.Logger, src *reloadSource) *reloader {
	r := &reloader{m: m, log: logger, src: src, cfg: cfg, ctx: context.Background()}
	r.verifier.Store(v)
	return r
}

// verifierReady is the identity_providers readiness check: it asks the
// verifier in use, which a reload may have replaced.
func (r *reloader) verifierReady(context.Context) error {
	if v := r.verifier.Load(); v != nil {
		return v.Ready()
	}
	return nil
}

// verifierProbe is the identity_providers dependency check: whether the
// providers of the verifier in use answer now.
func (r *reloader) verifierProbe(ctx context.Context) error {
	if v := r.verifier.Load(); v != nil {
		return v.Probe(ctx)
	}
	return nil
}

// close closes the verifier in use; serve calls it on its way out, after
// the stop function of start.
func (r *reloader) close() {
	if v := r.verifier.Swap(nil); v != nil {
		v.Close()
	}
}

// start begins watching for reload triggers: the signals (SIGHUP by default)
// and, every pollEvery, changes of the watched files' contents. The returned
// function stops watching and waits for a reload in progress to finish.
func (r *reloader) start(ctx context.Context, srv *httpapi.Server, st *httpapi.State, certs *tlsutil.Reloader) (stop func()) {
	if r.src == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.ctx, r.srv, r.st, r.certs = ctx, srv, st, certs
	r.watch = r.watchList()
	r.stamp = fingerprint(r.watch)
	r.mu.Unlock()

	sig := r.src.signals
	unsubscribe := func() {}
	if sig == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		sig, unsubscribe = ch, func() { signal.Stop(ch) }
	}
	var tick <-chan time.Time
	if every := r.src.pollEvery; every >= 0 {
		if every == 0 {
			every = defaultPollEvery
		}
		t := time.NewTicker(every)
		tick = t.C
		prev := unsubscribe
		unsubscribe = func() { prev(); t.Stop() }
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		// A change is reloaded once two checks in a row see the same new
		// contents, so a file caught half-written (an editor truncating
		// and rewriting it) does not cause a failed reload.
		var pending string
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				pending = ""
				_ = r.reload("signal")
			case <-tick:
				switch fp, changed := r.filesChanged(); {
				case !changed:
					pending = ""
				case fp == pending:
					pending = ""
					_ = r.reload("file change")
				default:
					pending = fp
				}
			}
		}
	})
	return func() {
		cancel()
		unsubscribe()
		wg.Wait()
	}
}

// filesChanged fingerprints the watched files and reports whether their
// contents changed since the last reload.
func (r *reloader) filesChanged() (fp string, changed bool) {
	r.mu.Lock()
	watch, stamp := r.watch, r.stamp
	r.mu.Unlock()
	fp = fingerprint(watch)
	return fp, fp != stamp
}

// reload reads the configuration and applies it, or keeps the running one
// and says why in one log line. Every attempt counts in
// authserver_config_reload_total.
func (r *reloader) reload(trigger string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The fingerprint is taken before reading: a file that changes while
	// the reload reads it is reloaded once more, never missed.
	pre := fingerprint(r.watch)
	err := r.apply(trigger)
	if err != nil {
		r.m.ConfigReload.WithLabelValues("error").Inc()
		r.log.Error("configuration reload failed; keeping the running configuration",
			"trigger", trigger, "key", errorKey(err), "error", oneLine(err.Error()))
	} else {
		r.m.ConfigReload.WithLabelValues("success").Inc()
	}
	if watch := r.watchList(); slices.Equal(watch, r.watch) {
		r.stamp = pre
	} else {
		r.watch, r.stamp = watch, fingerprint(watch)
	}
	if trigger == "signal" && r.certs != nil {
		// SIGHUP also rereads unchanged certificate paths now rather than
		// at the next handshake check; the Reloader reports that itself.
		_ = r.certs.Reload()
	}
	if r.src.done != nil {
		r.src.done(err)
	}
	return err
}

// apply does one reload; on error nothing has changed.
func (r *reloader) apply(trigger string) error {
	next, err := r.src.load()
	if err != nil {
		return err
	}
	old := r.cfg
	restart := keepRestartOnly(old, next)
	changed := changes(old, next)
	reuseSecrets(old, next)

	// Build everything that can fail before changing anything.
	oldV := r.verifier.Load()
	v := oldV
	var keys *auth.APIKeys
	var newV *auth.Verifier
	if reflect.DeepEqual(old.IdentityProviders, next.IdentityProviders) {
		// Same providers: keep the verifier and its loaded keys.
		noIdP := *next
		noIdP.IdentityProviders = nil
		if keys, _, err = buildAuth(r.ctx, &noIdP, r.m, r.log); err != nil {
			return err
		}
	} else {
		if keys, newV, err = buildAuth(r.ctx, next, r.m, r.log); err != nil {
			return err
		}
		// At start an unreachable provider is retried in the background;
		// a reload must not swap working keys for none, so it is refused.
		if newV != nil {
			if err := newV.Ready(); err != nil {
				newV.Close()
				return &config.Error{Key: "identity_providers", Problem: err.Error()}
			}
		}
		v = newV
	}
	if r.certs != nil && next.TLS != old.TLS {
		leaf, err := r.certs.SetFiles(next.TLS.CertFile, next.TLS.KeyFile)
		if err != nil {
			if newV != nil {
				newV.Close()
			}
			return &config.Error{Key: "tls", Problem: err.Error()}
		}
		r.m.TLSCertificateExpiry.Set(float64(leaf.NotAfter.Unix()))
	}

	// Commit: one atomic swap. Requests in flight finish with the State
	// they loaded, including the old verifier, which still verifies with
	// its loaded keys after Close.
	var tv httpapi.TokenVerifier
	if v != nil {
		tv = v
	}
	st := httpapi.NextState(r.st, next, keys, tv)
	r.srv.SetState(st)
	r.st, r.cfg = st, next
	if v != oldV {
		r.verifier.Store(v)
		if oldV != nil {
			oldV.Close()
		}
	}

	for _, k := range restart {
		r.log.Warn("configuration change needs a restart to take effect; the running value is kept", "key", k)
	}
	if len(changed) == 0 {
		changed = []string{"none"}
	}
	r.log.Info("configuration reloaded", "trigger", trigger, "changed", strings.Join(changed, ", "),
		"applications", len(next.Applications), "api_keys", len(next.APIKeys), "identity_providers", len(next.IdentityProviders))
	return nil
}

// keepRestartOnly puts the running values of the keys a reload cannot
// change into next, and names those that differed.
func keepRestartOnly(old, next *config.Config) []string {
	var keys []string
	keep := func(key string, differs bool, restore func()) {
		if differs {
			keys = append(keys, key)
			restore()
		}
	}
	keep("listen", old.Listen != next.Listen, func() { next.Listen = old.Listen })
	keep("admin_listen", old.AdminListen != next.AdminListen, func() { next.AdminListen = old.AdminListen })
	keep("insecure_http", old.InsecureHTTP != next.InsecureHTTP, func() {
		next.InsecureHTTP, next.TLS = old.InsecureHTTP, old.TLS
	})
	keep("database_url", old.DatabaseURL != next.DatabaseURL, func() { next.DatabaseURL = old.DatabaseURL })
	keep("data_dir", old.DataDir != next.DataDir, func() { next.DataDir = old.DataDir })
	keep("trusted_proxies", !slices.Equal(old.TrustedProxies, next.TrustedProxies), func() {
		next.TrustedProxies, next.Proxies = old.TrustedProxies, old.Proxies
	})
	keep("pprof", old.Pprof != next.Pprof, func() { next.Pprof = old.Pprof })
	keep("log", old.Log != next.Log, func() { next.Log = old.Log })
	keep("sequence", old.Sequence != next.Sequence, func() { next.Sequence = old.Sequence })
	return keys
}

// changes names what a reload changes, for the log: sections, and
// applications by key. Never a value.
func changes(old, next *config.Config) []string {
	var out []string
	for _, a := range next.Applications {
		o := old.Application(a.Key)
		switch {
		case o == nil:
			out = append(out, "applications["+a.Key+"] added")
			continue
		case !secretsEqual(o.Secrets, a.Secrets):
			out = append(out, "applications["+a.Key+"].secrets")
		}
		oa, na := *o, a
		oa.Secrets, na.Secrets = nil, nil
		if !reflect.DeepEqual(oa, na) {
			out = append(out, "applications["+a.Key+"]")
		}
	}
	for _, a := range old.Applications {
		if next.Application(a.Key) == nil {
			out = append(out, "applications["+a.Key+"] removed")
		}
	}
	if !reflect.DeepEqual(old.APIKeys, next.APIKeys) {
		out = append(out, "api_keys")
	}
	if !reflect.DeepEqual(old.IdentityProviders, next.IdentityProviders) {
		out = append(out, "identity_providers")
	}
	if old.RateLimits.User != next.RateLimits.User || old.RateLimits.IP != next.RateLimits.IP || old.RateLimits.APIKey != next.RateLimits.APIKey ||
		old.RateLimits.IPFailedAuth != next.RateLimits.IPFailedAuth {
		out = append(out, "rate_limits")
	}
	if !slices.Equal(old.CORS.AllowedOrigins, next.CORS.AllowedOrigins) {
		out = append(out, "cors")
	}
	if old.TLS != next.TLS {
		out = append(out, "tls")
	}
	return out
}

func secretsEqual(a, b []signer.Secret) bool {
	return slices.EqualFunc(a, b, signer.Secret.Equal)
}

// reuseSecrets carries unchanged secrets over from the running
// configuration, with the signing keys they have cached.
func reuseSecrets(old, next *config.Config) {
	for i := range next.Applications {
		a := &next.Applications[i]
		o := old.Application(a.Key)
		if o == nil {
			continue
		}
		for j, s := range a.Secrets {
			if k := slices.IndexFunc(o.Secrets, s.Equal); k >= 0 {
				a.Secrets[j] = o.Secrets[k]
			}
		}
	}
}

// errorKey is the config key a reload error concerns, for the log line.
func errorKey(err error) string {
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Key
	}
	if rest, ok := strings.CutPrefix(err.Error(), "config: "); ok {
		if key, _, ok := strings.Cut(rest, ": "); ok {
			return key
		}
	}
	return ""
}

// watchList names the files a reload reads: the config file and the secret
// files of both the running configuration and the one in the file now (even
// if it does not load, so that creating a missing secret file retries).
func (r *reloader) watchList() []string {
	var files []string
	add := func(c *config.Config) {
		for _, a := range c.Applications {
			if a.SecretFile != "" {
				files = append(files, a.SecretFile)
			}
		}
		for _, p := range c.IdentityProviders {
			if p.HS256SecretFile != "" {
				files = append(files, p.HS256SecretFile)
			}
		}
	}
	add(r.cfg)
	if r.src.file != "" {
		files = append(files, r.src.file)
		if f, err := os.Open(r.src.file); err == nil {
			getenv := r.src.getenv
			c := config.Defaults()
			if config.Decode(f, &c) == nil && config.ApplyEnv(&c, getenv) == nil {
				add(&c)
			}
			f.Close()
		}
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// fingerprint hashes the contents of files (or why they cannot be read).
func fingerprint(files []string) string {
	h := sha256.New()
	for _, name := range files {
		fmt.Fprintf(h, "%s\x00", name)
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(h, "error: %v\x00", err)
			continue
		}
		// Secret and config files are small; the bound keeps a wrong path
		// (a device, a huge file) cheap.
		n, err := io.Copy(h, io.LimitReader(f, 1<<20))
		f.Close()
		fmt.Fprintf(h, "\x00%d %v\x00", n, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
