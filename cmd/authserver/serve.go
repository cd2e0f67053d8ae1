package main

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

	authserver "github.com/authserver-dev/authserver"
	"github.com/authserver-dev/authserver/internal/auth"
	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/httpapi"
	"github.com/authserver-dev/authserver/internal/logbuf"
	"github.com/authserver-dev/authserver/internal/metrics"
	"github.com/authserver-dev/authserver/internal/sequence"
	"github.com/authserver-dev/authserver/internal/signer"
	"github.com/authserver-dev/authserver/internal/tlsutil"
	"github.com/authserver-dev/authserver/migrations"
)

// shutdownGrace is how long in-flight requests may take after SIGTERM.
const shutdownGrace = 10 * time.Second

// serveFlags are the flags serve and dev share.
type serveFlags struct {
	config    string
	logFormat string
	logLevel  string
}

// acceptResetUsage is the help of --accept-sequence-reset (serve and dev).
const acceptResetUsage = "start the embedded sequence store over (or take its file as it is) when it is missing, empty, damaged, " +
	"replaced or older than when last used, instead of refusing to start; users may get numbers they had before unless sequence.clock_floor is on"

// errNoConfig is serve's answer when nothing says what to serve.
var errNoConfig = errors.New("no configuration: give --config FILE or set AUTHSERVER_CONFIG " +
	"(or AUTHSERVER_APP_KEY with AUTHSERVER_APP_SECRET and the other AUTHSERVER_* variables, see the README); " +
	"`authserver check --config FILE` validates a file without starting; `authserver dev` runs a demo with no setup")

func runServe(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", env.Get("AUTHSERVER_CONFIG"), "config file (YAML); env AUTHSERVER_CONFIG")
	fs.StringVar(&f.logFormat, "log-format", "", "json or text (overrides log.format)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	acceptReset := fs.Bool("accept-sequence-reset", false, acceptResetUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.config == "" && env.Get("AUTHSERVER_APP_KEY") == "" {
		return errNoConfig
	}
	env = overlay(env, f)
	cfg, err := config.Load(f.config, env)
	if err != nil {
		return err
	}
	cfg.AcceptSequenceReset = *acceptReset
	return serve(ctx, cfg, stderr, nil, &reloadSource{
		load:   func() (*config.Config, error) { return config.Load(f.config, env) },
		file:   f.config,
		getenv: env,
	})
}

// overlay lets --log-format/--log-level win over the file and environment.
func overlay(env config.Env, f serveFlags) config.Env {
	out := make(config.Env, len(env)+2)
	for k, v := range env {
		out[k] = v
	}
	if f.logFormat != "" {
		out["AUTHSERVER_LOG_FORMAT"] = f.logFormat
	}
	if f.logLevel != "" {
		out["AUTHSERVER_LOG_LEVEL"] = f.logLevel
	}
	return out
}

func newLogger(cfg *config.Config, out io.Writer) (*slog.Logger, *logbuf.Writer) {
	// Info records are batched: at most logbuf.DefaultInterval (50 ms) or
	// 64 KiB of them wait in memory; serve closes the writer after the
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

// started is told the listeners' addresses once both accept connections
// (tests and `dev` use it).
type started func(public, admin net.Addr)

// serve wires everything from a validated config, serves until ctx ends,
// drains for up to shutdownGrace and closes the store. It reloads the
// configuration from src on SIGHUP and when its files change (reload.go);
// a nil src never reloads.
func serve(ctx context.Context, cfg *config.Config, logOut io.Writer, onStart started, src *reloadSource) error {
	logger, logw := newLogger(cfg, logOut)
	defer logw.Close() // runs last: every record, up to "stopped", is written
	for _, w := range cfg.Warnings {
		logger.Warn("config: " + w)
	}
	ver, rev := versionInfo()
	m := metrics.New(metrics.BuildInfo{Version: ver, Revision: rev})

	store, storeName, closeStore, err := openStore(ctx, cfg, m, logger)
	if err != nil {
		return err
	}
	defer closeStore()

	keys, verifier, err := buildAuth(ctx, cfg, m, logger)
	if err != nil {
		return err
	}
	live := newReloader(cfg, verifier, m, logger, src)
	defer live.close() // closes the verifier in use at the end

	var tlsConf *tls.Config
	var reloader *tlsutil.Reloader
	if !cfg.InsecureHTTP {
		reloader, err = tlsutil.NewReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, tlsutil.ReloaderOptions{
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
		{Name: "identity_provider_keys", Startup: true, Run: live.verifierReady},
		{Name: "sequence_store", Run: store.Ping},
		{Name: "identity_providers", Run: live.verifierProbe},
	}
	// 0 before the first commit or error, so the dashboard shows 0, not "No data".
	m.StoreErrors.WithLabelValues(storeName)
	m.StoreDuration.WithLabelValues(storeName)
	m.Dependency("sequence_store", store.Ping)
	m.Dependency("identity_providers", live.verifierProbe)
	var tv httpapi.TokenVerifier
	if verifier != nil {
		tv = verifier
	}
	state := httpapi.NewState(cfg, keys, tv)
	srv := httpapi.New(httpapi.Options{
		State:   state,
		Signer:  signer.New(time.Now, rand.Reader),
		Store:   store,
		Metrics: m,
		Logger:  logger,
		Now:     time.Now,
		Checks:  checks,
		Pprof:   cfg.Pprof,
		Spec:    []byte(authserver.OpenAPI),
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
	public := &http.Server{
		Handler:           srv.Public(),
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          errLog,
	}
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
	stopReload := live.start(ctx, srv, state, reloader)
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
	logger.Info("shutting down", "grace", shutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
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
func openStore(ctx context.Context, cfg *config.Config, m *metrics.Metrics, logger *slog.Logger) (store interface {
	httpapi.SequenceStore
	Ping(context.Context) error
}, name string, closeFn func(), err error) {
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
	pool, err := openPool(ctx, cfg.DatabaseURL)
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

// openPool connects and pings: pgxpool connects lazily, and a wrong URL must
// stop the start, not the first request. The error never shows the URL (it
// may hold a password).
func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
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

// buildAuth turns the config's API keys and identity providers into the
// auth package's types.
func buildAuth(ctx context.Context, cfg *config.Config, m *metrics.Metrics, logger *slog.Logger) (*auth.APIKeys, *auth.Verifier, error) {
	ak := make([]auth.APIKey, len(cfg.APIKeys))
	for i, k := range cfg.APIKeys {
		ak[i] = auth.APIKey{Name: k.Name, SHA256: k.SHA256, Applications: k.Applications}
	}
	keys, err := auth.NewAPIKeys(ak)
	if err != nil {
		return nil, nil, fmt.Errorf("config: api_keys: %w", err)
	}
	if len(cfg.IdentityProviders) == 0 {
		return keys, nil, nil
	}
	ps := make([]auth.Provider, len(cfg.IdentityProviders))
	for i, p := range cfg.IdentityProviders {
		if u, key := p.InsecureURL(); u != "" {
			logger.Warn("identity provider keys are fetched over plain http (allow_insecure_http is set): anyone on the path can forge identity tokens",
				"issuer", p.Issuer, "key", key, "url", u)
		}
		ps[i] = auth.Provider{
			Issuer: p.Issuer, JWKSURL: p.JWKSURL, HS256Secret: p.HS256Secret, Audience: p.Audience,
			UserIDClaim: p.UserIDClaim, Applications: p.Applications, Leeway: p.Leeway,
			MaxTokenAge: p.MaxTokenAge, UnknownKIDRefreshInterval: p.UnknownKIDRefreshInterval,
			DiscoveryURL: p.DiscoveryURL, IssuerAliases: p.IssuerAliases, AudienceClaim: p.AudienceClaim,
			RequiredClaims: p.RequiredClaims, UserIDTransform: p.UserIDTransform,
		}
	}
	v, err := auth.NewVerifier(ctx, ps, auth.VerifierOptions{
		Now:       time.Now,
		OnRefresh: func(provider, result string) { m.JWKSRefresh.WithLabelValues(provider, result).Inc() },
		Logger:    logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("config: identity_providers: %w", err)
	}
	return keys, v, nil
}

// slogWriter routes net/http's error log (TLS handshake errors and the like)
// to the structured log at debug level: they are the client's problem.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("http server", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}

// runMigrate applies the Postgres migrations ("migrate", "migrate up") or
// prints the version ("migrate status"). It needs only database_url.
func runMigrate(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	path := fs.String("config", env.Get("AUTHSERVER_CONFIG"), "config file (YAML); env AUTHSERVER_CONFIG; only database_url is read")
	if err := parse(fs, args); err != nil {
		return err
	}
	sub := "up"
	switch fs.NArg() {
	case 0:
	case 1:
		sub = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "usage: authserver migrate [--config FILE] [up|status]")
		return usageError{errors.New("too many arguments")}
	}
	if sub != "up" && sub != "status" {
		fmt.Fprintf(stderr, "authserver migrate: unknown subcommand %q (up or status)\n", sub)
		return usageError{fmt.Errorf("unknown subcommand %q", sub)}
	}
	url, err := config.LoadDatabaseURL(*path, env)
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if sub == "status" {
		cur, latest, err := migrations.Status(ctx, pool)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if cur < latest {
			fmt.Fprintf(stdout, "at version %d; %d migration(s) pending (latest %d): run authserver migrate\n", cur, latest-cur, latest)
		} else {
			fmt.Fprintf(stdout, "at version %d (latest)\n", cur)
		}
		return nil
	}
	applied := 0
	version, err := migrations.Migrate(ctx, pool, migrations.Progress{
		Waiting: func() {
			fmt.Fprintln(stdout, "waiting for another replica's migration to finish (it holds the lock; up to 5 minutes)")
		},
		Applied: func(v int64, file string, d time.Duration) {
			applied++
			fmt.Fprintf(stdout, "applied %s (version %d) in %s\n", file, v, d.Round(time.Millisecond))
		},
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if applied == 0 {
		fmt.Fprintf(stdout, "already at version %d\n", version)
	} else {
		fmt.Fprintf(stdout, "now at version %d\n", version)
	}
	return nil
}
