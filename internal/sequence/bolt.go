package sequence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltOptions tunes a Bolt store. The zero value is a sensible setting.
type BoltOptions struct {
	// LockTimeout is how long OpenBolt waits for another process to let go
	// of the file. Default 100ms: a second server on the same data
	// directory should fail at once with a clear message, not hang.
	LockTimeout time.Duration

	// MaxBatchDelay is how long a commit waits for more calls to join it
	// before it starts. Default 0: a commit starts as soon as the previous
	// one is synced, with every call that arrived meanwhile, so under load
	// a batch holds all the calls of one fsync's time and a lone caller
	// does not wait at all. (bbolt's own DB.Batch closes a batch on a
	// timer instead, and queues the batches behind the writer lock: with
	// 64 callers and a 3.5 ms fsync it committed 3 calls per fsync.)
	MaxBatchDelay time.Duration

	// MaxBatchSize caps the calls in one commit. Default 1000.
	MaxBatchSize int

	// Observer receives one call per committed transaction, and one per
	// failed call.
	Observer Observer

	// Floor, if set, is read once per call, before its transaction, and
	// every number handed out is at least the floor (see ClockFloor).
	Floor Floor

	// AcceptReset lets OpenBolt start over when the store file is missing,
	// empty, truncated, damaged, replaced or older than when it was last
	// closed, instead of refusing to (see OpenBolt). A damaged file is
	// kept beside the new one. Each case is reported through Warn.
	AcceptReset bool

	// Warn, if set, receives the warnings of OpenBolt (a reset accepted, a
	// damaged meta page), in log/slog's form: a message and key-value pairs.
	Warn func(msg string, args ...any)
}

// boltBucket holds every sequence, under key app + "\x00" + user with a
// big-endian uint64 value. NUL cannot occur in either part (checkKey), so
// keys cannot collide.
var boltBucket = []byte("sequences")

// Bolt is a Store in a bbolt file, for a single node without PostgreSQL.
// bbolt takes an exclusive lock on the file, so a second process cannot
// open it and hand out the same numbers.
type Bolt struct {
	db   *bolt.DB
	opts BoltOptions
	path string

	// gate orders Next's start against Close; wg counts Next calls under
	// way so that Close can wait for them before closing the file.
	gate closeGate
	wg   sync.WaitGroup

	// group is the group commit: calls waiting for the next commit, and
	// whether a committer goroutine is running.
	group struct {
		sync.Mutex
		pending    []*boltCall
		committing bool
	}
}

// boltCall is one Next call waiting for its commit. fn sets v; v is handed
// out (on res) only once a transaction in which fn ran is committed and
// synced.
type boltCall struct {
	fn    func(*bolt.Tx) error
	v     uint64
	start time.Time
	res   chan result
}

// OpenBolt opens (creating if needed) the store file at path. If another
// process holds the file, the error says so.
//
// The store keeps a marker file beside it (path + ".id", see guard.go)
// naming the store it holds and the last commit a clean close saw, and
// refuses, with a one-line error, to start over silently: a store file
// that is missing or empty while the marker exists, truncated below what
// its meta pages say (checked before bbolt maps it, which would otherwise
// die of SIGBUS), damaged so that bbolt panics, replaced by another store,
// or older than at its last clean close. opts.AcceptReset starts over (or
// takes the file as it is) instead, with a warning.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 100 * time.Millisecond
	}
	if opts.MaxBatchSize <= 0 {
		opts.MaxBatchSize = 1000
	}
	if opts.Warn == nil {
		opts.Warn = func(string, ...any) {}
	}
	db, err := openGuarded(path, opts)
	if err != nil {
		return nil, err
	}
	return &Bolt{db: db, opts: opts, path: path}, nil
}

// Next implements Store. Calls are committed in groups, one fsync per
// group (commitLoop).
func (b *Bolt) Next(ctx context.Context, app, user string) (uint64, error) {
	if err := checkKey(app, user); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, unavailable(err)
	}
	if err := b.gate.enter(); err != nil {
		return 0, err
	}
	b.wg.Add(1) // Done when the call is answered (answer)
	b.gate.leave()

	// The commit runs on the committing goroutine, so a caller whose
	// context ends (a disk stalled on fsync) can leave; its number is then
	// skipped.
	c := b.call(app, user)
	g := &b.group
	g.Lock()
	g.pending = append(g.pending, c)
	if !g.committing {
		g.committing = true
		go b.commitLoop()
	}
	g.Unlock()
	return awaitResult(ctx, c.res)
}

// call makes the transaction function of one Next call. The floor is read
// once, outside it: the function may run more than once (when another
// function of its group fails, each is run again in a transaction of its
// own), so it derives v from the transaction and this fixed base alone.
func (b *Bolt) call(app, user string) *boltCall {
	c := &boltCall{start: time.Now(), res: make(chan result, 1)}
	key := make([]byte, 0, len(app)+1+len(user))
	key = append(append(append(key, app...), 0), user...)
	base := b.opts.Floor.base()
	c.fn = func(tx *bolt.Tx) error {
		bkt := tx.Bucket(boltBucket)
		var cur uint64
		if old := bkt.Get(key); old != nil {
			if len(old) != 8 {
				return fmt.Errorf("sequence: corrupt value for %q/%q: %d bytes", app, user, len(old))
			}
			cur = binary.BigEndian.Uint64(old)
		}
		cur = max(cur, base)
		if cur == math.MaxUint64 {
			return fmt.Errorf("sequence: %q/%q is exhausted", app, user)
		}
		c.v = cur + 1
		return bkt.Put(key, binary.BigEndian.AppendUint64(nil, c.v))
	}
	return c
}

// commitLoop commits the waiting calls, one transaction at a time, until
// none are left; calls arriving during a commit form the next one. When
// the shared transaction fails, each of its calls is run again in a
// transaction of its own, so that one failing call does not fail the
// others.
func (b *Bolt) commitLoop() {
	g := &b.group
	for {
		if b.opts.MaxBatchDelay > 0 {
			time.Sleep(b.opts.MaxBatchDelay)
		}
		g.Lock()
		n := min(len(g.pending), b.opts.MaxBatchSize)
		if n == 0 {
			g.committing = false
			g.Unlock()
			return
		}
		calls := slices.Clone(g.pending[:n])
		g.pending = append(g.pending[:0], g.pending[n:]...)
		g.Unlock()

		start := time.Now()
		err := safeUpdate(b.db, func(tx *bolt.Tx) error {
			for _, c := range calls {
				if err := c.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			b.opts.Observer.batch("bolt", len(calls), time.Since(start), nil)
		}
		for _, c := range calls {
			if err != nil && len(calls) > 1 {
				start := time.Now()
				err := safeUpdate(b.db, c.fn)
				if err == nil {
					b.opts.Observer.batch("bolt", 1, time.Since(start), nil)
				}
				b.answer(c, err)
				continue
			}
			b.answer(c, err)
		}
	}
}

// answer hands a call its number, or its error once committing it failed.
func (b *Bolt) answer(c *boltCall, err error) {
	if err != nil {
		b.opts.Observer.batch("bolt", 1, time.Since(c.start), err)
		c.res <- result{err: unavailable(err)}
	} else {
		c.res <- result{v: c.v}
	}
	b.wg.Done()
}

// Ping implements Store: the file is local, so this only checks that the
// store is open and readable.
func (b *Bolt) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return unavailable(err)
	}
	if err := b.gate.enter(); err != nil {
		return err
	}
	defer b.gate.leave()
	err := b.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(boltBucket) == nil {
			return errors.New("sequence: bucket missing")
		}
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Close implements Store: it waits for calls under way, then closes the
// file, releasing its lock.
func (b *Bolt) Close() error {
	if !b.gate.close(nil) {
		return nil
	}
	b.wg.Wait()
	// The marker remembers the last commit, so that the next start can
	// tell a file rolled back or restored from an older copy.
	markErr := closeMarker(b.db, b.path)
	return errors.Join(b.db.Close(), markErr)
}

var _ Store = (*Bolt)(nil)
