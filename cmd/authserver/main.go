// Command authserver issues Sinch registration credentials. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/authserver-dev/authserver/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], config.EnvOf(os.Environ()), os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errHelp) {
		return
	}
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		// Several problems (a config check): one line each.
		for _, e := range problems(err) {
			fmt.Fprintln(os.Stderr, "authserver: "+oneLine(e.Error()))
		}
		os.Exit(1)
	}
}
