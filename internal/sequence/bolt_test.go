package sequence_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/internal/sequence"
)

// holdBoltEnv makes the test binary, run as a helper process, open the
// store file it names and hold it until its stdin closes.
const holdBoltEnv = "SEQUENCE_TEST_HOLD_BOLT"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdBoltEnv); path != "" {
		os.Exit(holdBolt(path))
	}
	pgtest.Main(m)
}

func holdBolt(path string) int {
	s, err := sequence.OpenBolt(path, sequence.BoltOptions{})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer s.Close()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func TestBoltConcurrent(t *testing.T) {
	t.Parallel()
	var log batchLog
	s := mustBolt(t, "", sequence.BoltOptions{Observer: log.observer()})
	const total = 10_000
	calls := hammer(t, []sequence.Store{s}, "app", 64, total, 50)
	values := checkCalls(t, calls)
	for _, c := range calls {
		if c.err != nil {
			t.Fatalf("call failed on a healthy store: %v", c.err)
		}
	}
	if len(values) != 51 {
		t.Errorf("%d users served, want 51", len(values))
	}
	// The store's own view of the final values: one more call each.
	checkNoGaps(t, values, func(u string) uint64 { return mustNext(t, s, "app", u) - 1 })

	batches, served, largest, errs, names := log.summary()
	t.Logf("%d calls in %d commits, largest %d", served, batches, largest)
	if served != total+len(values) || errs != 0 || len(names) != 1 || names["bolt"] != batches {
		t.Errorf("observer saw %d calls, %d errors, stores %v", served, errs, names)
	}
	if largest < 2 {
		t.Errorf("64 concurrent callers never shared a commit (largest batch %d)", largest)
	}
}

func TestBoltDurable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "seq.db")
	s, err := sequence.OpenBolt(path, sequence.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 3; want++ {
		if got := mustNext(t, s, "app", "u"); got != want {
			t.Fatalf("Next = %d, want %d", got, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustBolt(t, path, sequence.BoltOptions{})
	if got := mustNext(t, s, "app", "u"); got != 4 {
		t.Errorf("after reopening, Next = %d, want 4", got)
	}
}

func TestBoltInUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "seq.db")
	want := fmt.Sprintf("sequence store %s is in use by another process", path)

	// Another process holds the file.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdBoltEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper process: %q, %v", line, err)
	}

	start := time.Now()
	_, err = sequence.OpenBolt(path, sequence.BoltOptions{})
	if err == nil || err.Error() != want {
		t.Errorf("OpenBolt on a file held by another process: %v, want %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("OpenBolt took %v to give up", d)
	}

	// Once that process has exited, the file is free.
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
	s := mustBolt(t, path, sequence.BoltOptions{})
	mustNext(t, s, "app", "u")

	// bbolt's flock also keeps a second open in this process out.
	if _, err := sequence.OpenBolt(path, sequence.BoltOptions{}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second OpenBolt in one process: %v", err)
	}
}

func TestBoltOpenError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing-dir", "seq.db")
	if _, err := sequence.OpenBolt(path, sequence.BoltOptions{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenBolt in a missing directory: %v, want an error naming the file", err)
	}
	notBolt := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(notBolt, []byte(strings.Repeat("not a bolt file ", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sequence.OpenBolt(notBolt, sequence.BoltOptions{}); err == nil {
		t.Error("OpenBolt on a file that is not a bbolt database succeeded")
	}
}

func TestBoltCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	// A long batch delay keeps the call waiting for its commit.
	s := mustBolt(t, "", sequence.BoltOptions{MaxBatchDelay: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Next(ctx, "app", "u")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, sequence.ErrUnavailable) {
		t.Errorf("Next past its deadline: %v", err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("Next took %v to notice its 20ms deadline", d)
	}
	// The abandoned call still commits 1 for nobody.
	if got := mustNext(t, s, "app", "u"); got != 2 {
		t.Errorf("value after an abandoned call = %d, want 2", got)
	}
}
