// Package sequence hands out the per-(application, user) sequence numbers of
// legacy signatures.
//
// Sinch accepts a legacy signature only if its sequence is greater than the
// last one it saw for that user, so a number must never be handed out twice
// or go back, across restarts, crashes and replicas. Gaps are harmless. Hence
// the rules every Store follows: a number is returned only after the store
// has durably committed it; a call that fails or is abandoned may use a
// number up, never give it to anyone else.
//
// Two stores implement this: Postgres, for any number of replicas sharing a
// database, and Bolt, an embedded file for a single node.
//
// Those rules hold while the store keeps what it committed. A Floor (see
// ClockFloor) extends them to a store that lost its last commits (a
// failover to a standby that lagged, a restored backup, a lost file): every
// number is then also at least the time in microseconds. And the Bolt store
// refuses to start over silently on a file that is missing, empty,
// truncated, damaged, replaced or older than it was (guard.go).
package sequence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/authserver-dev/authserver/internal/core"
)

// Store is a sequence store as the server runs it: core.SequenceStore (the
// interface the Issuer declares) plus what the process needs around it.
// Implementations are safe for concurrent use. Next returns the next
// sequence number of user in application app: 1 the first time, then
// greater than every number returned before for the same pair, by any
// replica. With a Floor, it is also at least the floor (the time in
// microseconds, for ClockFloor). The number is durably committed before it
// is returned. Errors from the store are wrapped in ErrUnavailable.
type Store interface {
	core.SequenceStore

	// Ping reports whether the store is reachable, for readiness checks.
	Ping(ctx context.Context) error

	// Close waits for calls in progress and releases the store's
	// resources. Next after Close returns an error wrapping ErrClosed.
	Close() error
}

// ErrUnavailable wraps every failure to reach the store or commit to it,
// including a caller's context ending before the commit: the HTTP layer
// answers 503 with Retry-After, since trying again later is the remedy.
var ErrUnavailable = errors.New("sequence store unavailable")

// ErrClosed is returned (wrapped, together with ErrUnavailable) by Next
// after Close: a server draining for shutdown is unavailable to new work.
var ErrClosed = errors.New("sequence store closed")

// ErrInvalidKey is returned by Next for an empty application key or user id,
// or one containing a NUL byte (PostgreSQL text cannot hold one, and Bolt
// keys use it as the separator). It is a caller's bug, not unavailability:
// user ids are validated before they get here.
var ErrInvalidKey = errors.New("sequence: application key and user id must be non-empty and contain no NUL byte")

// Observer receives what the caller needs for metrics. A zero Observer
// observes nothing.
type Observer struct {
	// Batch, if set, is called once per commit attempt with the store's
	// name ("postgres" or "bolt"), how many Next calls it served, how long
	// it took and its error. Group commit is only worth having if batches
	// are larger than 1 under load; this is how to see that they are.
	Batch func(store string, size int, d time.Duration, err error)
}

func (o Observer) batch(store string, size int, d time.Duration, err error) {
	if o.Batch != nil {
		o.Batch(store, size, d, err)
	}
}

// result is the outcome of one Next call, handed from the goroutine doing
// the work to the caller.
type result struct {
	v   uint64
	err error
}

func checkKey(app, user string) error {
	if app == "" || user == "" || strings.IndexByte(app, 0) >= 0 || strings.IndexByte(user, 0) >= 0 {
		return ErrInvalidKey
	}
	return nil
}

// unavailable marks err as a store failure for errors.Is(err, ErrUnavailable)
// while keeping the cause (context.DeadlineExceeded, a *pgconn.PgError, ...)
// reachable with errors.Is and errors.As.
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// errStoreClosed is what Next returns after Close.
var errStoreClosed = unavailable(ErrClosed)

// closeGate orders an adapter's calls against its Close, the same way in
// both: a call holds the gate shared (enter, leave) while it hands its work
// on; Close takes it exclusively, once, to mark the store closed, after
// which enter refuses and nothing new is handed on.
type closeGate struct {
	mu     sync.RWMutex
	closed bool
}

// enter holds the gate shared until leave, or returns errStoreClosed (and
// holds nothing) after Close.
func (g *closeGate) enter() error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return errStoreClosed
	}
	return nil
}

// leave ends what enter began.
func (g *closeGate) leave() { g.mu.RUnlock() }

// close marks the gate closed once the calls holding it have left, and
// runs then (when not nil) before letting anyone in again. It reports
// false when the gate was closed already.
func (g *closeGate) close(then func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	if then != nil {
		then()
	}
	return true
}

// awaitResult waits for res, or for ctx to end. A result that is already
// there wins over a context that ended at the same moment: the number is
// committed, so handing it out is correct and saves a gap.
func awaitResult(ctx context.Context, res <-chan result) (uint64, error) {
	select {
	case r := <-res:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-res:
			return r.v, r.err
		default:
			return 0, unavailable(ctx.Err())
		}
	}
}
