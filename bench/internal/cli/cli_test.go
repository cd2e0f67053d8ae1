package cli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary play a command: with CLI_TEST_CHILD set it
// runs Main with a run that waits for its context.
func TestMain(m *testing.M) {
	if os.Getenv("CLI_TEST_CHILD") != "" {
		Main("child", func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
			io.WriteString(stdout, "running\n")
			<-ctx.Done()
			return ctx.Err()
		})
		return
	}
	os.Exit(m.Run())
}

// TestMainStopsOnSIGTERM: SIGTERM (what a harness, docker stop or a CI
// runner sends) ends run's context, so run returns and cleans up, and Main
// reports the error and exits 1 rather than dying of the signal.
func TestMainStopsOnSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "CLI_TEST_CHILD=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Signal only once run is running: the handler is installed by then.
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "running\n" {
			t.Fatalf("child said %q, %v", line, err)
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%v: the child did not exit", sig)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%v: exit %v, want status 1 (run returned), not death by the signal", sig, err)
		}
		if got := stderr.String(); got != "child: context canceled\n" {
			t.Errorf("%v: stderr %q", sig, got)
		}
	}
}
