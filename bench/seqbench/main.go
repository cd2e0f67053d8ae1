// Command seqbench measures the PostgreSQL sequence store with and without
// group commit, over many users and on one hot user, in one run:
//
//	go run ./bench/seqbench [-c 64] [-d 5s] [-json] [-db URL] [-clock-floor] [-preload N]
//
// -clock-floor gives every scenario sequence.clock_floor; run it with and
// without to compare (each run starts its own throwaway server, so both
// see the same table state).
//
// With -preload N (throwaway server only) it inserts the measured users'
// rows and N more (user ids interleaved with the measured ones, under the
// measured application), vacuums and checkpoints, before the four
// scenarios, and then alternates -preload-rounds rounds of
// group commit over many users on that table (a) and on a second database
// of the same server holding only the measured users' rows (a0); the report
// gives the median of the rounds' a/a0, the cost of a big table, measured
// on the same server at the same time so that load drift hits both.
//
// Without -db it starts a throwaway PostgreSQL (internal/pgtest, which also
// honours AUTHSERVER_TEST_DATABASE_URL) with fsync on, so every commit
// really waits for the disk, as in production.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authserver-dev/authserver/bench/internal/cli"
	"github.com/authserver-dev/authserver/bench/internal/loadgen"
	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/internal/sequence"
	"github.com/authserver-dev/authserver/internal/servertest"
	"github.com/authserver-dev/authserver/migrations"
)

func main() { cli.Main("seqbench", run) }

// config is what a run was asked to do; it is printed with the results so
// that figures are never quoted without their conditions.
type config struct {
	Callers     int           `json:"callers"`
	Duration    time.Duration `json:"duration_ns"`
	Warmup      time.Duration `json:"warmup_ns"`
	Users       int           `json:"users"`
	PoolConns   int32         `json:"pool_conns"`
	MaxInFlight int           `json:"max_in_flight"`
	Window      time.Duration `json:"window_ns"`
	MaxBatch    int           `json:"max_batch"`
	ClockFloor  bool          `json:"clock_floor"`
	Fsync       string        `json:"fsync"`
	Server      string        `json:"server"`
	Preload     int64         `json:"preload_rows,omitempty"`
	PreRounds   int           `json:"preload_rounds,omitempty"`
	PreloadTime time.Duration `json:"preload_ns,omitempty"`
}

// scenario is one measured configuration.
type scenario struct {
	Name        string `json:"name"`
	GroupCommit bool   `json:"group_commit"`
	HotUser     bool   `json:"hot_user"`
}

// outcome is what one scenario measured.
type outcome struct {
	scenario
	Calls       int64         `json:"calls"`
	Errors      int64         `json:"errors"`
	CallsPerSec float64       `json:"calls_per_sec"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	Statements  int64         `json:"statements"`
	MeanBatch   float64       `json:"mean_batch"`
	// WALPerCall is the WAL the server wrote in the measured window per
	// call: what a commit costs the disk, steadier than calls/s on a shared
	// machine (a table fresh from a bulk load, not yet vacuumed and
	// checkpointed, wrote 4-15x the small table's: whole-page images).
	WALPerCall float64 `json:"wal_bytes_per_call"`
	// HOTShare is the share of the table's updates in the window that were
	// HOT (heap-only: no index entry written).
	HOTShare float64 `json:"hot_update_share"`
}

type report struct {
	Config    config             `json:"config"`
	Scenarios []outcome          `json:"scenarios"`
	Ratios    map[string]float64 `json:"ratios"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seqbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg    config
		dbURL  = fs.String("db", "", "PostgreSQL URL to use instead of a throwaway server (the schema is migrated; rows go under a fresh application key)")
		asJSON = fs.Bool("json", false, "print the report as JSON")
		noSync = fs.Bool("nofsync", false, "throwaway server only: fsync=off")
		conns  = fs.Int("conns", 16, "pool size (pgxpool MaxConns)")
	)
	fs.IntVar(&cfg.Callers, "c", 64, "concurrent callers")
	fs.DurationVar(&cfg.Duration, "d", 5*time.Second, "measured duration per scenario")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warm-up per scenario")
	fs.IntVar(&cfg.Users, "users", 100_000, "distinct users in the many-users scenarios")
	fs.IntVar(&cfg.MaxInFlight, "inflight", 0, "PostgresOptions.MaxInFlight (0: the store's default)")
	fs.DurationVar(&cfg.Window, "window", 0, "PostgresOptions.Window (0: the store's default)")
	fs.IntVar(&cfg.MaxBatch, "maxbatch", 0, "PostgresOptions.MaxBatch (0: the store's default)")
	fs.BoolVar(&cfg.ClockFloor, "clock-floor", false, "PostgresOptions.Floor = sequence.ClockFloor(time.Now), as with sequence.clock_floor: true")
	fs.Int64Var(&cfg.Preload, "preload", 0, "insert this many rows before the scenarios, then compare a with a second, small database in alternating rounds (for example 10000000)")
	fs.IntVar(&cfg.PreRounds, "preload-rounds", 3, "with -preload: alternating rounds of a on the big and on the small table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Callers < 1 || cfg.Duration <= 0 || cfg.Users < 1 || *conns < 1 || cfg.PreRounds < 1 {
		return errors.New("-c, -d, -users, -conns and -preload-rounds must be positive")
	}
	cfg.PoolConns = int32(*conns)

	url := *dbURL
	var smallURL string
	if cfg.Preload > 0 && url != "" {
		return errors.New("-preload needs the throwaway server (no -db): it compares two databases of one server")
	}
	if url == "" {
		fmt.Fprintln(stderr, "seqbench: starting a throwaway PostgreSQL")
		cluster, err := pgtest.Start(pgtest.Options{DisableFsync: *noSync})
		if err != nil {
			return err
		}
		defer cluster.Close()
		if url, err = cluster.CreateDatabase(ctx, "seqbench_"+servertest.RandomHex(4)); err != nil {
			return err
		}
		if cfg.Preload > 0 {
			if smallURL, err = cluster.CreateDatabase(ctx, "seqbench_small_"+servertest.RandomHex(4)); err != nil {
				return err
			}
		}
	}

	pool, err := openPool(ctx, url, cfg.PoolConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.QueryRow(ctx, "show fsync").Scan(&cfg.Fsync); err != nil {
		return err
	}
	if err := pool.QueryRow(ctx, "select version()").Scan(&cfg.Server); err != nil {
		return err
	}

	rep := report{Config: cfg, Ratios: map[string]float64{}}
	app := "seqbench-" + servertest.RandomHex(8)
	if cfg.Preload > 0 {
		if rep.Config.PreloadTime, err = preload(ctx, pool, app, cfg.Users, cfg.Preload, stderr); err != nil {
			return err
		}
	}
	for _, sc := range []scenario{
		{"a: group commit, many users", true, false},
		{"b: no group commit, many users", false, false},
		{"c: group commit, one hot user", true, true},
		{"d: no group commit, one hot user", false, true},
	} {
		fmt.Fprintf(stderr, "seqbench: %s ...\n", sc.Name)
		out, err := measure(ctx, pool, app, cfg, sc)
		if err != nil {
			return err
		}
		rep.Scenarios = append(rep.Scenarios, out)
	}
	ratio := func(a, b outcome) float64 {
		if b.CallsPerSec == 0 {
			return 0
		}
		return a.CallsPerSec / b.CallsPerSec
	}
	rep.Ratios["a/b"] = ratio(rep.Scenarios[0], rep.Scenarios[1])
	rep.Ratios["c/d"] = ratio(rep.Scenarios[2], rep.Scenarios[3])
	if cfg.Preload > 0 {
		small, err := openPool(ctx, smallURL, cfg.PoolConns)
		if err != nil {
			return err
		}
		defer small.Close()
		big := scenario{fmt.Sprintf("a: group commit, many users, %d rows", cfg.Preload), true, false}
		sc := scenario{"a0: group commit, many users, only their rows", true, false}
		// Unmeasured: the small table gets the measured users' rows too,
		// then a checkpoint, as the big one had.
		if _, err := measure(ctx, small, app, cfg, sc); err != nil {
			return err
		}
		if _, err := small.Exec(ctx, "CHECKPOINT"); err != nil {
			return err
		}
		var rs []float64
		for r := range cfg.PreRounds {
			fmt.Fprintf(stderr, "seqbench: preload round %d/%d ...\n", r+1, cfg.PreRounds)
			a, err := measure(ctx, pool, app, cfg, big)
			if err != nil {
				return err
			}
			a0, err := measure(ctx, small, app, cfg, sc)
			if err != nil {
				return err
			}
			rep.Scenarios = append(rep.Scenarios, a, a0)
			rs = append(rs, ratio(a, a0))
		}
		slices.Sort(rs)
		rep.Ratios["a/a0"] = rs[len(rs)/2]
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printTable(stdout, rep)
}

// openPool connects with conns connections and migrates the schema.
func openPool(ctx context.Context, url string, conns int32) (*pgxpool.Pool, error) {
	poolCfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	poolCfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// preload inserts the measured users' rows (user-0 ... user-<users-1>) and
// n more (user-<users> ...), among which the measured ones lie spread in the
// primary key, in chunks of a million rows, then vacuums and analyzes the
// table and checkpoints: the measured calls update rows of a big table in
// service, not the aftermath of a bulk load.
func preload(ctx context.Context, pool *pgxpool.Pool, app string, users int, n int64, stderr io.Writer) (time.Duration, error) {
	began := time.Now()
	const chunk = 1_000_000
	for from := int64(0); from < int64(users)+n; from += chunk {
		to := min(from+chunk, int64(users)+n) - 1
		if _, err := pool.Exec(ctx, `INSERT INTO sequences (application_key, user_id, sequence)
SELECT $1, 'user-' || g, 1 FROM generate_series($2::bigint, $3::bigint) g`, app, from, to); err != nil {
			return 0, fmt.Errorf("preload: %w", err)
		}
		fmt.Fprintf(stderr, "seqbench: preloaded %d of %d rows (%v)\n", to+1, int64(users)+n, time.Since(began).Round(time.Second))
	}
	// A table that grew to n rows in service has been vacuumed and
	// checkpointed along the way; one loaded in a minute has not, and its
	// first vacuum (all-visible bits over every page) and the checkpoint
	// that writes its gigabyte of dirty pages would be measured as the cost
	// of its size (the first measured round would share the disk with them).
	for _, q := range []string{"VACUUM (ANALYZE) sequences", "CHECKPOINT"} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("preload: %s: %w", q, err)
		}
	}
	return time.Since(began), nil
}

// measure runs one scenario: a warm-up, then cfg.Callers goroutines calling
// Next back to back for cfg.Duration.
func measure(ctx context.Context, pool *pgxpool.Pool, app string, cfg config, sc scenario) (outcome, error) {
	var statements, batched atomic.Int64
	var measuring atomic.Bool
	var floor sequence.Floor
	if cfg.ClockFloor {
		floor = sequence.ClockFloor(time.Now)
	}
	store := sequence.NewPostgres(pool, sequence.PostgresOptions{
		Floor:              floor,
		DisableGroupCommit: !sc.GroupCommit,
		MaxInFlight:        cfg.MaxInFlight,
		Window:             cfg.Window,
		MaxBatch:           cfg.MaxBatch,
		Observer: sequence.Observer{Batch: func(_ string, size int, _ time.Duration, _ error) {
			if measuring.Load() {
				statements.Add(1)
				batched.Add(int64(size))
			}
		}},
	})
	defer store.Close()

	hot := fmt.Sprintf("hot-%t", sc.GroupCommit) // a fresh row per hot scenario
	rngs := make([]*mrand.Rand, cfg.Callers)
	for w := range rngs {
		rngs[w] = mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	}
	// The server's WAL and the table's update counts, read as the window
	// opens and closes.
	var wal, upd, hotUpd [2]int64
	var statsErr error
	mark := func(start bool) {
		i := 1
		if start {
			i = 0
		}
		if !start {
			measuring.Store(false)
		}
		var err error
		wal[i], upd[i], hotUpd[i], err = writeStats(ctx, pool)
		statsErr = cmp.Or(statsErr, err)
		if start {
			measuring.Store(true)
		}
	}
	res := loadgen.Run(ctx, cfg.Callers, cfg.Warmup, cfg.Duration, func(ctx context.Context, w int) error {
		user := hot
		if !sc.HotUser {
			user = fmt.Sprintf("user-%d", rngs[w].IntN(cfg.Users))
		}
		_, err := store.Next(ctx, app, user)
		return err
	}, mark)
	if err := cmp.Or(ctx.Err(), statsErr); err != nil {
		return outcome{}, err
	}
	if res.Calls == 0 {
		return outcome{}, fmt.Errorf("%s: no call succeeded: %v", sc.Name, res.FirstErr)
	}

	out := outcome{
		scenario:    sc,
		Calls:       res.Calls,
		Errors:      res.Errors,
		CallsPerSec: float64(res.Calls) / res.Elapsed.Seconds(),
		P50:         loadgen.Percentile(res.Latencies, 0.50),
		P99:         loadgen.Percentile(res.Latencies, 0.99),
		Statements:  statements.Load(),
	}
	if out.Statements > 0 {
		out.MeanBatch = float64(batched.Load()) / float64(out.Statements)
	}
	out.WALPerCall = float64(wal[1]-wal[0]) / float64(out.Calls)
	if upd[1] > upd[0] {
		out.HOTShare = float64(hotUpd[1]-hotUpd[0]) / float64(upd[1]-upd[0])
	}
	return out, nil
}

// writeStats reads the server's WAL position (bytes) and the sequences
// table's update counts in this database (all and HOT). The counts reach
// pg_stat_user_tables within a second of a transaction; over a window of
// seconds the share is close.
func writeStats(ctx context.Context, pool *pgxpool.Pool) (wal, upd, hot int64, err error) {
	err = pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
  coalesce((SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'sequences'), 0),
  coalesce((SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'sequences'), 0)`).Scan(&wal, &upd, &hot)
	return wal, upd, hot, err
}

func printTable(w io.Writer, rep report) error {
	c := rep.Config
	fmt.Fprintf(w, "%s\nfsync=%s, %d callers, %v per scenario (after %v warm-up), pool %d conns, %d users in a-b, clock floor %t\n\n",
		c.Server, c.Fsync, c.Callers, c.Duration, c.Warmup, c.PoolConns, c.Users, c.ClockFloor)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tcalls/s\tp50\tp99\tcalls\terrors\tstatements\tcalls/statement\tWAL/call\tHOT updates\t")
	for _, o := range rep.Scenarios {
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t%v\t%d\t%d\t%d\t%.1f\t%.0f B\t%.0f%%\t\n",
			o.Name, o.CallsPerSec, o.P50.Round(time.Microsecond), o.P99.Round(time.Microsecond),
			o.Calls, o.Errors, o.Statements, o.MeanBatch, o.WALPerCall, 100*o.HOTShare)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nthroughput ratio a/b (group commit gain, many users): %.1fx\nthroughput ratio c/d (group commit gain, one hot user): %.1fx\n",
		rep.Ratios["a/b"], rep.Ratios["c/d"])
	if err == nil && c.Preload > 0 {
		_, err = fmt.Fprintf(w, "throughput ratio a/a0 (%d rows preloaded in %v vs only the measured users' rows; median of %d alternating rounds): %.2fx\n",
			c.Preload, c.PreloadTime.Round(time.Second), c.PreRounds, rep.Ratios["a/a0"])
	}
	return err
}
