package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/config"
)

// Set by the linker: -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

// usageError is a command-line mistake; the usage was already printed.
type usageError struct{ error }

const usage = `usage: authserver <command> [flags]

commands:
  serve        run the server (--config FILE)
  dev          run a zero-config demo server on https://127.0.0.1:8443
  migrate      apply Postgres migrations and exit (--config FILE); migrate status
  check        validate a config as serve would, print a summary (--config FILE [--offline])
  token        print one registration JWT (offline)
  signature    print one legacy signature (offline)
  verify       check a registration JWT and print its header and claims
  healthcheck  exit 0 if the server is ready (--url URL, --check NAME)
  version      print version information

Run "authserver <command> -h" for a command's flags.
`

// run is the whole program; main only supplies the process's context,
// arguments, environment and output streams, so tests can call it directly.
//
// env is the environment (config.EnvOf(os.Environ()) in main): a map, so that
// config can refuse AUTHSERVER_* variables it does not know.
func run(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, env, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, env, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, env, stdout, stderr)
	case "check":
		return runCheck(ctx, rest, env, stdout, stderr)
	case "token":
		return runToken(rest, env.Get, stdout, stderr)
	case "signature":
		return runSignature(rest, env.Get, stdout, stderr)
	case "verify":
		return runVerify(rest, env.Get, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "authserver: unknown command %q\n\n", cmd)
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}

// newFlags makes a FlagSet that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("authserver "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags; -h is not an error, other mistakes are usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	return nil
}

var errHelp = usageError{errors.New("help requested")}

// versionString is the output of `authserver version`.
func versionString() string {
	ver, rev := app.VersionInfo(version, commit)
	return fmt.Sprintf("authserver %s (commit %s, %s)", ver, rev, runtime.Version())
}

// problems splits an error made by errors.Join into its parts.
func problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// oneLine folds an error onto one line for the CLI.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
