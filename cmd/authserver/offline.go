package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authserver-dev/authserver/internal/app"
	"github.com/authserver-dev/authserver/internal/signer"
)

// offlineFlags are the flags token, signature and verify share: the
// secret (--app-secret, --app-secret-file) and --app-key.
type offlineFlags struct {
	fs                 *flag.FlagSet
	secret, secretFile string
	appKey             *string
}

// newOfflineFlags registers the shared flags of the offline command name;
// --app-key defaults to appKey.
func newOfflineFlags(name, appKey, appKeyUsage string, stderr io.Writer) *offlineFlags {
	o := &offlineFlags{fs: newFlags(name, stderr)}
	o.fs.StringVar(&o.secret, "app-secret", "", "application secret, Base64 (visible in ps: prefer --app-secret-file or AUTHSERVER_APP_SECRET)")
	o.fs.StringVar(&o.secretFile, "app-secret-file", "", "file holding the application secret (one per line; the first signs)")
	o.appKey = o.fs.String("app-key", appKey, appKeyUsage)
	return o
}

// inputs parses args and resolves the secrets and the user id
// (ParseUserID: the server's rule, checked here where the id enters). Token
// and signature take flags only; main prints nothing for a usage error, so
// the reason for refusing an argument is printed here.
func (o *offlineFlags) inputs(args []string, user *string, getenv func(string) string, stderr io.Writer) ([]signer.Secret, signer.UserID, error) {
	if err := parse(o.fs, args); err != nil {
		return nil, signer.UserID{}, err
	}
	if o.fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q (every input is a flag, and flags go before arguments)", o.fs.Arg(0))
		fmt.Fprintf(stderr, "%s: %v\n", o.fs.Name(), err)
		return nil, signer.UserID{}, usageError{err}
	}
	secrets, err := app.OfflineSecrets(o.secret, o.secretFile, getenv)
	if err != nil {
		return nil, signer.UserID{}, err
	}
	uid, err := signer.ParseUserID(*user)
	return secrets, uid, cliInputError(err)
}

func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o := newOfflineFlags("token", getenv("AUTHSERVER_APP_KEY"), "application key", stderr)
	fs := o.fs
	user := fs.String("user", "", "user id (1-255 characters of A-Z a-z 0-9 - _ =)")
	ttl := fs.Duration("ttl", signer.DefaultTokenTTL, "token lifetime (at least 1m)")
	instTTL := fs.Duration("instance-ttl", 0, "registration lifetime, sinch:rtc:instance:exp (0 = none, else at least 48h)")
	nonce := fs.String("nonce", "", "nonce (default: random UUIDv4); pins the token for tests")
	issuedAt := fs.String("issued-at", "", "issue time, RFC 3339 (default: now); pins the token for tests")
	secrets, uid, err := o.inputs(args, user, getenv, stderr)
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
		ApplicationKey: *o.appKey, Secret: secrets[0], UserID: uid,
		TTL: *ttl, InstanceTTL: *instTTL, Nonce: *nonce, IssuedAt: at,
	})
	if err != nil {
		return cliInputError(err)
	}
	_, err = fmt.Fprintln(stdout, tok.JWT)
	return err
}

func runSignature(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o := newOfflineFlags("signature", getenv("AUTHSERVER_APP_KEY"), "application key", stderr)
	user := o.fs.String("user", "", "user id")
	seq := o.fs.Uint64("sequence", 0, "sequence number (at least 1)")
	secrets, uid, err := o.inputs(args, user, getenv, stderr)
	if err != nil {
		return err
	}
	sig, err := signer.LegacySignature(*o.appKey, secrets[0], uid, *seq)
	if err != nil {
		return cliInputError(err)
	}
	_, err = fmt.Fprintln(stdout, sig)
	return err
}

func runVerify(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o := newOfflineFlags("verify", "", "require this application key in iss/sub", stderr)
	fs := o.fs
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: authserver verify --app-secret S [--app-key K] TOKEN")
		return usageError{errors.New("want exactly one TOKEN argument")}
	}
	secrets, err := app.OfflineSecrets(o.secret, o.secretFile, getenv)
	if err != nil {
		return err
	}
	v, err := signer.Verify(strings.TrimSpace(fs.Arg(0)), signer.VerifyParams{ApplicationKey: *o.appKey, Secrets: secrets, Now: time.Now()})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"header": v.Header, "claims": v.Claims})
}

// inputFlags names the flag of each signer.InputError field.
var inputFlags = map[string]string{
	"userId": "--user", "applicationKey": "--app-key", "ttlSeconds": "--ttl",
	"instanceTtlSeconds": "--instance-ttl", "nonce": "--nonce", "issuedAt": "--issued-at",
	"sequence": "--sequence", "applicationSecret": "--app-secret",
}

// cliInputError renders a signer.InputError with the flag's name.
func cliInputError(err error) error {
	var ie *signer.InputError
	if !errors.As(err, &ie) {
		return err
	}
	name, ok := inputFlags[ie.Field]
	if !ok {
		name = ie.Field
	}
	return fmt.Errorf("%s: %s", name, strings.ReplaceAll(ie.Reason, " seconds (48 h)", "s (48h)"))
}
