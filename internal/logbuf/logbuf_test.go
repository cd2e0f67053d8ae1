package logbuf

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is an io.Writer that records each Write and is safe to read
// concurrently.
type syncBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuf) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// fakeTimers records the timers a Writer arms and fires them on demand.
type fakeTimers struct {
	mu    sync.Mutex
	armed []*fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool { t.stopped = true; return true }

func (ft *fakeTimers) afterFunc(d time.Duration, f func()) timer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	t := &fakeTimer{d: d, f: f}
	ft.armed = append(ft.armed, t)
	return t
}

func (ft *fakeTimers) last(t *testing.T) *fakeTimer {
	t.Helper()
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if len(ft.armed) == 0 {
		t.Fatal("no flush timer was armed")
	}
	return ft.armed[len(ft.armed)-1]
}

// TestWriterBatches: records wait in memory and go out in one write.
func TestWriterBatches(t *testing.T) {
	out := &syncBuf{}
	ft := &fakeTimers{}
	w := New(out, Options{afterFunc: ft.afterFunc})
	for i := range 100 {
		fmt.Fprintf(w, "record %d\n", i)
	}
	if out.Writes() != 0 {
		t.Fatalf("%d writes before any flush; want the records buffered", out.Writes())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.Writes() != 1 || strings.Count(out.String(), "\n") != 100 {
		t.Fatalf("after Flush: %d writes, %d lines; want 1 write of 100 lines", out.Writes(), strings.Count(out.String(), "\n"))
	}
}

// TestWriterCrashBound: the first buffered record arms a flush after
// Interval, and that flush writes it out: a crash loses at most the records
// of the last Interval.
func TestWriterCrashBound(t *testing.T) {
	out := &syncBuf{}
	ft := &fakeTimers{}
	w := New(out, Options{afterFunc: ft.afterFunc})
	fmt.Fprintln(w, "first")
	tm := ft.last(t)
	if tm.d != DefaultInterval || DefaultInterval != 50*time.Millisecond {
		t.Fatalf("flush armed after %v; the README documents 50 ms", tm.d)
	}
	fmt.Fprintln(w, "second")
	if len(ft.armed) != 1 {
		t.Fatalf("%d timers armed for one batch; want 1 (the bound counts from the first record)", len(ft.armed))
	}
	tm.f()
	if got := out.String(); got != "first\nsecond\n" {
		t.Fatalf("after the timer fired: %q", got)
	}
	fmt.Fprintln(w, "third")
	if len(ft.armed) != 2 {
		t.Fatalf("the next record after a flush armed %d timers in all; want a new one", len(ft.armed))
	}
	ft.last(t).f()
	if got := out.String(); got != "first\nsecond\nthird\n" {
		t.Fatalf("after the second timer fired: %q", got)
	}
}

// TestWriterRealTimer: with the real clock a record reaches out without a
// Flush (the bound above, on time.AfterFunc).
func TestWriterRealTimer(t *testing.T) {
	out := &syncBuf{}
	w := New(out, Options{Interval: time.Millisecond})
	defer w.Close()
	fmt.Fprintln(w, "hello")
	deadline := time.Now().Add(10 * time.Second)
	for out.String() != "hello\n" {
		if time.Now().After(deadline) {
			t.Fatal("the record was not written 10 s after a 1 ms interval")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriterMaxBuffer: MaxBuffer waiting bytes are written at once, without
// waiting for the timer.
func TestWriterMaxBuffer(t *testing.T) {
	out := &syncBuf{}
	ft := &fakeTimers{}
	w := New(out, Options{MaxBuffer: 100, afterFunc: ft.afterFunc})
	line := strings.Repeat("x", 49) + "\n"
	fmt.Fprint(w, line)
	if out.Writes() != 0 {
		t.Fatal("50 of 100 bytes written at once")
	}
	fmt.Fprint(w, line)
	if out.String() != line+line {
		t.Fatalf("100 of 100 bytes not written at once: %q", out.String())
	}
}

// TestWriterClose: Close writes everything out (no record lost on a
// graceful shutdown) and later writes go straight through.
func TestWriterClose(t *testing.T) {
	out := &syncBuf{}
	ft := &fakeTimers{}
	w := New(out, Options{afterFunc: ft.afterFunc})
	fmt.Fprintln(w, "a")
	fmt.Fprintln(w, "b")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\nb\n" {
		t.Fatalf("after Close: %q", out.String())
	}
	fmt.Fprintln(w, "late")
	if out.String() != "a\nb\nlate\n" {
		t.Fatalf("a write after Close: %q", out.String())
	}
}

// TestWriterConcurrent: records written concurrently come out whole, each
// once, across many flushes.
func TestWriterConcurrent(t *testing.T) {
	out := &syncBuf{}
	w := New(out, Options{Interval: time.Millisecond, MaxBuffer: 512})
	var wg sync.WaitGroup
	const writers, each = 8, 500
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				fmt.Fprintf(w, "{\"g\":%d,\"i\":%d,\"pad\":%q}\n", g, i, strings.Repeat("p", i%37))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(line, "{\"g\":%d,\"i\":%d,", &g, &i); err != nil || !strings.HasSuffix(line, "\"}") {
			t.Fatalf("a broken line: %q", line)
		}
		k := fmt.Sprint(g, "/", i)
		if seen[k] {
			t.Fatalf("line %s twice", k)
		}
		seen[k] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d lines; want %d", len(seen), writers*each)
	}
	if out.Writes() >= writers*each {
		t.Errorf("%d writes for %d records: nothing was batched", out.Writes(), writers*each)
	}
}

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestWriterError: out's error is reported by Flush and Close.
func TestWriterError(t *testing.T) {
	ft := &fakeTimers{}
	w := New(failing{}, Options{afterFunc: ft.afterFunc})
	if _, err := fmt.Fprintln(w, "x"); err != nil {
		t.Fatalf("Write: %v (errors belong to Flush)", err)
	}
	if err := w.Flush(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Flush: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close forgot the error")
	}
}

// BenchmarkJSONLog is two slog JSON records per iteration (as per request)
// to a file, unbuffered (the old wiring) and through a Writer, in the same
// run.
func BenchmarkJSONLog(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchLog(b, false) })
	b.Run("logbuf", func(b *testing.B) { benchLog(b, true) })
}

// TestFlushAt: a warning goes out at once with the info records before
// it; info records alone wait.
func TestFlushAt(t *testing.T) {
	out := &syncBuf{}
	ft := &fakeTimers{}
	w := New(out, Options{afterFunc: ft.afterFunc})
	logger := slog.New(FlushAt(slog.NewTextHandler(w, nil), w, slog.LevelWarn)).With("k", "v")
	logger.Info("first")
	if out.Writes() != 0 {
		t.Fatal("an info record was written at once")
	}
	logger.Warn("careful")
	got := out.String()
	if !strings.Contains(got, "msg=first") || !strings.Contains(got, "msg=careful") || strings.Index(got, "first") > strings.Index(got, "careful") {
		t.Fatalf("after a warning: %q", got)
	}
}
