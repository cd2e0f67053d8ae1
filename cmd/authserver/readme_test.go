package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/config"
)

// readmeBlocks returns the README's ```sh blocks, continuation lines joined.
func readmeBlocks(t *testing.T) [][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		var cmds []string
		for _, line := range strings.Split(strings.ReplaceAll(m[1], "\\\n", " "), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				cmds = append(cmds, line)
			}
		}
		blocks = append(blocks, cmds)
	}
	return blocks
}

// The addresses the README's quick start uses (dev's defaults).
const readmePublic, readmeAdmin = "127.0.0.1:8443", "127.0.0.1:9090"

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// goRunArgs turns "go run ./cmd/authserver verb args... # comment" into args.
func goRunArgs(line string) []string {
	line, _, _ = strings.Cut(line, "#")
	return strings.Fields(strings.TrimPrefix(line, "go run ./cmd/authserver"))
}

// TestREADMEQuickStart runs the README's quick start: its first commands are
// dev and the test command, and every curl line of the next block, the
// verify line and the pinned token line work against a real `authserver dev`
// from a fresh directory. The README's ports (8443, 9090) are rewritten to
// free ones, and held meanwhile when they are free, so that the test passes
// while a developer runs the quick start's own `dev`: the README runs
// `go test ./...` next to it.
func TestREADMEQuickStart(t *testing.T) {
	blocks := readmeBlocks(t)
	if len(blocks) < 4 {
		t.Fatalf("README has %d sh blocks, want the quick start, curl, verify and token ones", len(blocks))
	}
	if got := blocks[0]; len(got) < 2 || !strings.HasPrefix(got[0], "go run ./cmd/authserver dev") || !strings.HasPrefix(got[1], "go test ./...") {
		t.Fatalf("README's first commands are %q, want `go run ./cmd/authserver dev` then `go test ./...`", got)
	}
	curlPath, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("the README's examples use curl: install it (apt-get install curl)")
	}
	// Stand in for the developer's own `dev` on the README's ports (if
	// another process has them, that does as well).
	for _, addr := range []string{readmePublic, readmeAdmin} {
		if ln, err := net.Listen("tcp", addr); err == nil {
			t.Cleanup(func() { ln.Close() })
		}
	}
	pub, adm := freeAddr(t), freeAddr(t)
	ports := strings.NewReplacer(readmePublic, pub, readmeAdmin, adm)

	t.Chdir(t.TempDir())
	rc := startRun(t, append(goRunArgs(blocks[0][0]), "--listen", pub, "--admin-listen", adm), envOf(nil))
	rc.waitOutput(t, rc.stdout, regexp.MustCompile("authserver dev is running"))
	t.Cleanup(func() {
		if err := rc.stop(t); err != nil {
			t.Errorf("dev: %v", err)
		}
	})

	var token string
	sequences := 0
	// dev has the clock floor on: the first sequence is the time of the
	// request in microseconds (what the README's example answer shows).
	floor := uint64(time.Now().UnixMicro())
	for _, cmd := range blocks[1] {
		if !strings.HasPrefix(cmd, "curl ") {
			t.Fatalf("quick start block holds %q; this test runs curl lines only", cmd)
		}
		if !strings.Contains(cmd, readmePublic) && !strings.Contains(cmd, readmeAdmin) {
			t.Fatalf("%s: names neither %s nor %s, the ports this test rewrites", cmd, readmePublic, readmeAdmin)
		}
		c := exec.Command("bash", "-o", "pipefail", "-c", strings.Replace(ports.Replace(cmd), "curl", curlPath+" -sS --fail-with-body", 1))
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		switch {
		case strings.Contains(cmd, "/v1/registration-tokens"):
			var r struct{ Token, UserID string }
			if err := json.Unmarshal(out, &r); err != nil || r.Token == "" || r.UserID != "alice" {
				t.Fatalf("%s: %s (%v)", cmd, out, err)
			}
			token = r.Token
		case strings.Contains(cmd, "/v1/registration-signatures"):
			var r struct {
				Sequence  uint64
				Signature string
			}
			if err := json.Unmarshal(out, &r); err != nil || r.Sequence < floor || r.Sequence >= 1<<53 || r.Signature == "" {
				t.Fatalf("%s: %s (%v), want a sequence of at least %d (the clock floor) and below 2^53", cmd, out, err, floor)
			}
			sequences++
		case strings.Contains(cmd, "/metrics"):
			if !strings.Contains(string(out), `kind="jwt"`) || !strings.Contains(string(out), `kind="signature"`) {
				t.Fatalf("%s: %s", cmd, out)
			}
		case len(out) == 0:
			t.Fatalf("%s: empty answer", cmd)
		}
	}
	if token == "" || sequences != 1 {
		t.Fatal("the quick start lost its token or signature example")
	}

	verify := goRunArgs(blocks[2][0])
	if verify[len(verify)-1] != "<token>" {
		t.Fatalf("verify line %q no longer ends in <token>", blocks[2][0])
	}
	verify[len(verify)-1] = token
	var vout, verr bytes.Buffer
	if err := run(context.Background(), verify, config.EnvOf(os.Environ()), &vout, &verr); err != nil {
		t.Fatalf("%s: %v\n%s", blocks[2][0], err, verr.String())
	}
	if !strings.Contains(vout.String(), `"sub"`) {
		t.Fatalf("verify printed %q", vout.String())
	}

	// The pinned token of the Commands section: the same line twice gives
	// the same token (one line) each time.
	var pinned string
	for _, b := range blocks {
		if len(b) == 1 && strings.HasPrefix(b[0], "go run ./cmd/authserver token ") {
			var out1, out2, e bytes.Buffer
			if err := run(context.Background(), goRunArgs(b[0]), config.EnvOf(os.Environ()), &out1, &e); err != nil {
				t.Fatalf("%s: %v\n%s", b[0], err, e.String())
			}
			if err := run(context.Background(), goRunArgs(b[0]), config.EnvOf(os.Environ()), &out2, &e); err != nil {
				t.Fatal(err)
			}
			if out1.String() != out2.String() || strings.Count(out1.String(), "\n") != 1 {
				t.Fatalf("pinned token line printed %q then %q", out1.String(), out2.String())
			}
			pinned = strings.TrimSpace(out1.String())
		}
	}
	if pinned == "" {
		t.Fatal("README lost its pinned `token` example")
	}
}
