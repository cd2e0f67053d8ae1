// Package logbuf batches log records into fewer writes. The server logs a
// JSON record per request (access and audit fields in one); written one
// write(2) each, the records (two per request then) were the largest single
// cost of the JWT path. A Writer collects them in memory and writes them out
// together:
//
//   - at the latest Interval (50 ms by default) after the first record that
//     is not yet written, so a crash (SIGKILL, OOM kill, power loss) loses
//     at most the records of the last Interval, never older ones;
//   - at once when MaxBuffer bytes (64 KiB) are waiting, which bounds both
//     the memory held and what a crash can lose under heavy load;
//   - on Flush and on Close, which serve calls after the graceful shutdown,
//     so no record is lost when the process stops normally;
//   - at once after a warning or an error, with a handler wrapped by FlushAt.
//
// Each Write is kept whole (slog handlers write one record per call), so
// lines are never split or interleaved.
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval  = 50 * time.Millisecond
	DefaultMaxBuffer = 64 << 10
)

// Options tune a Writer; the zero value means the defaults.
type Options struct {
	// Interval is the longest a record waits in memory.
	Interval time.Duration
	// MaxBuffer is how many waiting bytes trigger a write at once.
	MaxBuffer int

	// afterFunc replaces time.AfterFunc in tests.
	afterFunc func(time.Duration, func()) timer
}

type timer interface{ Stop() bool }

// Writer is a buffering io.Writer that is safe for concurrent use. Create
// it with New and Close it when done.
type Writer struct {
	out       io.Writer
	interval  time.Duration
	max       int
	afterFunc func(time.Duration, func()) timer

	flushMu sync.Mutex // held while writing to out: flushes stay in order

	mu     sync.Mutex // guards the fields below
	buf    []byte
	spare  []byte
	armed  timer // pending flush, nil when buf is empty
	closed bool
	err    error // first error from out
}

// New returns a Writer that writes to out.
func New(out io.Writer, o Options) *Writer {
	w := &Writer{out: out, interval: o.Interval, max: o.MaxBuffer, afterFunc: o.afterFunc}
	if w.interval <= 0 {
		w.interval = DefaultInterval
	}
	if w.max <= 0 {
		w.max = DefaultMaxBuffer
	}
	if w.afterFunc == nil {
		w.afterFunc = func(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }
	}
	w.buf = make([]byte, 0, w.max)
	w.spare = make([]byte, 0, w.max)
	return w
}

// Write appends p to the buffer; it never returns an error of out's (those
// are reported by Flush and Close). After Close it writes p through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.flushMu.Lock()
		defer w.flushMu.Unlock()
		return w.out.Write(p)
	}
	if len(w.buf) == 0 && w.armed == nil {
		w.armed = w.afterFunc(w.interval, func() { _ = w.Flush() })
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= w.max
	w.mu.Unlock()
	if full {
		_ = w.Flush()
	}
	return len(p), nil
}

// Flush writes out what is buffered and returns the first error out has
// returned so far.
func (w *Writer) Flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	data := w.buf
	w.buf = w.spare[:0]
	if w.armed != nil {
		w.armed.Stop()
		w.armed = nil
	}
	w.mu.Unlock()

	var err error
	if len(data) > 0 {
		_, err = w.out.Write(data)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if cap(data) <= 4*w.max { // keep the buffer unless one huge record grew it
		w.spare = data[:0]
	} else {
		w.spare = make([]byte, 0, w.max)
	}
	if err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// Close writes out what is buffered; later Writes go straight to out.
func (w *Writer) Close() error {
	err := w.Flush()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	// A Write between the Flush and closed = true is still buffered.
	if err2 := w.Flush(); err == nil {
		err = err2
	}
	return err
}

// FlushAt wraps h so that a record at level or above (a warning, an error)
// is written out at once, together with everything buffered before it:
// those are rare, and an operator or a test watching the output should not
// wait for them. The per-request info records stay batched.
func FlushAt(h slog.Handler, w *Writer, level slog.Level) slog.Handler {
	return &flushHandler{Handler: h, w: w, level: level}
}

type flushHandler struct {
	slog.Handler
	w     *Writer
	level slog.Level
}

func (f *flushHandler) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if r.Level >= f.level {
		_ = f.w.Flush()
	}
	return err
}

func (f *flushHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &flushHandler{Handler: f.Handler.WithAttrs(as), w: f.w, level: f.level}
}

func (f *flushHandler) WithGroup(name string) slog.Handler {
	return &flushHandler{Handler: f.Handler.WithGroup(name), w: f.w, level: f.level}
}
