package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/httpapi"
	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// DefaultPollEvery is how often the config file and the secret files are
// checked for changes.
const DefaultPollEvery = time.Second

// Source tells the Reloader where a configuration reload reads from.
type Source struct {
	// Load reads and validates the configuration afresh, the way it was
	// read at start.
	Load func() (*config.Config, error)
	// File is the config file ("" when there is none). Its contents are
	// watched, with those of the secret files the configuration names.
	File string
	// Getenv is the environment Load applies; it is used to find the
	// secret files of a configuration that fails to load, so that fixing
	// one of them triggers a reload too.
	Getenv config.Env
	// PollEvery is how often the files are checked: 0 means
	// DefaultPollEvery, negative means never (reload on signals only).
	PollEvery time.Duration
	// Signals triggers a reload on every receive. nil: SIGHUP, subscribed
	// to while the Reloader runs (and only then, so a SIGHUP outside it
	// keeps its default action).
	Signals <-chan os.Signal
	// Done, when set, is called after every reload attempt (tests).
	Done func(error)
}

// Reloader applies configuration reloads to a running server: it builds
// the next Snapshot (Builder.Build) before touching anything, switches the
// TLS certificate files if they changed, and swaps the Snapshot's State in
// one atomic store. A reload that fails anywhere leaves everything as it
// was. It owns the verifier in use and closes the one a reload replaced.
type Reloader struct {
	b   *Builder
	src *Source // nil: no reloads

	snap atomic.Pointer[Snapshot] // in use

	mu    sync.Mutex // one reload at a time; guards the fields below
	srv   *httpapi.Server
	certs *tlsutil.Reloader // nil with insecure_http
	watch []string          // files whose contents trigger a reload
	stamp string            // fingerprint of watch when last (re)loaded

	certStamp string // fingerprint of the certificate files when last checked
}

// WatchesCertificates reports whether a Reloader with src watches the TLS
// files itself (polling), so that the tlsutil.Reloader need not check them
// on handshakes: one watcher, by content, for every file.
func WatchesCertificates(src *Source) bool { return src != nil && src.PollEvery >= 0 }

// NewReloader returns a Reloader whose running Snapshot is first; a nil src
// never reloads.
func NewReloader(b *Builder, first *Snapshot, src *Source) *Reloader {
	r := &Reloader{b: b, src: src}
	r.snap.Store(first)
	return r
}

// VerifierReady is the identity_provider_keys readiness check: it asks the
// verifier in use, which a reload may have replaced.
func (r *Reloader) VerifierReady(context.Context) error {
	if v := r.snap.Load().Verifier; v != nil {
		return v.Ready()
	}
	return nil
}

// VerifierProbe is the identity_providers dependency check: whether the
// providers of the verifier in use answer now.
func (r *Reloader) VerifierProbe(ctx context.Context) error {
	if v := r.snap.Load().Verifier; v != nil {
		return v.Probe(ctx)
	}
	return nil
}

// Close closes the verifier in use; the server calls it on its way out,
// after the stop function of Start.
func (r *Reloader) Close() {
	if s := r.snap.Load(); s != nil && s.Verifier != nil {
		s.Verifier.Close()
	}
}

// Start begins watching for reload triggers: the signals (SIGHUP by
// default) and, every PollEvery, changes of the watched files' contents.
// Reloads apply to srv and certs. The returned function stops watching and
// waits for a reload in progress to finish.
func (r *Reloader) Start(ctx context.Context, srv *httpapi.Server, certs *tlsutil.Reloader) (stop func()) {
	if r.src == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.srv, r.certs = srv, certs
	r.watch = r.watchList()
	r.stamp = fingerprint(r.watch)
	r.certStamp = fingerprint(r.certFiles())
	r.mu.Unlock()

	sig := r.src.Signals
	unsubscribe := func() {}
	if sig == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		sig, unsubscribe = ch, func() { signal.Stop(ch) }
	}
	var tick <-chan time.Time
	if every := r.src.PollEvery; every >= 0 {
		if every == 0 {
			every = DefaultPollEvery
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
		var files, certs settling
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				files = settling{}
				_ = r.Reload(ctx, "signal")
			case <-tick:
				if fp, changed := r.filesChanged(); files.settled(fp, changed) {
					_ = r.Reload(ctx, "file change")
				}
				// The certificate files: the same rule, and only the
				// certificate is reloaded (it reports through OnReload).
				if fp, changed := r.certsChanged(); certs.settled(fp, changed) {
					r.reloadCerts(fp)
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

// settling is the watcher's rule for one set of files: a change counts once
// two checks in a row see the same new contents.
type settling struct{ pending string }

// settled reports whether fp, a change (changed) from the running files, was
// also what the previous check saw.
func (s *settling) settled(fp string, changed bool) bool {
	switch {
	case !changed:
		s.pending = ""
	case fp == s.pending:
		s.pending = ""
		return true
	default:
		s.pending = fp
	}
	return false
}

// filesChanged fingerprints the watched files and reports whether their
// contents changed since the last reload.
func (r *Reloader) filesChanged() (fp string, changed bool) {
	r.mu.Lock()
	watch, stamp := r.watch, r.stamp
	r.mu.Unlock()
	fp = fingerprint(watch)
	return fp, fp != stamp
}

// certFiles names the running certificate and key files; none with
// insecure_http.
func (r *Reloader) certFiles() []string {
	if r.certs == nil {
		return nil
	}
	t := r.snap.Load().Config.TLS
	return []string{t.CertFile, t.KeyFile}
}

// certsChanged is filesChanged for the certificate files.
func (r *Reloader) certsChanged() (fp string, changed bool) {
	r.mu.Lock()
	files, stamp := r.certFiles(), r.certStamp
	r.mu.Unlock()
	fp = fingerprint(files)
	return fp, fp != stamp
}

// reloadCerts has the tlsutil.Reloader read the certificate files again.
func (r *Reloader) reloadCerts(fp string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.certs.Reload()
	r.certStamp = fp
}

// Reload reads the configuration and applies it, or keeps the running one
// and says why in one log line. Every attempt counts in
// authserver_config_reload_total.
func (r *Reloader) Reload(ctx context.Context, trigger string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The fingerprint is taken before reading: a file that changes while
	// the reload reads it is reloaded once more, never missed.
	pre := fingerprint(r.watch)
	err := r.apply(ctx, trigger)
	m, log := r.b.Metrics, r.b.Logger
	if err != nil {
		m.ConfigReload.WithLabelValues("error").Inc()
		log.Error("configuration reload failed; keeping the running configuration",
			"trigger", trigger, "key", config.KeyOf(err), "error", oneLine(err.Error()))
	} else {
		m.ConfigReload.WithLabelValues("success").Inc()
	}
	if watch := r.watchList(); slices.Equal(watch, r.watch) {
		r.stamp = pre
	} else {
		r.watch, r.stamp = watch, fingerprint(watch)
	}
	if trigger == "signal" && r.certs != nil {
		// SIGHUP also rereads unchanged certificate paths now rather than
		// at the next handshake check; the tlsutil.Reloader reports that
		// itself.
		_ = r.certs.Reload()
	}
	if r.src.Done != nil {
		r.src.Done(err)
	}
	return err
}

// apply does one reload; on error nothing has changed.
func (r *Reloader) apply(ctx context.Context, trigger string) error {
	next, err := r.src.Load()
	if err != nil {
		return err
	}
	prev := r.snap.Load()
	old := prev.Config
	restart := config.KeepRestartOnly(old, next)
	changed := changes(old, next)

	// Build everything that can fail before changing anything.
	snap, err := r.b.Build(ctx, next, prev)
	if err != nil {
		return err
	}
	if r.certs != nil && next.TLS != old.TLS {
		leaf, err := r.certs.SetFiles(next.TLS.CertFile, next.TLS.KeyFile)
		if err != nil {
			if snap.Verifier != prev.Verifier {
				snap.Verifier.Close()
			}
			return &config.Error{Key: "tls", Problem: err.Error()}
		}
		r.b.Metrics.TLSCertificateExpiry.Set(float64(leaf.NotAfter.Unix()))
		r.certStamp = fingerprint([]string{next.TLS.CertFile, next.TLS.KeyFile}) // loaded just now
	}

	// Commit: one atomic swap. Requests in flight finish with the State
	// they loaded, including the old verifier, which still verifies with
	// its loaded keys after Close.
	r.srv.SetState(snap.State)
	r.snap.Store(snap)
	if prev.Verifier != nil && snap.Verifier != prev.Verifier {
		prev.Verifier.Close()
	}

	for _, k := range restart {
		r.b.Logger.Warn("configuration change needs a restart to take effect; the running value is kept", "key", k)
	}
	if len(changed) == 0 {
		changed = []string{"none"}
	}
	r.b.Logger.Info("configuration reloaded", "trigger", trigger, "changed", strings.Join(changed, ", "),
		"applications", len(next.Applications), "api_keys", len(next.APIKeys), "identity_providers", len(next.IdentityProviders))
	return nil
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
		case !slices.EqualFunc(o.Secrets, a.Secrets, signer.Secret.Equal):
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
	if old.RateLimits != next.RateLimits {
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

// watchList names the files a reload reads: the config file and the secret
// files of both the running configuration and the one in the file now (even
// if it does not load, so that creating a missing secret file retries).
func (r *Reloader) watchList() []string {
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
	add(r.snap.Load().Config)
	if r.src.File != "" {
		files = append(files, r.src.File)
		if c, err := config.Read(r.src.File, r.src.Getenv); err == nil {
			add(&c)
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

// oneLine keeps a log value on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
