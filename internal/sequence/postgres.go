package sequence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresOptions tunes a Postgres store. The zero value is a sensible
// production setting.
type PostgresOptions struct {
	// Window is the longest a batch that could be sent waits for as many
	// calls as the previous batch had (see collect). Default 500µs.
	// The wait ends as soon as that many have arrived, so at light load
	// it costs nothing; it only applies when load drops.
	Window time.Duration

	// MaxBatch caps the calls in one statement. Default 256.
	MaxBatch int

	// MaxInFlight caps the batches being committed at once; further calls
	// accumulate into the next batch meanwhile. Default 2: one batch's
	// statement runs while the other's commit waits for its fsync. On
	// bench/seqbench (64 callers, fsync on, 2 cores) 2 in flight gave
	// 59k calls/s over many users against 46k with 1, and the same on one
	// hot user (115k/s; the second batch waits on the row lock, not
	// deadlocking: rows are locked in sorted order). More in flight split
	// the same calls into smaller statements; on one hot user 4 gave a
	// third of the throughput, its batches queueing on the row lock.
	MaxInFlight int

	// DisableGroupCommit makes every Next its own statement and commit,
	// on the caller's goroutine. For comparison and debugging: it saves
	// a goroutine hand-off (about 0.1 ms) for a lone caller, and loses
	// several-fold under concurrency.
	DisableGroupCommit bool

	// StatementTimeout bounds how long a Next (queueing for a batch
	// included) or a Ping waits for the database, so that a hung or
	// unreachable database turns into prompt ErrUnavailable errors
	// rather than piled-up requests. Default 2s.
	StatementTimeout time.Duration

	// Observer receives one call per statement.
	Observer Observer

	// Floor, if set, is read once per statement: every number handed out
	// is then at least the floor (see Floor and ClockFloor). It goes into
	// the same single statement as a parameter, so it costs no round trip.
	Floor Floor
}

func (o *PostgresOptions) setDefaults() {
	if o.Window <= 0 {
		o.Window = 500 * time.Microsecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 2
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 2 * time.Second
	}
}

// upsertBatch serves a whole batch in one atomic statement: each (app, user)
// appears once, with n = how many calls in the batch want a number; the
// returned sequence is the new high, so the batch's callers for that user
// get high-n+1 ... high.
//
// $4 is the floor's base f (floor-1, or 0 without a floor): a user whose
// stored high is h gets GREATEST(h, f)+1 ... GREATEST(h, f)+n. A new row
// is inserted as f+n; on conflict EXCLUDED.sequence - $4 is n again. With
// f = 0 this is the plain sequence + n.
//
// It never reads and then writes: the row lock taken by ON CONFLICT DO
// UPDATE makes concurrent statements from other replicas wait and then add
// to the committed value. ORDER BY makes every statement lock its rows in
// one order, so two replicas' batches cannot deadlock. Plain INSERT ... ON
// CONFLICT and GREATEST keep it portable to CockroachDB.
const upsertBatch = `INSERT INTO sequences (application_key, user_id, sequence)
SELECT a, u, n + $4::bigint FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(a, u, n)
ORDER BY a, u
ON CONFLICT (application_key, user_id) DO UPDATE
SET sequence = GREATEST(sequences.sequence, $4::bigint) + EXCLUDED.sequence - $4::bigint
RETURNING application_key, user_id, sequence`

// upsertOne is upsertBatch for one call, used when group commit is off.
const upsertOne = `INSERT INTO sequences (application_key, user_id, sequence) VALUES ($1, $2, $3::bigint + 1)
ON CONFLICT (application_key, user_id) DO UPDATE SET sequence = GREATEST(sequences.sequence, $3::bigint) + 1
RETURNING sequence`

// Postgres is a Store on a PostgreSQL table (see migrations/), shared by any
// number of replicas.
//
// With group commit (the default), concurrent Next calls are collected by
// one goroutine into batches, each served by a single statement and a
// single commit: under load this divides the commits, and the WAL flushes
// they wait for, by the batch size.
type Postgres struct {
	pool     *pgxpool.Pool
	ownsPool bool
	opts     PostgresOptions

	// gate orders Next's hand-over to the collector against Close: Next
	// holds it while sending on reqs, Close closes reqs when it closes the
	// gate, after which nothing sends on reqs.
	gate closeGate

	reqs chan *request
	done chan struct{} // closed when the collector has served everything and exited
}

// request is one Next call waiting in the collector.
type request struct {
	ctx       context.Context
	app, user string
	enqueued  time.Time
	res       chan result // buffered: the collector never waits for a caller that gave up
}

// NewPostgres returns a store using pool, which stays the caller's to
// close (after the store). The table must exist: run migrations.Up first.
func NewPostgres(pool *pgxpool.Pool, opts PostgresOptions) *Postgres {
	opts.setDefaults()
	p := &Postgres{pool: pool, opts: opts}
	if !opts.DisableGroupCommit {
		p.reqs = make(chan *request)
		p.done = make(chan struct{})
		go p.collect()
	}
	return p
}

// OpenPostgres connects to the database at url and returns a store that
// owns its pool. The pool connects lazily, so the database is pinged here:
// a server started against an unreachable database fails at once, with an
// error wrapping ErrUnavailable, instead of on its first request.
func OpenPostgres(ctx context.Context, url string, opts PostgresOptions) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("sequence: database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, unavailable(err)
	}
	p := NewPostgres(pool, opts)
	p.ownsPool = true
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Next implements Store.
func (p *Postgres) Next(ctx context.Context, app, user string) (uint64, error) {
	if err := checkKey(app, user); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, unavailable(err)
	}
	if p.opts.DisableGroupCommit {
		return p.nextOne(ctx, app, user)
	}

	r := &request{ctx: ctx, app: app, user: user, enqueued: time.Now(), res: make(chan result, 1)}
	if err := p.gate.enter(); err != nil {
		return 0, err
	}
	select {
	case p.reqs <- r:
	case <-ctx.Done():
		p.gate.leave()
		return 0, unavailable(ctx.Err())
	}
	p.gate.leave()
	return awaitResult(ctx, r.res)
}

// nextOne is Next without group commit: one statement, one commit.
func (p *Postgres) nextOne(ctx context.Context, app, user string) (uint64, error) {
	// Holding the gate for the whole call lets Close wait for it.
	if err := p.gate.enter(); err != nil {
		return 0, err
	}
	defer p.gate.leave()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.opts.StatementTimeout)
	defer cancel()
	var v int64
	// Scan reads up to ReadyForQuery, so an error at commit is reported
	// here rather than lost after the row arrived.
	err := p.pool.QueryRow(ctx, upsertOne, app, user, int64(p.opts.Floor.base())).Scan(&v)
	if err == nil && v < 1 {
		err = fmt.Errorf("sequence: database returned %d", v)
	}
	p.opts.Observer.batch("postgres", 1, time.Since(start), err)
	if err != nil {
		return 0, unavailable(err)
	}
	return uint64(v), nil
}

// collect is the group-commit loop. It gathers requests into a batch and
// hands the batch to a goroutine to commit when fewer than MaxInFlight
// batches are committing and one of these holds:
//
//   - the batch is as large as the previous one. Under load, the callers
//     just answered come straight back; waiting for them makes each
//     statement serve all of them instead of alternating half-size
//     batches, and nothing is gained by waiting longer. At light load
//     (previous batch of 1) this sends at once, adding no latency;
//   - Window has passed since the batch could have been sent (load
//     dropped);
//   - the batch is full (MaxBatch), or the store is closing.
//
// Meanwhile it keeps accepting requests for the next batch, so the next
// batch forms while the current one waits for its commit; when it is full
// too, callers wait in Next's send (back-pressure).
func (p *Postgres) collect() {
	defer close(p.done)
	var (
		reqs     = p.reqs // nil once closed
		pending  []*request
		timer    = time.NewTimer(time.Hour)
		timerC   <-chan time.Time // non-nil while the window of pending runs
		expired  bool
		inFlight int
		finished = make(chan struct{}, p.opts.MaxInFlight)
		previous = 1 // size of the last batch sent
	)
	timer.Stop()
	for {
		canSend := len(pending) > 0 && inFlight < p.opts.MaxInFlight
		if canSend && (len(pending) >= previous || expired || len(pending) >= p.opts.MaxBatch || reqs == nil) {
			batch := pending
			previous = len(batch)
			pending, expired, timerC = nil, false, nil
			timer.Stop()
			inFlight++
			go func() {
				p.run(batch)
				finished <- struct{}{}
			}()
			continue
		}
		if canSend && timerC == nil && !expired {
			// The window runs from when the batch could be sent, not
			// from its first request: requests that arrived while the
			// previous batch was committing have not been kept waiting
			// by the window.
			timer.Reset(p.opts.Window)
			timerC = timer.C
		}
		if reqs == nil && len(pending) == 0 && inFlight == 0 {
			return
		}
		in := reqs
		if len(pending) >= p.opts.MaxBatch {
			in = nil
		}
		select {
		case r, ok := <-in:
			if !ok {
				reqs = nil
				continue
			}
			pending = append(pending, r)
		case <-timerC:
			timerC, expired = nil, true
		case <-finished:
			inFlight--
		}
	}
}

// userKey identifies one row of the sequences table.
type userKey struct{ app, user string }

// group is the calls for one user in a batch, in arrival order.
type group struct {
	key  userKey
	reqs []*request
}

// run commits one batch and answers its callers.
func (p *Postgres) run(batch []*request) {
	start := time.Now()
	groups := make(map[userKey]*group, len(batch))
	var order []*group
	size := 0
	oldest := batch[0].enqueued
	for _, r := range batch {
		// A caller that has given up gets nothing written: no gap.
		if err := r.ctx.Err(); err != nil {
			r.res <- result{err: unavailable(err)}
			continue
		}
		k := userKey{r.app, r.user}
		g := groups[k]
		if g == nil {
			g = &group{key: k}
			groups[k] = g
			order = append(order, g)
		}
		g.reqs = append(g.reqs, r)
		size++
	}
	if size == 0 {
		return
	}

	apps := make([]string, len(order))
	users := make([]string, len(order))
	counts := make([]int64, len(order))
	for i, g := range order {
		apps[i], users[i], counts[i] = g.key.app, g.key.user, int64(len(g.reqs))
	}

	// Not a caller's context: one caller giving up must not fail the
	// others. The deadline runs from the oldest request's arrival, so that
	// StatementTimeout bounds the callers' whole wait.
	ctx, cancel := context.WithDeadline(context.Background(), oldest.Add(p.opts.StatementTimeout))
	defer cancel()
	highs, err := p.upsert(ctx, apps, users, counts)
	p.opts.Observer.batch("postgres", size, time.Since(start), err)
	if err != nil {
		err = unavailable(err)
		for _, g := range order {
			for _, r := range g.reqs {
				r.res <- result{err: err}
			}
		}
		return
	}
	for _, g := range order {
		// high was checked to be >= len(g.reqs) > 0 by upsert.
		first := uint64(highs[g.key]) - uint64(len(g.reqs)) + 1
		for i, r := range g.reqs {
			r.res <- result{v: first + uint64(i)}
		}
	}
}

// upsert runs upsertBatch and returns the new high per user. It returns only
// once the server has reported the outcome of the commit, which in
// PostgreSQL's protocol comes after the returned rows.
func (p *Postgres) upsert(ctx context.Context, apps, users []string, counts []int64) (map[userKey]int64, error) {
	// The floor is read as late as possible, just before the statement.
	rows, err := p.pool.Query(ctx, upsertBatch, apps, users, counts, int64(p.opts.Floor.base()))
	if err != nil {
		return nil, err
	}
	highs := make(map[userKey]int64, len(apps))
	for rows.Next() {
		var k userKey
		var high int64
		if err := rows.Scan(&k.app, &k.user, &high); err != nil {
			rows.Close()
			return nil, err
		}
		highs[k] = high
	}
	rows.Close() // reads through to ReadyForQuery, i.e. past the commit
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(highs) != len(apps) {
		return nil, fmt.Errorf("sequence: statement returned %d rows for %d users", len(highs), len(apps))
	}
	for i := range apps {
		high, ok := highs[userKey{apps[i], users[i]}]
		if !ok || high < counts[i] {
			return nil, fmt.Errorf("sequence: statement returned %d for %q/%q after adding %d", high, apps[i], users[i], counts[i])
		}
	}
	return highs, nil
}

// Ping implements Store: it checks that a connection to the database can
// be had, within StatementTimeout.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.gate.enter(); err != nil {
		return err
	}
	p.gate.leave()
	ctx, cancel := context.WithTimeout(ctx, p.opts.StatementTimeout)
	defer cancel()
	if err := p.pool.Ping(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

// Close implements Store. Calls already handed to the collector are still
// committed and answered (each within StatementTimeout); the pool is closed
// only if OpenPostgres made it.
func (p *Postgres) Close() error {
	closeReqs := func() {
		if p.reqs != nil {
			close(p.reqs)
		}
	}
	if !p.gate.close(closeReqs) {
		return nil
	}
	if p.done != nil {
		<-p.done
	}
	if p.ownsPool {
		p.pool.Close()
	}
	return nil
}

var _ Store = (*Postgres)(nil)
