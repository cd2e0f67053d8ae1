// Command bench is authserver's load harness. It builds authserver and the
// baseline server (bench/baseline), runs each as its own process over HTTPS
// with keep-alive, drives them from this process with a pure net/http
// client, and compares them in alternating rounds (A/B/A/B), because the
// machine it runs on is usually shared and drifts:
//
//	go run ./bench [-d 5s] [-c 64] [-rounds 2] [-warmup 1s] [-json] [-database-url URL] [-pprof DIR] [scenario ...]
//
// Scenarios (all by default):
//
//	a        JWT via API key: authserver vs baseline
//	b        JWT via RS256 identity token (distinct tokens per virtual user): authserver vs baseline
//	c        signature, many users, Postgres: group commit vs sequence.disable_group_commit
//	d        signature, one hot user, Postgres: group commit vs disable_group_commit
//	e        signature vs JWT via API key, many users, embedded store
//	h        signature vs JWT via API key, many users, Postgres (fsync on)
//	cf, ef   c's and e's load with sequence.clock_floor on (the default) vs off
//	         (not run by default: go run ./bench c e cf ef)
//	f        new TLS connection per request (resumption on): authserver JWT vs a bare net/http TLS server
//	g        mixed 90% JWT / 10% signature, Postgres group commit, vs baseline (JWT only)
//	apps     JWT via API key: 1,000 applications configured vs 1
//	keys     JWT via API key: 1,000 API keys configured vs 1
//	idps     JWT via RS256 identity token: 100 identity providers configured vs 1
//	startup  exec to /readyz 200 with the embedded store, median of -startup-runs
//	seq      the sequence store alone (bench/seqbench): group commit vs one
//	         statement per call, many users and one hot user
//	preload  bench/seqbench -preload: group commit on a table with
//	         -preload-rows more rows vs a small one (a few minutes)
//
// Every scenario also runs, in the same rounds, two yardsticks (unless one
// of its sides already is one): the hello-world TLS server (bench/baseline
// -mode hello, a fixed 400-byte JSON body for every POST: the stack's limit)
// and the lean mint (bench/baseline -mode jwt); every side reports its
// median-of-rounds ratio to both. -yardsticks=false leaves them out.
//
//	other    JWT via API key: this checkout's authserver vs the binary named by -other
//	         (for example one built from another commit), to measure a change
//
// authserver runs as in production: JSON access and audit logs at info level
// (written to a file in the run's temporary directory), metrics, rate limits
// (set to 1,000,000/s so they count but never refuse). Postgres is a
// throwaway server (internal/pgtest, fsync on) unless -database-url is given.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/authserver-dev/authserver/bench/internal/cli"
	"github.com/authserver-dev/authserver/bench/internal/loadgen"
	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/internal/servertest"
)

func main() { cli.Main("bench", run) }

// options are the run's flags; they are printed with the results.
type options struct {
	Duration    time.Duration `json:"duration_ns"`
	Warmup      time.Duration `json:"warmup_ns"`
	Conns       int           `json:"conns"`
	Rounds      int           `json:"rounds"`
	Users       int           `json:"users"`
	TokensPerVU int           `json:"tokens_per_vu"`
	PGConns     int           `json:"pg_pool_conns"`
	StartupRuns int           `json:"startup_runs"`
	PreloadRows int64         `json:"preload_rows"`
	LogLevel    string        `json:"authserver_log_level"`
	Postgres    string        `json:"postgres"`
	GoVersion   string        `json:"go_version"`
	CPUs        int           `json:"cpus"`
	Scenarios   []string      `json:"scenarios"`
	Yardsticks  bool          `json:"yardsticks"`
	// AuthserverBin is set when -authserver-bin replaced the checkout's build.
	AuthserverBin string `json:"authserver_bin,omitempty"`
	databaseURL   string
	pprofDir      string
	pprofScen     string
	authBin       string
	other         string
	asJSON        bool
	jsonFile      string
	keep          bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.DurationVar(&o.Duration, "d", 5*time.Second, "measured time per side per round")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured warm-up before each measured run")
	fs.IntVar(&o.Conns, "c", 64, "connections (virtual users, one request at a time each)")
	fs.IntVar(&o.Rounds, "rounds", 2, "A/B rounds per scenario")
	fs.IntVar(&o.Users, "users", 100_000, "distinct user ids the many-users workloads draw from")
	fs.IntVar(&o.TokensPerVU, "tokens", 8, "scenario b: distinct identity tokens (users) per virtual user")
	fs.IntVar(&o.PGConns, "pg-conns", 0, "pgxpool pool_max_conns of both Postgres servers (0: pgx's default, max(4, CPUs), what authserver gets from a plain database_url)")
	fs.IntVar(&o.StartupRuns, "startup-runs", 7, "startup: how many starts to take the median of")
	fs.Int64Var(&o.PreloadRows, "preload-rows", 10_000_000, "preload: rows inserted besides the measured users'")
	fs.StringVar(&o.LogLevel, "log-level", "info", "authserver's log.level (info keeps the access log on, as in production)")
	fs.StringVar(&o.databaseURL, "database-url", "", "Postgres URL for c, d, g instead of a throwaway server (both servers share it)")
	fs.StringVar(&o.pprofDir, "pprof", "", "enable authserver's pprof and, after the measured rounds of a and c, write a CPU and an allocation profile of an extra run of each side of the -pprof-scenarios here (DIR/a-A-cpu.pprof, ...)")
	fs.StringVar(&o.pprofScen, "pprof-scenarios", "a,c", "with -pprof: the scenarios to profile, comma-separated")
	fs.StringVar(&o.authBin, "authserver-bin", "", "run this authserver binary instead of the checkout's build (the baseline is still built)")
	fs.StringVar(&o.other, "other", "", "scenario other: an authserver binary to compare this checkout's with")
	fs.BoolVar(&o.Yardsticks, "yardsticks", true, "run the hello-world TLS server and the lean mint in every scenario's rounds")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the JSON report to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, configs, server logs)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench [flags] [a b c d e h f g apps keys idps cf ef startup seq preload]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Conns < 1 || o.Rounds < 1 || o.Duration <= 0 || o.Users < 1 || o.TokensPerVU < 1 || o.StartupRuns < 1 || o.PreloadRows < 1 {
		return errors.New("-c, -rounds, -d, -users, -tokens and -startup-runs must be positive")
	}
	if o.other != "" {
		var err error
		if o.other, err = filepath.Abs(o.other); err != nil {
			return err
		}
	}
	o.Scenarios = fs.Args()
	if len(o.Scenarios) == 0 {
		o.Scenarios = []string{"a", "b", "c", "d", "e", "h", "f", "g", "apps", "keys", "idps", "startup", "seq", "preload"}
	}
	for _, s := range o.Scenarios {
		if _, ok := scenarios[s]; !ok && !slices.Contains([]string{"startup", "seq", "preload"}, s) {
			return fmt.Errorf("unknown scenario %q (want a b c d e h f g apps keys idps cf ef startup seq preload)", s)
		}
	}
	o.GoVersion, o.CPUs = runtime.Version(), runtime.NumCPU()

	rep := report{Options: o}
	dir, err := os.MkdirTemp("", "authserver-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "bench: keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e, err := newEnv(ctx, dir, stderr)
	if err != nil {
		return err
	}
	if o.authBin != "" {
		if e.authserver, err = filepath.Abs(o.authBin); err != nil {
			return err
		}
		rep.Options.AuthserverBin = e.authserver
	}
	e.pprof, e.authLogLevel, e.other = o.pprofDir != "", o.LogLevel, o.other
	if slices.Contains(o.Scenarios, "other") && o.other == "" {
		return errors.New("scenario other needs -other BINARY")
	}
	if o.pprofDir != "" {
		if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
			return err
		}
	}
	idp := oidctest.NewServer()
	defer idp.Close()
	e.issuer = idp.Issuer()

	var pg *pgtest.Cluster
	for _, id := range o.Scenarios {
		if id == "startup" {
			st, err := measureStartup(ctx, e, o.StartupRuns, stderr)
			if err != nil {
				return err
			}
			rep.Startup = st
			continue
		}
		if id == "seq" || id == "preload" {
			var flags []string
			if id == "preload" {
				flags = []string{"-preload", fmt.Sprint(o.PreloadRows)}
			}
			r, err := runSeqbench(ctx, e, o, stderr, flags...)
			if err != nil {
				return err
			}
			if id == "seq" {
				rep.Seq = r
			} else {
				r.PreloadRows, rep.Preload = o.PreloadRows, r
			}
			continue
		}
		sc := scenarios[id]
		var dbs [2]string
		if sc.needsPG() {
			if o.databaseURL != "" {
				dbs = [2]string{o.databaseURL, o.databaseURL}
				rep.Options.Postgres = "external (-database-url)"
			} else {
				if pg == nil {
					fmt.Fprintln(stderr, "bench: starting a throwaway PostgreSQL (fsync on)")
					if pg, err = pgtest.Start(pgtest.Options{}); err != nil {
						return err
					}
					defer pg.Close()
					rep.Options.Postgres = "throwaway (internal/pgtest), fsync on"
				}
				for i := range dbs {
					if dbs[i], err = pg.CreateDatabase(ctx, fmt.Sprintf("bench_%s_%d_%d", id, i, time.Now().UnixNano())); err != nil {
						return err
					}
				}
			}
		}
		res, err := runScenario(ctx, e, o, idp, sc, dbs, stderr)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", id, err)
		}
		rep.Results = append(rep.Results, res)
	}
	rep.Targets = checkTargets(rep)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if o.jsonFile != "" {
		if err := os.WriteFile(o.jsonFile, js, 0o644); err != nil {
			return err
		}
	}
	if o.asJSON {
		_, err := stdout.Write(js)
		return err
	}
	return printReport(stdout, rep)
}

// side is one half of a scenario: a server and what is sent to it.
type side struct {
	Label  string     `json:"label"`
	Server serverKind `json:"server"`
	Load   loadKind   `json:"load"`
}

type scenario struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	A     side   `json:"a"`
	B     *side  `json:"b,omitempty"`
	// ratio names what A/B means in this scenario.
	Ratio string `json:"ratio,omitempty"`
}

func (s scenario) needsPG() bool {
	pg := func(k serverKind) bool { return k == authPG || k == authPGNoGC || k == authPGNoFloor }
	return pg(s.A.Server) || s.B != nil && pg(s.B.Server)
}

func (s scenario) sides() []side {
	if s.B == nil {
		return []side{s.A}
	}
	return []side{s.A, *s.B}
}

var scenarios = map[string]scenario{
	"a": {ID: "a", Title: "JWT via API key",
		A: side{"authserver", authBolt, loadJWTKey}, B: &side{"baseline", baselineJWT, loadJWTKey},
		Ratio: "authserver/baseline"},
	"b": {ID: "b", Title: "JWT via RS256 identity token",
		A: side{"authserver", authBolt, loadJWTBearer}, B: &side{"baseline (no auth)", baselineJWT, loadJWTBearer},
		Ratio: "authserver/baseline"},
	"c": {ID: "c", Title: "signature, many users, Postgres",
		A: side{"group commit", authPG, loadSigMany}, B: &side{"no group commit", authPGNoGC, loadSigMany},
		Ratio: "group commit/none"},
	"d": {ID: "d", Title: "signature, one hot user, Postgres",
		A: side{"group commit", authPG, loadSigHot}, B: &side{"no group commit", authPGNoGC, loadSigHot},
		Ratio: "group commit/none"},
	"e": {ID: "e", Title: "signature vs JWT, many users, embedded store",
		A: side{"signature bolt", authBolt, loadSigMany}, B: &side{"JWT via API key", authBolt, loadJWTKey},
		Ratio: "signature/JWT"},
	"h": {ID: "h", Title: "signature vs JWT, many users, Postgres (fsync on)",
		A: side{"signature pg", authPG, loadSigMany}, B: &side{"JWT via API key", authPG, loadJWTKey},
		Ratio: "signature/JWT"},
	"apps": {ID: "apps", Title: "JWT via API key, 1,000 applications vs 1",
		A: side{"1,000 applications", authBoltApps, loadJWTKey}, B: &side{"1 application", authBolt, loadJWTKey},
		Ratio: "1000/1"},
	"keys": {ID: "keys", Title: "JWT via API key, 1,000 API keys vs 1",
		A: side{"1,000 API keys", authBoltKeys, loadJWTKey}, B: &side{"1 API key", authBolt, loadJWTKey},
		Ratio: "1000/1"},
	"idps": {ID: "idps", Title: "JWT via RS256 identity token, 100 identity providers vs 1",
		A: side{"100 providers", authBoltIdPs, loadJWTBearer}, B: &side{"1 provider", authBolt, loadJWTBearer},
		Ratio: "100/1"},
	"cf": {ID: "cf", Title: "signature, many users, Postgres: sequence.clock_floor on vs off",
		A: side{"clock floor on", authPG, loadSigMany}, B: &side{"clock floor off", authPGNoFloor, loadSigMany},
		Ratio: "floor on/off"},
	"ef": {ID: "ef", Title: "signature, many users, embedded store: sequence.clock_floor on vs off",
		A: side{"clock floor on", authBolt, loadSigMany}, B: &side{"clock floor off", authBoltNoFloor, loadSigMany},
		Ratio: "floor on/off"},
	"f": {ID: "f", Title: "new TLS connection per request (resumption on)",
		A: side{"authserver JWT", authBolt, loadNewConn}, B: &side{"bare TLS server", baselineBare, loadNewConn},
		Ratio: "authserver/bare"},
	"g": {ID: "g", Title: "mixed 90% JWT / 10% signature, Postgres",
		A: side{"authserver mixed", authPG, loadMixed}, B: &side{"baseline JWT only", baselineJWT, loadJWTKey},
		Ratio: "authserver/baseline"},
	"other": {ID: "other", Title: "JWT via API key, this checkout vs -other",
		A: side{"this checkout", authBolt, loadJWTKey}, B: &side{"-other binary", authOther, loadJWTKey},
		Ratio: "this/other"},
}

// figures are what a side measured, in one round or over all its rounds.
type figures struct {
	ReqPerSec float64       `json:"req_per_sec"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	Errors    int64         `json:"errors"`
	CPUPerReq time.Duration `json:"server_cpu_per_req_ns"`
	// ClientCPUPerReq is the load generator's (this process's) share.
	ClientCPUPerReq time.Duration `json:"client_cpu_per_req_ns"`
}

// newFigures computes figures from the requests that ended in elapsed,
// their latencies (sorted), the errors, and the CPU the server and this
// process used meanwhile.
func newFigures(requests, errors int64, elapsed time.Duration, sorted []time.Duration, serverCPU, clientCPU time.Duration) figures {
	f := figures{
		ReqPerSec: float64(requests) / elapsed.Seconds(),
		P50:       loadgen.Percentile(sorted, .5), P99: loadgen.Percentile(sorted, .99),
		Errors: errors,
	}
	if requests > 0 {
		f.CPUPerReq = serverCPU / time.Duration(requests)
		f.ClientCPUPerReq = clientCPU / time.Duration(requests)
	}
	return f
}

// round is one measured run of one side.
type round struct {
	figures
	// OtherCores is the average CPU other processes used meanwhile, in
	// cores: the noise the run was exposed to.
	OtherCores float64 `json:"other_cores"`
	// Statements and MeanBatch are the sequence store's commits in the
	// window and the Next calls per commit (authserver_sequence_batch_size).
	Statements int64   `json:"store_commits,omitempty"`
	MeanBatch  float64 `json:"store_calls_per_commit,omitempty"`
	// CommitTime is the store's commit time summed over the window.
	CommitTime time.Duration `json:"store_commit_time_ns,omitempty"`
}

// sideResult aggregates a side's rounds.
type sideResult struct {
	side
	Rounds []round `json:"rounds"`
	figures
	Requests   int64   `json:"requests"`
	FirstError string  `json:"first_error,omitempty"`
	PeakRSSKB  int64   `json:"peak_rss_kb"`
	Resumed    float64 `json:"tls_resumed_fraction,omitempty"`
	MeanBatch  float64 `json:"store_calls_per_commit,omitempty"`
	LogBytes   int64   `json:"log_bytes_per_req,omitempty"`
	// VsHello and VsMint are the median over rounds of this side's req/s
	// over the hello-world TLS server's and the lean mint's.
	VsHello float64 `json:"vs_hello,omitempty"`
	VsMint  float64 `json:"vs_mint,omitempty"`
	// MeanCommit is the sequence store's mean commit (one fsync or one
	// Postgres transaction) in the measured windows; StoreBound is what it
	// allows: connections / MeanCommit, each commit serving every waiting
	// caller.
	MeanCommit time.Duration `json:"store_mean_commit_ns,omitempty"`
	StoreBound float64       `json:"store_bound_req_per_sec,omitempty"`
}

type scenarioResult struct {
	scenario
	Sides []sideResult `json:"sides"`
	// RatioReqPerSec and RatioP99 are A over B.
	RatioReqPerSec float64 `json:"ratio_req_per_sec,omitempty"`
	RatioP99       float64 `json:"ratio_p99,omitempty"`
	// RoundRatios are A/B req/s of each round, A and B measured back to
	// back; their median is less exposed to drift than the totals.
	RoundRatios      []float64 `json:"round_ratios,omitempty"`
	MedianRoundRatio float64   `json:"median_round_ratio,omitempty"`
	// RatioCPU is A/B server CPU per request: the cost ratio, which the
	// shared load generator does not dilute.
	RatioCPU float64  `json:"ratio_server_cpu_per_req,omitempty"`
	Profiles []string `json:"profiles,omitempty"`
}

type startupResult struct {
	Runs   []time.Duration `json:"runs_ns"`
	Median time.Duration   `json:"median_ns"`
}

type report struct {
	Options options          `json:"options"`
	Results []scenarioResult `json:"results"`
	Startup *startupResult   `json:"startup,omitempty"`
	Seq     *seqResult       `json:"seq,omitempty"`
	Preload *seqResult       `json:"preload,omitempty"`
	Targets []targetResult   `json:"targets"`
}

// runScenario starts fresh servers for both sides (so peak RSS is the
// scenario's own), then alternates A and B for o.Rounds rounds.
func runScenario(ctx context.Context, e *env, o options, idp *oidctest.Provider, sc scenario, dbs [2]string, stderr io.Writer) (scenarioResult, error) {
	res := scenarioResult{scenario: sc}
	sides := sc.sides()
	if o.Yardsticks {
		sides = append(sides, yardstickSides(sc)...)
	}
	servers := make([]*server, len(sides))
	drivers := make([]*driver, len(sides))
	defer func() {
		for i := range sides {
			if drivers[i] != nil {
				drivers[i].close()
			}
			if servers[i] != nil {
				servers[i].stop()
			}
		}
	}()
	bodies := userBodies(o.Users)
	var bearers [][]bearer
	if sc.A.Load == loadJWTBearer {
		bearers = makeBearers(idp, o.Conns, o.TokensPerVU)
	}
	for i, sd := range sides {
		s, err := e.start(ctx, sd.Server, startOptions{databaseURL: withPoolSize(dbs[min(i, 1)], o.PGConns)})
		if err != nil {
			return res, err
		}
		servers[i] = s
		w := &workload{kind: sd.Load, url: s.url, apiKey: e.apiKey, bodies: bodies, bearers: bearers, roots: e.roots}
		drivers[i] = newDriver(w, o.Conns)
		res.Sides = append(res.Sides, sideResult{side: sd})
	}
	if err := checkSameTokens(ctx, e, sides, drivers); err != nil {
		return res, err
	}

	lats := make([][]time.Duration, len(sides))
	elapsed := make([]time.Duration, len(sides))
	cpu := make([]time.Duration, len(sides))
	ccpu := make([]time.Duration, len(sides))
	errs := make([]int64, len(sides))
	hs, resumed := make([]int64, len(sides)), make([]int64, len(sides))
	for r := range o.Rounds {
		for i, sd := range sides {
			fmt.Fprintf(stderr, "bench: %s round %d/%d: %s (%s, %s) ...\n", sc.ID, r+1, o.Rounds, sd.Label, sd.Server, sd.Load)
			pid := servers[i].pid()
			var c0, c1 time.Duration
			var b0, b1 batchStats
			st := drivers[i].run(ctx, o.Warmup, o.Duration, func(start bool) {
				if start {
					c0, _ = cpuTime(pid)
					b0 = scrapeBatches(servers[i])
				} else {
					c1, _ = cpuTime(pid)
					b1 = scrapeBatches(servers[i])
				}
			})
			if err := ctx.Err(); err != nil {
				return res, err
			}
			used := c1 - c0
			hwm, _ := servertest.ProcStatusKB(pid, "VmHWM")
			sr := &res.Sides[i]
			rd := round{figures: newFigures(st.Requests, st.Errors, st.Elapsed, st.Latencies, used, st.ClientCPU)}
			rd.OtherCores = max(0, float64(st.MachineBusy-st.ClientCPU-used)/float64(st.Elapsed))
			if n := b1.count - b0.count; n > 0 {
				rd.Statements = int64(n)
				rd.MeanBatch = (b1.sum - b0.sum) / n
				rd.CommitTime = time.Duration((b1.dsum - b0.dsum) * 1e9)
			}
			sr.Rounds = append(sr.Rounds, rd)
			sr.Requests += st.Requests
			errs[i] += st.Errors
			if sr.FirstError == "" {
				sr.FirstError = st.FirstErr
			}
			sr.PeakRSSKB = max(sr.PeakRSSKB, hwm)
			lats[i] = append(lats[i], st.Latencies...)
			elapsed[i] += st.Elapsed
			cpu[i] += used
			ccpu[i] += st.ClientCPU
			hs[i] += st.Handshake
			resumed[i] += st.Resumed
			fmt.Fprintf(stderr, "bench:   %.0f req/s, p50 %v, p99 %v, %d errors, server CPU/req %v, other processes %.2f cores\n",
				rd.ReqPerSec, rd.P50, rd.P99, rd.Errors, rd.CPUPerReq, rd.OtherCores)
			if st.Errors > 0 {
				fmt.Fprintf(stderr, "bench:   first error: %s\n", st.FirstErr)
			}
		}
	}
	for i := range sides {
		sr := &res.Sides[i]
		slices.Sort(lats[i])
		sr.figures = newFigures(sr.Requests, errs[i], elapsed[i], lats[i], cpu[i], ccpu[i])
		if sr.Requests > 0 {
			if fi, err := os.Stat(servers[i].logPath); err == nil && sides[i].Server.isAuthserver() {
				// Warm-up requests log too: divide by everything sent.
				total := float64(sr.Requests) * float64(o.Duration+o.Warmup) / float64(o.Duration)
				sr.LogBytes = int64(float64(fi.Size()) / total)
			}
		}
		if hs[i] > 0 {
			sr.Resumed = float64(resumed[i]) / float64(hs[i])
		}
		var stmts, calls float64
		var commit time.Duration
		for _, rd := range sr.Rounds {
			stmts += float64(rd.Statements)
			calls += rd.MeanBatch * float64(rd.Statements)
			commit += rd.CommitTime
		}
		if stmts > 0 {
			sr.MeanBatch = calls / stmts
			sr.MeanCommit = time.Duration(float64(commit) / stmts)
			if sr.MeanCommit > 0 {
				sr.StoreBound = float64(o.Conns) / sr.MeanCommit.Seconds()
			}
		}
	}
	yardstickRatios(&res)
	if sc.B != nil && res.Sides[1].ReqPerSec > 0 && res.Sides[1].P99 > 0 {
		res.RatioReqPerSec = res.Sides[0].ReqPerSec / res.Sides[1].ReqPerSec
		res.RatioP99 = float64(res.Sides[0].P99) / float64(res.Sides[1].P99)
		if res.Sides[1].CPUPerReq > 0 {
			res.RatioCPU = float64(res.Sides[0].CPUPerReq) / float64(res.Sides[1].CPUPerReq)
		}
		for r := range res.Sides[0].Rounds {
			if b := res.Sides[1].Rounds[r].ReqPerSec; b > 0 {
				res.RoundRatios = append(res.RoundRatios, res.Sides[0].Rounds[r].ReqPerSec/b)
			}
		}
		res.MedianRoundRatio = median(res.RoundRatios)
	}
	if o.pprofDir != "" && slices.Contains(strings.Split(o.pprofScen, ","), sc.ID) {
		for i := range sides {
			files, err := profile(ctx, servers[i], drivers[i], o, fmt.Sprintf("%s-%c", sc.ID, 'A'+i), stderr)
			if err != nil {
				return res, err
			}
			res.Profiles = append(res.Profiles, files...)
		}
	}
	return res, nil
}

// profile runs a side once more, unmeasured, while fetching a CPU profile
// and an allocation profile (delta over the same seconds) from pprof.
func profile(ctx context.Context, s *server, d *driver, o options, id string, stderr io.Writer) ([]string, error) {
	secs := max(1, int(o.Duration/time.Second))
	cpuPath := filepath.Join(o.pprofDir, id+"-cpu.pprof")
	allocPath := filepath.Join(o.pprofDir, id+"-allocs.pprof")
	errc := make(chan error, 2)
	go func() {
		errc <- fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.pprof, secs), cpuPath)
	}()
	go func() {
		errc <- fetch(ctx, fmt.Sprintf("%s/debug/pprof/allocs?seconds=%d", s.pprof, secs), allocPath)
	}()
	st := d.run(ctx, 0, time.Duration(secs)*time.Second+500*time.Millisecond, nil)
	if err := errors.Join(<-errc, <-errc); err != nil {
		return nil, fmt.Errorf("pprof: %w", err)
	}
	fmt.Fprintf(stderr, "bench: profiled %s: %d requests in %v (divide profile totals by this)\n", id, st.Requests, st.Elapsed.Round(time.Millisecond))
	return []string{cpuPath, allocPath}, nil
}

// measureStartup starts authserver with the embedded store (fresh data
// directory each time) and times exec to /readyz 200.
func measureStartup(ctx context.Context, e *env, runs int, stderr io.Writer) (*startupResult, error) {
	res := &startupResult{}
	for i := range runs {
		s, err := e.start(ctx, authBolt, startOptions{dataDir: filepath.Join(e.dir, fmt.Sprintf("startup-%d", i))})
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, s.ready)
		s.stop()
		fmt.Fprintf(stderr, "bench: startup %d/%d: %v\n", i+1, runs, s.ready)
	}
	sorted := slices.Clone(res.Runs)
	slices.Sort(sorted)
	res.Median = sorted[len(sorted)/2]
	return res, nil
}

// targetResult is one of issue 6's and issue 16's targets, measured.
type targetResult struct {
	Scenario string `json:"scenario"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func checkTargets(rep report) []targetResult {
	var out []targetResult
	add := func(id, target, measured string, met bool) {
		out = append(out, targetResult{id, target, measured, met})
	}
	for _, r := range rep.Results {
		rss := 0.0
		for _, s := range r.Sides {
			if s.Server.isAuthserver() {
				rss = max(rss, float64(s.PeakRSSKB)/1024)
			}
		}
		if rss > 0 {
			add(r.ID, "authserver peak RSS <= 64 MiB", fmt.Sprintf("%.1f MiB", rss), rss <= 64)
		}
		switch r.ID {
		case "a":
			if h := r.Sides[0].VsHello; h > 0 {
				add("a", "req/s >= 0.65x hello-world TLS", fmt.Sprintf("%.2fx", h), h >= 0.65)
			}
			add("a", "req/s >= 1.1x lean mint", fmt.Sprintf("%.2fx", r.MedianRoundRatio), r.MedianRoundRatio >= 1.1)
		case "e", "h":
			add(r.ID, "signature >= 0.5x JWT", fmt.Sprintf("%.2fx", r.MedianRoundRatio), r.MedianRoundRatio >= 0.5)
		case "apps", "keys", "idps":
			add(r.ID, "req/s within 5% of 1", fmt.Sprintf("%.3fx", r.MedianRoundRatio), r.MedianRoundRatio >= 0.95)
		case "c":
			add("c", "req/s >= 5x no group commit", fmt.Sprintf("%.1fx", r.RatioReqPerSec), r.RatioReqPerSec >= 5)
		case "d":
			add("d", "req/s >= 10x no group commit", fmt.Sprintf("%.1fx", r.RatioReqPerSec), r.RatioReqPerSec >= 10)
		case "f":
			add("f", "handshakes/s >= 0.85x bare TLS server", fmt.Sprintf("%.2fx", r.RatioReqPerSec), r.RatioReqPerSec >= 0.85)
		}
	}
	if rep.Startup != nil {
		add("startup", "exec to ready <= 50 ms (embedded store)", rep.Startup.Median.Round(100*time.Microsecond).String(), rep.Startup.Median <= 50*time.Millisecond)
	}
	for _, r := range []*seqResult{rep.Seq, rep.Preload} {
		if r != nil {
			seqTargets(r, add)
		}
	}
	return out
}

func printReport(w io.Writer, rep report) error {
	o := rep.Options
	fmt.Fprintf(w, "%s, %d CPUs (shared by the servers and this load generator); %d connections, %d rounds of %v (after %v warm-up) per side, alternating A/B\n",
		o.GoVersion, o.CPUs, o.Conns, o.Rounds, o.Duration, o.Warmup)
	pool := "pgx default (max(4, CPUs))"
	if o.PGConns > 0 {
		pool = fmt.Sprint(o.PGConns)
	}
	if o.AuthserverBin != "" {
		fmt.Fprintf(w, "authserver binary: %s (-authserver-bin)\n", o.AuthserverBin)
	}
	fmt.Fprintf(w, "authserver: log.level %s (JSON access + audit log to a file), rate limits 1e6/s, metrics on; Postgres: %s, pool_max_conns %s\n\n",
		o.LogLevel, nonEmpty(o.Postgres, "not used"), pool)
	if len(rep.Results) > 0 {
		tw := newTable(w)
		tw.row("scen", "side", "server", "load", "req/s", "x hello", "x mint", "p50", "p99", "errors", "srv CPU/req", "client CPU/req", "peak RSS", "calls/commit", "commit", "store bound", "req/s by round", "others")
		for _, r := range rep.Results {
			for i, s := range r.Sides {
				var byRound []string
				var others float64
				for _, rd := range s.Rounds {
					byRound = append(byRound, fmt.Sprintf("%.0f", rd.ReqPerSec))
					others += rd.OtherCores / float64(len(s.Rounds))
				}
				id := ""
				if i == 0 {
					id = r.ID
				}
				label := "A " + s.Label
				switch {
				case i == 1 && r.B != nil:
					label = "B " + s.Label
				case i >= 1:
					label = "  " + s.Label
				}
				batch, commit, bound := "", "", ""
				if s.MeanBatch > 0 {
					batch = fmt.Sprintf("%.1f", s.MeanBatch)
				}
				if s.MeanCommit > 0 {
					commit, bound = fmtDur(s.MeanCommit), fmt.Sprintf("%.0f", s.StoreBound)
				}
				load := string(s.Load)
				if s.Resumed > 0 {
					load += fmt.Sprintf(" (%.0f%% resumed)", 100*s.Resumed)
				}
				tw.row(id, label, string(s.Server), load, fmt.Sprintf("%.0f", s.ReqPerSec), fmtRatio(s.VsHello), fmtRatio(s.VsMint), fmtDur(s.P50), fmtDur(s.P99),
					fmt.Sprint(s.Errors), fmtDur(s.CPUPerReq), fmtDur(s.ClientCPUPerReq), fmt.Sprintf("%.1f MiB", float64(s.PeakRSSKB)/1024),
					batch, commit, bound, strings.Join(byRound, " / "), fmt.Sprintf("%.2f", others))
			}
		}
		if err := tw.flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "\n(x hello, x mint: median over rounds of req/s over the hello-world TLS server's and the lean mint's in the same round;"+
			" commit: the store's mean commit (fsync or transaction) in the window; store bound: connections / commit;"+
			" others: CPU cores used by other processes during the measured runs, on average; with Postgres this includes Postgres)")
	}
	rt := newTable(w)
	rt.row("scen", "ratio", "req/s A/B", "by round", "median of rounds", "p99 A/B", "srv CPU/req A/B")
	n := 0
	for _, r := range rep.Results {
		if r.B == nil {
			continue
		}
		var rr []string
		for _, x := range r.RoundRatios {
			rr = append(rr, fmt.Sprintf("%.2f", x))
		}
		rt.row(r.ID, r.Ratio, fmt.Sprintf("%.2fx", r.RatioReqPerSec), strings.Join(rr, " / "), fmt.Sprintf("%.2fx", r.MedianRoundRatio),
			fmt.Sprintf("%.2fx", r.RatioP99), fmt.Sprintf("%.2fx", r.RatioCPU))
		n++
	}
	if n > 0 {
		fmt.Fprintln(w)
		if err := rt.flush(); err != nil {
			return err
		}
	}
	if rep.Startup != nil {
		var runs []string
		for _, d := range rep.Startup.Runs {
			runs = append(runs, fmtDur(d))
		}
		fmt.Fprintf(w, "\nstartup (exec to /readyz 200, embedded store, fresh data dir): median %s of %s\n", fmtDur(rep.Startup.Median), strings.Join(runs, ", "))
	}
	printSeq(w, rep)
	for _, r := range rep.Results {
		for _, s := range r.Sides {
			if s.FirstError != "" {
				fmt.Fprintf(w, "\n%s %s first error: %s", r.ID, s.Label, s.FirstError)
			}
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range rep.Targets {
			verdict := "met"
			if !t.Met {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "  %-8s %-58s %-10s %s\n", t.Scenario, t.Target, t.Measured, verdict)
		}
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fmtDur prints a latency with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}
