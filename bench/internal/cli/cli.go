// Package cli is the main of the benchmark commands (bench, bench/baseline,
// bench/seqbench): each one's work is a run(ctx, args, stdout, stderr)
// function, as in cmd/authserver, and Main is all that is left to main.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main calls run with the command's arguments and a context that ends on
// SIGINT or SIGTERM (so that run still stops its servers and removes its
// temporary files when the harness or a CI runner stops it), and exits 1
// with "name: error" on stderr if run fails.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
