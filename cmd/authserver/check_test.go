package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authserver-dev/authserver/internal/auth/oidctest"
	"github.com/authserver-dev/authserver/internal/pgtest"
)

func runCheckCLI(t *testing.T, env map[string]string, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"check"}, args...), envOf(env), &out, &errOut)
	return out.String(), err
}

// TestCheckCommand: check validates what serve would load and prints a
// summary, or every problem on its own line, without serving.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	f := newServeFixture(t)
	idp := oidctest.New(t)

	t.Run("good, offline", func(t *testing.T) {
		out, err := runCheckCLI(t, nil, "--config", f.write(t, f.config()), "--offline")
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		for _, want := range []string{"config OK: " + filepath.Join(f.dir, "authserver.yaml"), "applications", serveAppKey + " (default, 1 secret(s), token_ttl 5m0s, legacy signatures)",
			"api keys", "backend (*)", "identity providers  none", "sequence store      embedded, " + filepath.Join(f.dir, "data", "sequences.db"), "tls                 authserver dev (localhost, 127.0.0.1, ::1), expires "} {
			if !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, f.apiKey) || strings.Contains(out, readSecret(t, f.secretFile)) {
			t.Error("the summary shows a key or secret")
		}
	})
	t.Run("good, online, Postgres and a provider", func(t *testing.T) {
		dbURL := pgtest.DB(t)
		path := f.write(t, f.config()+"database_url: "+dbURL+"\nidentity_providers:\n  - issuer: "+idp.Issuer()+"\n    audience: my-app\n")
		out, err := runCheckCLI(t, nil, "--config", path)
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		for _, want := range []string{idp.Issuer() + " (audience my-app); keys loaded", "postgres, reachable, schema at version 0, 1 migration(s) pending"} {
			if !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, dbURL) {
			t.Error("the summary shows the database URL")
		}
	})
	t.Run("placeholders", func(t *testing.T) {
		// What deploy/authserver.yaml ships, unfilled.
		cfg := f.config(serveAppKey, "REPLACE-WITH-YOUR-SINCH-APPLICATION-KEY")
		_, err := runCheckCLI(t, nil, "--config", f.write(t, cfg), "--offline")
		oneLineErr(t, err, `config: applications[0].key: "REPLACE-WITH-YOUR-SINCH-APPLICATION-KEY" is a placeholder`)
		sum := sha256.Sum256([]byte(f.apiKey))
		cfg = f.config(hex.EncodeToString(sum[:]), strings.Repeat("0", 64))
		_, err = runCheckCLI(t, nil, "--config", f.write(t, cfg), "--offline")
		oneLineErr(t, err, "config: api_keys[0].sha256: is one digit repeated")
	})
	t.Run("broken: every problem on its own line", func(t *testing.T) {
		cfg := f.config("    token_ttl: 5m", "    secrt_file: x\n    token_ttl: 600", "log:", "log:\n  levl: info")
		_, err := runCheckCLI(t, map[string]string{"AUTHSERVER_SEQUENCE_MAXBATCH": "5", "AUTHSERVER_LOG_LEVEL": ""}, "--config", f.write(t, cfg), "--offline")
		if err == nil {
			t.Fatal("check passed a broken config")
		}
		got := problems(err)
		want := []string{
			`config: applications[0]: unknown key "secrt_file" (did you mean "secret_file"?), line 11`,
			`config: applications[0].token_ttl: "600" has no unit: write it like 600s or 10m, line 12`,
			`config: log: unknown key "levl" (did you mean "level"?), line 18`,
			`config: AUTHSERVER_LOG_LEVEL: is set but empty; unset it to keep the file's or the default value`,
			`config: AUTHSERVER_SEQUENCE_MAXBATCH: unknown variable (did you mean AUTHSERVER_SEQUENCE_MAX_BATCH?); unset it, or see the README's list`,
		}
		if len(got) != len(want) {
			t.Fatalf("%d problems, want %d:\n%v", len(got), len(want), err)
		}
		for i := range want {
			if got[i].Error() != want[i] {
				t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], want[i])
			}
		}
	})
	t.Run("broken TLS pair", func(t *testing.T) {
		other := newServeFixture(t)
		_, err := runCheckCLI(t, nil, "--config", f.write(t, f.config(f.keyFile, other.keyFile)), "--offline")
		oneLineErr(t, err, "config: tls: loading", "private key does not match public key")
	})
	t.Run("unreachable provider and database", func(t *testing.T) {
		down := oidctest.New(t)
		down.Close()
		cluster, dbURL := pgtest.New(t)
		if err := cluster.Stop(); err != nil {
			t.Fatal(err)
		}
		path := f.write(t, f.config()+"database_url: "+dbURL+"\nidentity_providers:\n  - issuer: "+down.Issuer()+"\n    audience: my-app\n")
		_, err := runCheckCLI(t, nil, "--config", path)
		if err == nil {
			t.Fatal("check passed with the provider and the database down")
		}
		got := problems(err)
		if len(got) != 2 || !strings.HasPrefix(got[0].Error(), "config: identity_providers: no keys loaded yet for identity provider(s) "+down.Issuer()) ||
			!strings.HasPrefix(got[1].Error(), "database_url: cannot reach the database") {
			t.Errorf("problems:\n%v", err)
		}
		// --offline does not contact them.
		if _, err := runCheckCLI(t, nil, "--config", path, "--offline"); err != nil {
			t.Errorf("check --offline: %v", err)
		}
	})
	// A 12-factor deployment: everything from the environment, no file.
	t.Run("environment only", func(t *testing.T) {
		sum := sha256.Sum256([]byte(f.apiKey))
		env := map[string]string{
			"AUTHSERVER_APP_KEY": serveAppKey, "AUTHSERVER_APP_SECRET_FILE": f.secretFile,
			"AUTHSERVER_API_KEYS":      "backend:" + hex.EncodeToString(sum[:]) + ":*",
			"AUTHSERVER_IDP_ISSUER":    idp.Issuer(),
			"AUTHSERVER_IDP_AUDIENCE":  "my-app",
			"AUTHSERVER_TLS_CERT_FILE": f.certFile, "AUTHSERVER_TLS_KEY_FILE": f.keyFile,
			"AUTHSERVER_DATA_DIR": filepath.Join(f.dir, "data"),
		}
		out, err := runCheckCLI(t, env)
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		for _, want := range []string{"config OK: the environment", "backend (*)", idp.Issuer() + " (audience my-app); keys loaded"} {
			if !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("warning for a key that is not a UUID", func(t *testing.T) {
		out, err := runCheckCLI(t, nil, "--config", f.write(t, f.config(serveAppKey, "my-sinch-app")), "--offline")
		if err != nil || !strings.Contains(out, `warning: applications[0].key: "my-sinch-app" is not a UUID`) {
			t.Errorf("check: %v\n%s", err, out)
		}
	})
	t.Run("no config", func(t *testing.T) {
		_, err := runCheckCLI(t, nil)
		oneLineErr(t, err, "no configuration")
	})
}

// TestMigrateCommand: migrate needs only database_url (no TLS files, no
// Sinch secret), says what it applied and the version, or that there was
// nothing to do; migrate status prints the version.
func TestMigrateCommand(t *testing.T) {
	dbURL := pgtest.DB(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "authserver.yaml")
	if err := os.WriteFile(path, []byte("database_url: "+dbURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	migrate := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append([]string{"migrate", "--config", path}, args...), envOf(nil), &out, &errOut); err != nil {
			t.Fatalf("migrate %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	if out := migrate("status"); out != "at version 0; 1 migration(s) pending (latest 1): run authserver migrate\n" {
		t.Errorf("status before: %q", out)
	}
	out := migrate()
	if lines := strings.Split(out, "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "applied 001_sequences.sql (version 1) in ") || lines[1] != "now at version 1" {
		t.Errorf("first migrate: %q", out)
	}
	if out := migrate(); out != "already at version 1\n" {
		t.Errorf("second migrate: %q", out)
	}
	if out := migrate("status"); out != "at version 1 (latest)\n" {
		t.Errorf("status after: %q", out)
	}
	// From the environment alone.
	var o, e bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, envOf(map[string]string{"AUTHSERVER_DATABASE_URL": dbURL}), &o, &e); err != nil || o.String() != "already at version 1\n" {
		t.Errorf("migrate with AUTHSERVER_DATABASE_URL: %v %q", err, o.String())
	}
	err := run(context.Background(), []string{"migrate"}, envOf(nil), &o, &e)
	oneLineErr(t, err, "config: database_url: is not set")
}

// TestBinaryPrintsEachProblemOnALine: main prints every problem check finds,
// one line each, and exits 1.
func TestBinaryPrintsEachProblemOnALine(t *testing.T) {
	f := newServeFixture(t)
	path := f.write(t, f.config("admin_listen:", "admin_listn:", "log:", "log:\n  levl: info"))
	code, stdout, stderr := runBinary(t, "check", "--config", path, "--offline")
	want := "authserver: config: admin_listn: unknown key (did you mean \"admin_listen\"?), line 2\n" +
		"authserver: config: log: unknown key \"levl\" (did you mean \"level\"?), line 17\n"
	if code != 1 || stderr != want || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, stdout, stderr, want)
	}
}
