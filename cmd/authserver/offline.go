package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/authserver-dev/authserver/internal/signer"
)

// secretFlags are the three ways to hand a secret to an offline command.
type secretFlags struct {
	inline, file string
}

func (s *secretFlags) register(fsName string, fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&s.inline, "app-secret", "", "application secret, Base64 (visible in ps: prefer --app-secret-file or AUTHSERVER_APP_SECRET)")
	fs.StringVar(&s.file, "app-secret-file", "", "file holding the application secret (one per line; the first signs)")
}

// resolve returns the secrets: the flag, the file, or AUTHSERVER_APP_SECRET.
func (s *secretFlags) resolve(getenv func(string) string) ([]signer.Secret, error) {
	var text, from string
	switch {
	case s.inline != "" && s.file != "":
		return nil, errors.New("give only one of --app-secret and --app-secret-file")
	case s.inline != "":
		text, from = s.inline, "--app-secret"
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return nil, fmt.Errorf("--app-secret-file: %w", err)
		}
		text, from = string(b), "--app-secret-file"
	case getenv("AUTHSERVER_APP_SECRET") != "":
		text, from = getenv("AUTHSERVER_APP_SECRET"), "AUTHSERVER_APP_SECRET"
	default:
		return nil, errors.New("no application secret: use --app-secret, --app-secret-file or AUTHSERVER_APP_SECRET")
	}
	out, err := signer.ParseSecrets(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return out, nil
}

func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("token", stderr)
	var sf secretFlags
	sf.register("token", fs)
	appKey := fs.String("app-key", getenv("AUTHSERVER_APP_KEY"), "application key")
	user := fs.String("user", "", "user id (1-255 characters of A-Z a-z 0-9 - _ =)")
	ttl := fs.Duration("ttl", signer.DefaultTokenTTL, "token lifetime (at least 1m)")
	instTTL := fs.Duration("instance-ttl", 0, "registration lifetime, sinch:rtc:instance:exp (0 = none, else at least 48h)")
	nonce := fs.String("nonce", "", "nonce (default: random UUIDv4); pins the token for tests")
	issuedAt := fs.String("issued-at", "", "issue time, RFC 3339 (default: now); pins the token for tests")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	secrets, err := sf.resolve(getenv)
	if err != nil {
		return err
	}
	var at time.Time
	if *issuedAt != "" {
		if at, err = time.Parse(time.RFC3339, *issuedAt); err != nil {
			return fmt.Errorf("--issued-at: %q is not an RFC 3339 time like 2026-11-22T23:59:59Z", *issuedAt)
		}
	}
	tok, err := signer.New(time.Now, rand.Reader).IssueToken(signer.TokenParams{
		ApplicationKey: *appKey, Secret: secrets[0], UserID: *user,
		TTL: *ttl, InstanceTTL: *instTTL, Nonce: *nonce, IssuedAt: at,
	})
	if err != nil {
		return cliInputError(err)
	}
	_, err = fmt.Fprintln(stdout, tok.JWT)
	return err
}

func runSignature(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("signature", stderr)
	var sf secretFlags
	sf.register("signature", fs)
	appKey := fs.String("app-key", getenv("AUTHSERVER_APP_KEY"), "application key")
	user := fs.String("user", "", "user id")
	seq := fs.Uint64("sequence", 0, "sequence number (at least 1)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	secrets, err := sf.resolve(getenv)
	if err != nil {
		return err
	}
	sig, err := signer.LegacySignature(*appKey, secrets[0], *user, *seq)
	if err != nil {
		return cliInputError(err)
	}
	_, err = fmt.Fprintln(stdout, sig)
	return err
}

func runVerify(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	var sf secretFlags
	sf.register("verify", fs)
	appKey := fs.String("app-key", "", "require this application key in iss/sub")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: authserver verify --app-secret S [--app-key K] TOKEN")
		return usageError{errors.New("want exactly one TOKEN argument")}
	}
	secrets, err := sf.resolve(getenv)
	if err != nil {
		return err
	}
	v, err := signer.Verify(strings.TrimSpace(fs.Arg(0)), signer.VerifyParams{ApplicationKey: *appKey, Secrets: secrets, Now: time.Now()})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"header": v.Header, "claims": v.Claims})
}

// noArgs refuses positional arguments, which token and signature do not
// take. main prints nothing for a usage error, so the reason is printed here.
func noArgs(fs *flag.FlagSet, stderr io.Writer) error {
	if fs.NArg() == 0 {
		return nil
	}
	err := fmt.Errorf("unexpected argument %q (every input is a flag, and flags go before arguments)", fs.Arg(0))
	fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
	return usageError{err}
}

// cliInputError renders a signer.InputError with the flag's name.
func cliInputError(err error) error {
	var ie *signer.InputError
	if !errors.As(err, &ie) {
		return err
	}
	flagName := map[string]string{
		"userId": "--user", "applicationKey": "--app-key", "ttlSeconds": "--ttl",
		"instanceTtlSeconds": "--instance-ttl", "nonce": "--nonce", "issuedAt": "--issued-at",
		"sequence": "--sequence", "applicationSecret": "--app-secret",
	}[ie.Field]
	if flagName == "" {
		flagName = ie.Field
	}
	reason := ie.Reason
	reason = strings.ReplaceAll(reason, " seconds (48 h)", "s (48h)")
	return fmt.Errorf("%s: %s", flagName, reason)
}
