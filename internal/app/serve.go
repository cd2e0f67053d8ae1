package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/httpapi"
	"github.com/authserver-dev/authserver/internal/logbuf"
	"github.com/authserver-dev/authserver/internal/metrics"
	"github.com/authserver-dev/authserver/internal/sequence"
	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
	"github.com/authserver-dev/authserver/migrations"
)

// ShutdownGrace is how long in-flight requests may take after SIGTERM.
const ShutdownGrace = 10 * time.Second

// PublicServer is the http.Server of the public listener: its timeouts and
// header limit, for h over tlsConf (nil: plain HTTP). bench/baseline serves
// its yardsticks with it, so that they compare application work, not server
// settings.
func PublicServer(h http.Handler, tlsConf *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}

// jsonRecords is where httpapi writes the requests' records by hand: the
// JSON handler's writer, or nil for the text format (through the logger).
func jsonRecords(cfg *config.Config, w *logbuf.Writer) io.Writer {
	if cfg.Log.Format == "text" {
		return nil
	}
	return w
}

func newLogger(cfg *config.Config, out io.Writer) (*slog.Logger, *logbuf.Writer) {
	// Info records are batched: at most logbuf.DefaultInterval (50 ms) or
	// 64 KiB of them wait in memory; Serve closes the writer after the
	// shutdown.
	w := logbuf.New(out, logbuf.Options{})
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.Log.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	// Warnings and errors are written at once.
	return slog.New(logbuf.FlushAt(h, w, slog.LevelWarn)), w
}

// ServeOptions are what Serve takes besides the configuration.
type ServeOptions struct {
	// OnStart is told the listeners' addresses once both accept
	// connections (tests and `dev` use it).
	OnStart func(public, admin net.Addr)
	// Source is where reloads read the configuration; nil never reloads.
	Source            *Source
	Version, Revision string
	Spec              []byte // openapi.yaml, served at /openapi.yaml
}

// Serve wires everything from a validated config, serves until ctx ends,
// drains for up to ShutdownGrace and closes the store. It reloads the
// configuration from o.Source on SIGHUP and when its files change.
func Serve(ctx context.Context, cfg *config.Config, logOut io.Writer, o ServeOptions) error {
	onStart, src := o.OnStart, o.Source
	logger, logw := newLogger(cfg, logOut)
	defer logw.Close() // runs last: every record, up to "stopped", is written
	for _, w := range cfg.Warnings {
		logger.Warn("config: " + w)
	}
	ver := o.Version
	m := metrics.New(metrics.BuildInfo{Version: o.Version, Revision: o.Revision})

	store, storeName, closeStore, err := openStore(ctx, cfg, m, logger)
	if err != nil {
		return err
	}
	defer closeStore()

	b := &Builder{Signer: signer.New(time.Now, rand.Reader), Store: store, Metrics: m, Logger: logger, Now: time.Now}
	snap, err := b.Build(ctx, cfg, nil)
	if err != nil {
		return err
	}
	live := NewReloader(b, snap, src)
	defer live.Close() // closes the verifier in use at the end

	var tlsConf *tls.Config
	var reloader *tlsutil.Reloader
	if !cfg.InsecureHTTP {
		checkEvery := time.Duration(0) // tlsutil's default: on handshakes
		if WatchesCertificates(src) {
			checkEvery = -1 // the Reloader's file watcher does it
		}
		reloader, err = tlsutil.NewReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, tlsutil.ReloaderOptions{
			CheckEvery: checkEvery,
			OnReload: func(leaf *x509.Certificate, err error) {
				if err != nil {
					m.ConfigReload.WithLabelValues("error").Inc()
					logger.Error("TLS certificate reload failed; keeping the previous certificate", "error", err.Error())
					return
				}
				m.ConfigReload.WithLabelValues("success").Inc()
				m.TLSCertificateExpiry.Set(float64(leaf.NotAfter.Unix()))
				logger.Info("TLS certificate reloaded", "not_after", leaf.NotAfter)
			},
		})
		if err != nil {
			return err
		}
		m.TLSCertificateExpiry.Set(float64(reloader.Leaf().NotAfter.Unix()))
		tlsConf = tlsutil.ServerConfig(reloader.GetCertificate)
	} else {
		logger.Warn("insecure_http is set: serving plain HTTP; only run this behind a TLS-terminating proxy")
	}

	// /readyz is "started": config loaded (we are here), listeners open (it
	// answers on one) and each identity provider's keys loaded once. The
	// shared dependencies have their own checks and metric (see httpapi.Check).
	checks := []httpapi.Check{
		{Name: "identity_provider_keys", Startup: true, Run: live.VerifierReady},
		{Name: "sequence_store", Run: store.Ping},
		{Name: "identity_providers", Run: live.VerifierProbe},
	}
	// 0 before the first commit or error, so the dashboard shows 0, not "No data".
	m.StoreErrors.WithLabelValues(storeName)
	m.StoreDuration.WithLabelValues(storeName)
	m.Dependency("sequence_store", store.Ping)
	m.Dependency("identity_providers", live.VerifierProbe)
	srv := httpapi.New(httpapi.Options{
		State:          snap.State,
		TrustedProxies: cfg.Proxies,
		Metrics:        m,
		Logger:         logger,
		Records:        jsonRecords(cfg, logw),
		Now:            time.Now,
		Checks:         checks,
		Pprof:          cfg.Pprof,
		Spec:           o.Spec,
	})

	pubLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		pubLn.Close()
		return fmt.Errorf("admin_listen: %w", err)
	}
	errLog := log.New(&slogWriter{logger}, "", 0)
	public := PublicServer(srv.Public(), tlsConf)
	public.ErrorLog = errLog
	admin := &http.Server{
		Handler:           srv.Admin(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second, // pprof profiles take 30 s
		IdleTimeout:       120 * time.Second,
		ErrorLog:          errLog,
	}
	// Watch for SIGHUP before serving: once /readyz answers, a SIGHUP must
	// reload, not end the process with the signal's default action.
	stopReload := live.Start(ctx, srv, reloader)
	defer stopReload()
	errc := make(chan error, 2)
	go func() {
		if tlsConf != nil {
			errc <- public.Serve(tls.NewListener(pubLn, tlsConf))
		} else {
			errc <- public.Serve(pubLn)
		}
	}()
	go func() { errc <- admin.Serve(adminLn) }()
	logger.Info("authserver started", "version", ver, "listen", pubLn.Addr().String(), "admin_listen", adminLn.Addr().String(),
		"tls", tlsConf != nil, "store", storeName, "applications", len(cfg.Applications))
	if onStart != nil {
		onStart(pubLn.Addr(), adminLn.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	logger.Info("shutting down", "grace", ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	shutErr := errors.Join(public.Shutdown(sctx), admin.Shutdown(sctx))
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	if shutErr != nil {
		return fmt.Errorf("shutdown: %w", shutErr)
	}
	logger.Info("stopped")
	return nil
}

// openStore opens the sequence store the config names: Postgres (after
// applying migrations under a lock) or the embedded bbolt file.
func openStore(ctx context.Context, cfg *config.Config, m *metrics.Metrics, logger *slog.Logger) (store sequence.Store, name string, closeFn func(), err error) {
	obs := sequence.Observer{Batch: m.ObserveBatch}
	var floor sequence.Floor
	if cfg.Sequence.ClockFloor {
		floor = sequence.ClockFloor(time.Now)
	}
	if cfg.DatabaseURL == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, "", nil, fmt.Errorf("data_dir: %w", err)
		}
		path := filepath.Join(cfg.DataDir, "sequences.db")
		b, err := sequence.OpenBolt(path, sequence.BoltOptions{
			Observer: obs, Floor: floor, AcceptReset: cfg.AcceptSequenceReset, Warn: logger.Warn,
		})
		if err != nil {
			return nil, "", nil, err
		}
		return b, "bolt", func() { _ = b.Close() }, nil
	}
	pool, err := OpenPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, "", nil, err
	}
	if err := migrations.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, "", nil, fmt.Errorf("database_url: migrations: %w", err)
	}
	if floor == nil {
		warnAsyncStandbys(ctx, pool, logger)
	}
	pg := sequence.NewPostgres(pool, sequence.PostgresOptions{
		Window: cfg.Sequence.BatchWindow, MaxBatch: cfg.Sequence.MaxBatch,
		DisableGroupCommit: cfg.Sequence.DisableGroupCommit, Observer: obs, Floor: floor,
	})
	return pg, "postgres", func() { _ = pg.Close(); pool.Close() }, nil
}

// asyncStandbys counts the standbys streaming from the server, when it is a
// primary that does not wait for any of them (synchronous_standby_names
// empty): a failover to one of them can lose commits already acknowledged.
const asyncStandbys = `SELECT count(*) FROM pg_stat_replication
WHERE NOT pg_is_in_recovery() AND current_setting('synchronous_standby_names') = ''`

// warnAsyncStandbys logs one warning when the database is a primary with
// asynchronous standbys and the clock floor is off: a failover could then
// hand out sequences again. Failing to tell is not worth stopping for.
func warnAsyncStandbys(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int64
	if err := pool.QueryRow(ctx, asyncStandbys).Scan(&n); err != nil || n == 0 {
		return
	}
	logger.Warn("the database has asynchronous standbys and sequence.clock_floor is off: a failover to a standby that missed "+
		"the last commits hands out sequences again; turn sequence.clock_floor on, or set synchronous_standby_names on the primary",
		"standbys", n)
}

// OpenPool connects and pings: pgxpool connects lazily, and a wrong URL must
// stop the start, not the first request. The error never shows the URL (it
// may hold a password).
func OpenPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("database_url: cannot be parsed as a Postgres URL")
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database_url: %s", redactURL(err.Error(), url))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database_url: cannot reach the database: %s", redactURL(err.Error(), url))
	}
	return pool, nil
}

func redactURL(msg, url string) string {
	return strings.ReplaceAll(msg, url, "[database_url]")
}

// slogWriter routes net/http's error log (TLS handshake errors and the like)
// to the structured log at debug level: they are the client's problem.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("http server", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}
