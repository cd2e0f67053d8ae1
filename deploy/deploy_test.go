// Package deploy checks the deployment files against the code: the
// Dockerfile, docker-compose.yml, deploy/authserver.yaml, the Prometheus
// config and alerts, and the Grafana dashboard. Nothing here needs Docker:
// the binary is built with the Dockerfile's own build command, every command
// the files run is run for real (with -h), and every metric any query names
// must appear in a scrape of a real server configured from
// deploy/authserver.yaml (against a throwaway PostgreSQL).
package deploy

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"

	"github.com/authserver-dev/authserver/internal/config"
	"github.com/authserver-dev/authserver/internal/pgtest"
	"github.com/authserver-dev/authserver/internal/servertest"
	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// root is the repository root, relative to this package's directory.
const root = ".."

func repoPath(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readRepo(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---------------------------------------------------------------------------
// Dockerfile

type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// parseDockerfile joins continuation lines and drops comments; it is enough
// for the plain Dockerfile this repository keeps (no heredocs, default escape).
func parseDockerfile(src string) ([]instruction, error) {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(trimmed)
		text := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	if cur.Len() > 0 {
		return nil, errors.New("Dockerfile ends inside a continued line")
	}
	return out, nil
}

// shellWords splits a shell command line on blanks, honouring quotes. It
// knows no expansions: ${VAR} stays as written.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated %c in %q", c, s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// execForm parses an exec-form (JSON array) CMD, ENTRYPOINT or HEALTHCHECK CMD.
func execForm(t *testing.T, ins instruction, s string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("Dockerfile:%d: %s must use the exec form [\"...\"] (the image has no shell): %v", ins.line, ins.cmd, err)
	}
	return v
}

type dockerfile struct {
	ins    []instruction
	stages [][]instruction // instructions after each FROM, FROM included
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	d, err := readDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readDockerfile() (dockerfile, error) {
	src, err := os.ReadFile(repoPath("Dockerfile"))
	if err != nil {
		return dockerfile{}, err
	}
	ins, err := parseDockerfile(string(src))
	if err != nil {
		return dockerfile{}, err
	}
	d := dockerfile{ins: ins}
	for _, in := range ins {
		if in.cmd == "FROM" {
			d.stages = append(d.stages, nil)
		}
		if len(d.stages) > 0 {
			d.stages[len(d.stages)-1] = append(d.stages[len(d.stages)-1], in)
		}
	}
	return d, nil
}

// goBuild returns the go build command of the Dockerfile's build stage:
// its environment assignments and its words from "go" on.
func (d dockerfile) goBuild(t *testing.T) (env, argv []string) {
	t.Helper()
	env, argv, err := d.buildCommand()
	if err != nil {
		t.Fatal(err)
	}
	return env, argv
}

func (d dockerfile) buildCommand() (env, argv []string, err error) {
	for _, in := range d.ins {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		for _, part := range strings.Split(in.args, "&&") {
			if !strings.Contains(part, "go build") {
				continue
			}
			words, err := shellWords(part)
			if err != nil {
				return nil, nil, fmt.Errorf("Dockerfile:%d: %v", in.line, err)
			}
			for len(words) > 0 && strings.HasPrefix(words[0], "--mount=") {
				words = words[1:]
			}
			for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
				env = append(env, words[0])
				words = words[1:]
			}
			return env, words, nil
		}
	}
	return nil, nil, errors.New("Dockerfile: no RUN with go build")
}

// ---------------------------------------------------------------------------
// The binary, built once with the Dockerfile's own command.

const (
	testVersion = "v0.0.0-deploytest"
	testCommit  = "c0ffee-deploytest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/authserver exactly as the Dockerfile's build stage does,
// with VERSION and COMMIT set to test values.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		var d dockerfile
		var env, argv []string
		if d, binErr = readDockerfile(); binErr != nil {
			return
		}
		if env, argv, binErr = d.buildCommand(); binErr != nil {
			return
		}
		binDir, binErr = os.MkdirTemp("", "authserver-deploy-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "authserver")
		vars := map[string]string{"VERSION": testVersion, "COMMIT": testCommit}
		for i, w := range argv {
			argv[i] = os.Expand(w, func(k string) string { return vars[k] })
			if i > 0 && argv[i-1] == "-o" {
				argv[i] = binPath
			}
		}
		if len(argv) < 2 || argv[0] != "go" || argv[1] != "build" {
			binErr = fmt.Errorf("Dockerfile: unexpected build command %q", argv)
			return
		}
		cmd := exec.Command("go", argv[1:]...)
		cmd.Dir = root // the Dockerfile builds in a copy of the repository root
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("building authserver with the Dockerfile's command: %v", binErr)
	}
	return binPath
}

// run runs the binary and returns its combined output and exit code.
func run(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code, err := servertest.Run(binary(t), env, 30*time.Second, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout + stderr, code
}

// checkCommand runs `authserver ARGS... -h`: the subcommand must exist and
// accept every flag given (flag parsing stops at -h, before any work).
func checkCommand(t *testing.T, where string, args []string) string {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no authserver command", where)
		return ""
	}
	out, code := run(t, nil, append(slices.Clone(args), "-h")...)
	if code != 0 || !strings.Contains(out, "authserver "+args[0]) {
		t.Errorf("%s: `authserver %s -h` exited %d; is %q a command and are the flags right?\n%s", where, strings.Join(args, " "), code, args[0], out)
	}
	return out
}

// ---------------------------------------------------------------------------
// Ports and environment names of the configuration.

func port(t *testing.T, where, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, hostport, err)
	}
	return n
}

// deployConfig is deploy/authserver.yaml decoded (strictly, as serve does),
// secrets not resolved.
func deployConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Defaults()
	if err := config.Decode(bytes.NewReader(readRepo(t, "deploy/authserver.yaml")), &cfg); err != nil {
		t.Fatalf("deploy/authserver.yaml: %v", err)
	}
	return cfg
}

// allowedEnv is every AUTHSERVER_* variable the program reads: the config's
// env table, the single-application shortcut (config.ApplyEnv) and the
// variables the commands' flags document (env AUTHSERVER_CONFIG).
func allowedEnv(t *testing.T) map[string]bool {
	t.Helper()
	ok := map[string]bool{"AUTHSERVER_APP_KEY": true, "AUTHSERVER_APP_SECRET": true, "AUTHSERVER_APP_SECRET_FILE": true}
	for _, e := range config.EnvNames() {
		ok[e[0]] = true
	}
	out, _ := run(t, nil, "serve", "-h")
	for _, m := range regexp.MustCompile(`env (AUTHSERVER_[A-Z0-9_]+)`).FindAllStringSubmatch(out, -1) {
		ok[m[1]] = true
	}
	if !ok["AUTHSERVER_CONFIG"] {
		t.Errorf("`serve -h` no longer documents env AUTHSERVER_CONFIG")
	}
	return ok
}

func checkEnvName(t *testing.T, allowed map[string]bool, where, name string) {
	t.Helper()
	if strings.HasPrefix(name, "AUTHSERVER_") && !allowed[name] {
		t.Errorf("%s: %s is not an environment variable authserver reads (see internal/config/env.go)", where, name)
	}
}

// ---------------------------------------------------------------------------

func TestDockerfile(t *testing.T) {
	d := loadDockerfile(t)
	defaults := config.Defaults()
	deploy := deployConfig(t)
	allowed := allowedEnv(t)

	if len(d.stages) != 2 {
		t.Fatalf("Dockerfile: want 2 stages (build, final), have %d", len(d.stages))
	}
	build, final := d.stages[0], d.stages[1]
	if f := strings.Fields(build[0].args); len(f) != 3 || !strings.HasPrefix(f[0], "golang:1.26") || !strings.EqualFold(f[1], "AS") || f[2] != "build" {
		t.Errorf("Dockerfile:%d: build stage should be `FROM golang:1.26 AS build`, is %q", build[0].line, build[0].args)
	}
	if final[0].args != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("Dockerfile:%d: final stage should be distroless static nonroot, is %q", final[0].line, final[0].args)
	}

	// The build command really builds (binary does it), with the version
	// and commit the ARGs give.
	env, argv := d.goBuild(t)
	if !slices.Contains(env, "CGO_ENABLED=0") || !slices.Contains(argv, "-trimpath") {
		t.Errorf("Dockerfile: go build should run with CGO_ENABLED=0 and -trimpath: %q %q", env, argv)
	}
	args := map[string]bool{}
	for _, in := range build {
		if in.cmd == "ARG" {
			name, _, _ := strings.Cut(in.args, "=")
			args[name] = true
		}
	}
	for _, a := range []string{"VERSION", "COMMIT"} {
		if !args[a] {
			t.Errorf("Dockerfile: the build stage has no ARG %s", a)
		}
	}
	out, code := run(t, nil, "version")
	if code != 0 || !strings.Contains(out, testVersion) || !strings.Contains(out, testCommit) {
		t.Errorf("the Dockerfile's -ldflags do not set main.version/main.commit: `authserver version` printed %q", out)
	}

	var user, entrypoint []string
	var cmd, health []string
	exposed := map[int]bool{}
	var copiedBinary bool
	for _, in := range d.ins {
		switch in.cmd {
		case "COPY":
			words := strings.Fields(in.args)
			var from bool
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				from = from || strings.HasPrefix(words[0], "--from=")
				words = words[1:]
			}
			if len(words) < 2 {
				t.Errorf("Dockerfile:%d: COPY needs a source and a destination", in.line)
				continue
			}
			if from {
				copiedBinary = copiedBinary || words[len(words)-1] == "/authserver"
				continue
			}
			for _, src := range words[:len(words)-1] {
				if !exists(repoPath(src)) {
					t.Errorf("Dockerfile:%d: COPY source %s does not exist", in.line, src)
				}
			}
		case "USER":
			user = append(user, in.args)
		case "EXPOSE":
			for _, p := range strings.Fields(in.args) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err != nil {
					t.Errorf("Dockerfile:%d: EXPOSE %q", in.line, p)
				}
				exposed[n] = true
			}
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				name, _, _ := strings.Cut(kv, "=")
				checkEnvName(t, allowed, fmt.Sprintf("Dockerfile:%d", in.line), name)
			}
		case "ENTRYPOINT":
			entrypoint = execForm(t, in, in.args)
		case "CMD":
			cmd = execForm(t, in, in.args)
		case "HEALTHCHECK":
			words := strings.Fields(in.args)
			var timeout time.Duration
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				if v, ok := strings.CutPrefix(words[0], "--timeout="); ok {
					timeout, _ = time.ParseDuration(v)
				}
				words = words[1:]
			}
			if len(words) == 0 || words[0] != "CMD" {
				t.Errorf("Dockerfile:%d: HEALTHCHECK should be CMD [...]", in.line)
				continue
			}
			health = execForm(t, in, strings.TrimSpace(strings.TrimPrefix(strings.Join(words, " "), "CMD")))
			if timeout < 4*time.Second {
				t.Errorf("Dockerfile:%d: HEALTHCHECK --timeout should exceed healthcheck's own 3s timeout", in.line)
			}
		}
	}
	if !copiedBinary {
		t.Errorf("Dockerfile: the final stage does not COPY --from=build the binary to /authserver")
	}
	if len(user) == 0 || !strings.HasPrefix(user[len(user)-1], "nonroot") {
		t.Errorf("Dockerfile: the image must run as USER nonroot, has %q", user)
	}
	wantPorts := map[int]bool{port(t, "listen default", defaults.Listen): true, port(t, "admin_listen default", defaults.AdminListen): true}
	if fmt.Sprint(exposed) != fmt.Sprint(wantPorts) {
		t.Errorf("Dockerfile: EXPOSE %v, but the config's default ports are %v", exposed, wantPorts)
	}
	if port(t, "deploy listen", deploy.Listen) != port(t, "listen default", defaults.Listen) ||
		port(t, "deploy admin_listen", deploy.AdminListen) != port(t, "admin_listen default", defaults.AdminListen) {
		t.Errorf("deploy/authserver.yaml listens on %s and %s, not the default ports the image EXPOSEs", deploy.Listen, deploy.AdminListen)
	}
	if !slices.Equal(entrypoint, []string{"/authserver"}) {
		t.Errorf("Dockerfile: ENTRYPOINT should be [\"/authserver\"], is %q", entrypoint)
	}
	checkCommand(t, "Dockerfile CMD", cmd)
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Errorf("Dockerfile: CMD should run serve, is %q", cmd)
	}

	// HEALTHCHECK runs healthcheck; with no --url it asks the default URL,
	// which must be the admin port on loopback (it runs inside the container).
	if len(health) < 2 || health[0] != "/authserver" {
		t.Fatalf("Dockerfile: HEALTHCHECK should run /authserver healthcheck, runs %q", health)
	}
	help := checkCommand(t, "Dockerfile HEALTHCHECK", health[1:])
	healthURL := ""
	for i, a := range health {
		if a == "--url" || a == "-url" {
			healthURL = health[i+1]
		} else if v, ok := strings.CutPrefix(a, "--url="); ok {
			healthURL = v
		}
	}
	if healthURL == "" {
		m := regexp.MustCompile(`default "(http://[^"]+)"`).FindStringSubmatch(help)
		if m == nil {
			t.Fatalf("cannot find healthcheck's default URL in its -h output:\n%s", help)
		}
		healthURL = m[1]
	}
	u, err := url.Parse(healthURL)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		t.Errorf("HEALTHCHECK URL %s is not on loopback", healthURL)
	}
	if port(t, "healthcheck URL", u.Host) != port(t, "deploy admin_listen", deploy.AdminListen) || u.Path != "/readyz" {
		t.Errorf("HEALTHCHECK asks %s, but deploy/authserver.yaml's admin listener is %s (/readyz)", healthURL, deploy.AdminListen)
	}
}

// TestDockerignore checks the build context keeps what `go build` needs
// (every Go and embedded file of the binary's packages) and leaves out the
// secrets.
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(string(readRepo(t, ".dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	ignored := func(p string) bool {
		ig := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = path.Clean(strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/"))
			if dockerignoreMatch(pat, p) {
				ig = !neg
			}
		}
		return ig
	}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`, "../cmd/authserver").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		parts := strings.Split(line, "|")
		rel, err := filepath.Rel(abs, parts[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, list := range parts[1:] {
			for _, f := range strings.Split(list, ",") {
				if f != "" {
					need = append(need, filepath.ToSlash(filepath.Join(rel, f)))
				}
			}
		}
	}
	if len(need) < 10 {
		t.Fatalf("go list found only %v", need)
	}
	for _, f := range need {
		if ignored(f) {
			t.Errorf(".dockerignore leaves %s out of the build context, but the build needs it", f)
		}
	}
	for _, f := range []string{"deploy/secrets/sinch_app_secret", "deploy/secrets/tls.key", ".git/config", "data/sequences.db"} {
		if !ignored(f) {
			t.Errorf(".dockerignore should keep %s out of the build context", f)
		}
	}
}

// dockerignoreMatch reports whether pattern (Docker's syntax: path.Match
// plus ** for any number of directories) matches p or a directory above it.
func dockerignoreMatch(pattern, p string) bool {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				i++
				if i+1 < len(pattern) && pattern[i+1] == '/' {
					i++
					re.WriteString("(.*/)?")
				} else {
					re.WriteString(".*")
				}
			} else {
				re.WriteString("[^/]*")
			}
		case '?':
			re.WriteString("[^/]")
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("(/.*)?$")
	return regexp.MustCompile(re.String()).MatchString(p)
}

// ---------------------------------------------------------------------------
// docker-compose.yml

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Secrets     []string          `yaml:"secrets"`
	Ports       []string          `yaml:"ports"`
	DependsOn   yaml.Node         `yaml:"depends_on"`
	Healthcheck struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
}

type composeBuild struct {
	Context string            `yaml:"context"`
	Args    map[string]string `yaml:"args"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(readRepo(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// dependsOn returns the service's depends_on as name -> condition.
func (s composeService) dependsOn(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch s.DependsOn.Kind {
	case 0:
	case yaml.SequenceNode:
		var names []string
		if err := s.DependsOn.Decode(&names); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			out[n] = "service_started"
		}
	default:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := s.DependsOn.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for n, v := range m {
			out[n] = v.Condition
		}
	}
	return out
}

// mounts maps each bind mount's container path to its host path, relative
// to the repository root.
func (s composeService) mounts() map[string]string {
	out := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && (strings.HasPrefix(parts[0], "./") || strings.HasPrefix(parts[0], "/")) {
			out[parts[1]] = parts[0]
		}
	}
	return out
}

// hostFile maps a path inside a service's container to the repository file
// a bind mount puts there, or "".
func (s composeService) hostFile(p string) string {
	for target, src := range s.mounts() {
		if p == target {
			return src
		}
		if rel, ok := strings.CutPrefix(p, strings.TrimSuffix(target, "/")+"/"); ok {
			return "./" + path.Join(src, rel)
		}
	}
	return ""
}

// flagValue returns the value of --name (or -name, --name=v) in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	deploy := deployConfig(t)
	allowed := allowedEnv(t)

	for _, name := range []string{"db", "authserver-migrate", "authserver", "prometheus"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml: no service %q", name)
		}
	}
	dockerArgs := map[string]bool{}
	imageEnv := map[string]string{}
	for _, in := range d.ins {
		switch in.cmd {
		case "ARG":
			name, _, _ := strings.Cut(in.args, "=")
			dockerArgs[name] = true
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				imageEnv[k] = v
			}
		}
	}

	// Files: every bind mount source and every secret file (or the .example
	// telling how to make it) exists; every secret and volume used is declared.
	for name, s := range c.Services {
		where := "docker-compose.yml: " + name
		for _, src := range s.mounts() {
			if !exists(repoPath(src)) {
				t.Errorf("%s: mounts %s, which does not exist", where, src)
			}
		}
		for _, v := range s.Volumes {
			if vol, _, _ := strings.Cut(v, ":"); !strings.HasPrefix(vol, ".") && !strings.HasPrefix(vol, "/") {
				if _, ok := c.Volumes[vol]; !ok {
					t.Errorf("%s: volume %q is not declared under volumes:", where, vol)
				}
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("%s: secret %q is not declared under secrets:", where, sec)
			}
		}
		for k := range s.Environment {
			checkEnvName(t, allowed, where+": environment", k)
		}
		if s.Build != nil {
			if !exists(filepath.Join(repoPath(s.Build.Context), "Dockerfile")) {
				t.Errorf("%s: build context %s has no Dockerfile", where, s.Build.Context)
			}
			for a := range s.Build.Args {
				if !dockerArgs[a] {
					t.Errorf("%s: build arg %s is not an ARG of the Dockerfile", where, a)
				}
			}
		}
		for dep := range s.dependsOn(t) {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s: depends on unknown service %q", where, dep)
			}
		}
	}
	for name, sec := range c.Secrets {
		if !exists(repoPath(sec.File)) && !exists(repoPath(sec.File+".example")) {
			t.Errorf("docker-compose.yml: secret %s: neither %s nor %s.example (telling how to create it) exists", name, sec.File, sec.File)
		}
	}

	// The authserver services: built from this Dockerfile, running real
	// subcommands with a config file that is mounted where they read it.
	for _, name := range []string{"authserver-migrate", "authserver"} {
		s := c.Services[name]
		where := "docker-compose.yml: " + name
		if s.Build == nil || path.Clean(s.Build.Context) != "." {
			t.Errorf("%s: should build the repository's Dockerfile (build: context: .)", where)
		}
		cmd := s.Command
		if len(cmd) == 0 {
			cmd = []string{"serve"} // the image's CMD
		}
		checkCommand(t, where+" command", cmd)
		cfgPath := flagValue(cmd, "config")
		if cfgPath == "" {
			cfgPath = s.Environment["AUTHSERVER_CONFIG"]
		}
		if cfgPath == "" {
			cfgPath = imageEnv["AUTHSERVER_CONFIG"]
		}
		if src := s.hostFile(cfgPath); src != "./deploy/authserver.yaml" {
			t.Errorf("%s: reads its config from %q, where deploy/authserver.yaml is not mounted (mounts %v)", where, cfgPath, s.mounts())
		}
		if !s.Healthcheck.Disable && len(s.Healthcheck.Test) > 0 {
			test := s.Healthcheck.Test
			if test[0] != "CMD" || len(test) < 3 || test[1] != "/authserver" {
				t.Errorf("%s: healthcheck should be [CMD, /authserver, healthcheck, ...], is %q", where, test)
			} else {
				checkCommand(t, where+" healthcheck", test[2:])
			}
		}
		// Every /run/secrets/NAME the config names is a secret of the service.
		var secretPaths []string
		secretPaths = append(secretPaths, deploy.TLS.CertFile, deploy.TLS.KeyFile)
		for _, a := range deploy.Applications {
			secretPaths = append(secretPaths, a.SecretFile)
		}
		if u, err := url.Parse(deploy.DatabaseURL); err == nil && u.Query().Get("passfile") != "" {
			secretPaths = append(secretPaths, u.Query().Get("passfile"))
		}
		for _, p := range secretPaths {
			if p == "" {
				continue
			}
			sec, ok := strings.CutPrefix(p, "/run/secrets/")
			if !ok || !slices.Contains(s.Secrets, sec) {
				t.Errorf("%s: deploy/authserver.yaml reads %s, which is not one of the service's secrets %v", where, p, s.Secrets)
			}
		}
	}
	as := c.Services["authserver"]
	deps := as.dependsOn(t)
	if deps["db"] != "service_healthy" || deps["authserver-migrate"] != "service_completed_successfully" {
		t.Errorf("docker-compose.yml: authserver should wait for db (service_healthy) and authserver-migrate (service_completed_successfully), has %v", deps)
	}
	if mc := c.Services["authserver-migrate"].Command; len(mc) == 0 || mc[0] != "migrate" {
		t.Errorf("docker-compose.yml: authserver-migrate should run migrate, runs %q", mc)
	}
	if deps := c.Services["authserver-migrate"].dependsOn(t); deps["db"] != "service_healthy" {
		t.Errorf("docker-compose.yml: authserver-migrate should wait for db (service_healthy), has %v", deps)
	}

	// Ports: what compose publishes of authserver is its public listener.
	listenPort := port(t, "deploy listen", deploy.Listen)
	for _, p := range as.Ports {
		parts := strings.Split(p, ":")
		n, err := strconv.Atoi(strings.TrimSuffix(parts[len(parts)-1], "/tcp"))
		if err != nil || n != listenPort {
			t.Errorf("docker-compose.yml: authserver publishes container port %q, but deploy/authserver.yaml listens on %d", p, listenPort)
		}
	}
	if len(as.Ports) == 0 {
		t.Errorf("docker-compose.yml: authserver publishes no port")
	}

	// Postgres: the image, the readiness check, and a database_url that
	// points at this service with its user and database, the password
	// coming from the pgpass file the example describes.
	db := c.Services["db"]
	if db.Image != "postgres:15" {
		t.Errorf("docker-compose.yml: db image is %q, want postgres:15", db.Image)
	}
	if !slices.Contains(db.Healthcheck.Test, "pg_isready") && !strings.Contains(strings.Join(db.Healthcheck.Test, " "), "pg_isready") {
		t.Errorf("docker-compose.yml: db healthcheck should use pg_isready, is %q", db.Healthcheck.Test)
	}
	if pf := db.Environment["POSTGRES_PASSWORD_FILE"]; !slices.Contains(db.Secrets, strings.TrimPrefix(pf, "/run/secrets/")) {
		t.Errorf("docker-compose.yml: db POSTGRES_PASSWORD_FILE %q is not one of its secrets %v", pf, db.Secrets)
	}
	u, err := url.Parse(deploy.DatabaseURL)
	if err != nil {
		t.Fatalf("deploy/authserver.yaml: database_url: %v", err)
	}
	if u.Hostname() != "db" || u.User.Username() != db.Environment["POSTGRES_USER"] || strings.TrimPrefix(u.Path, "/") != db.Environment["POSTGRES_DB"] {
		t.Errorf("deploy/authserver.yaml: database_url %s does not match the db service (host db, user %s, database %s)", deploy.DatabaseURL, db.Environment["POSTGRES_USER"], db.Environment["POSTGRES_DB"])
	}
	if _, hasPW := u.User.Password(); hasPW {
		t.Errorf("deploy/authserver.yaml: database_url should not hold the password; it comes from the pgpass secret")
	}
	// The pgpass line the example file prints is found by pgx for this URL.
	example := string(readRepo(t, strings.TrimPrefix(c.Secrets["pgpass"].File, "./")+".example"))
	m := regexp.MustCompile(`printf '([^'%]*%s)\\n'`).FindStringSubmatch(example)
	if m == nil {
		t.Fatalf("pgpass.example: no printf line for the pgpass file")
	}
	passfile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(passfile, []byte(fmt.Sprintf(m[1], "s3cret")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("passfile", passfile)
	u.RawQuery = q.Encode()
	pc, err := pgconn.ParseConfig(u.String())
	if err != nil {
		t.Fatalf("database_url: %v", err)
	}
	if pc.Password != "s3cret" {
		t.Errorf("pgx does not take the password from the pgpass line %q for database_url %s", m[1], deploy.DatabaseURL)
	}

	// Prometheus reads prometheus.yml from the mounted deploy/prometheus.
	prom := c.Services["prometheus"]
	cfgFile := ""
	for _, a := range prom.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			cfgFile = v
		}
	}
	if src := prom.hostFile(cfgFile); src != "./deploy/prometheus/prometheus.yml" {
		t.Errorf("docker-compose.yml: prometheus reads %q, which is not deploy/prometheus/prometheus.yml (mounts %v)", cfgFile, prom.mounts())
	}
}

// ---------------------------------------------------------------------------
// Prometheus config, alerts, dashboard

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheusConfig(t *testing.T) {
	var pc promConfig
	if err := yaml.Unmarshal(readRepo(t, "deploy/prometheus/prometheus.yml"), &pc); err != nil {
		t.Fatal(err)
	}
	deploy := deployConfig(t)
	c := loadCompose(t)
	if !slices.Contains(pc.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml does not load alerts.yml: rule_files %v", pc.RuleFiles)
	}
	for _, f := range pc.RuleFiles {
		if !exists(repoPath(path.Join("deploy/prometheus", f))) {
			t.Errorf("prometheus.yml: rule file %s does not exist next to it", f)
		}
	}
	adminPort := port(t, "deploy admin_listen", deploy.AdminListen)
	found := false
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != "authserver" {
			continue
		}
		found = true
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("prometheus.yml: authserver metrics_path %q, the admin listener serves /metrics", sc.MetricsPath)
		}
		n := 0
		for _, sd := range sc.DNSSDConfigs {
			for _, name := range sd.Names {
				n++
				if _, ok := c.Services[name]; !ok {
					t.Errorf("prometheus.yml: DNS name %q is not a compose service", name)
				}
				if sd.Port != adminPort {
					t.Errorf("prometheus.yml: scrapes %s:%d, but admin_listen is %s", name, sd.Port, deploy.AdminListen)
				}
			}
		}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				n++
				host, _, _ := net.SplitHostPort(tg)
				if _, ok := c.Services[host]; !ok {
					t.Errorf("prometheus.yml: target %q is not a compose service", tg)
				}
				if port(t, "prometheus target", tg) != adminPort {
					t.Errorf("prometheus.yml: scrapes %s, but admin_listen is %s", tg, deploy.AdminListen)
				}
			}
		}
		if n == 0 {
			t.Errorf("prometheus.yml: job authserver has no targets")
		}
	}
	if !found {
		t.Errorf("prometheus.yml: no job authserver")
	}
}

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// alertExprs returns the alerts' expressions by alert name.
func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	var ar alertRules
	if err := yaml.Unmarshal(readRepo(t, "deploy/prometheus/alerts.yml"), &ar); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range ar.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			if name == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("alerts.yml: group %s: a rule without a name or an expr", g.Name)
			}
			if r.Alert != "" && (r.Labels["severity"] == "" || r.Annotations["summary"] == "") {
				t.Errorf("alerts.yml: %s needs a severity label and a summary", r.Alert)
			}
			if _, dup := out["alerts.yml "+name]; dup {
				t.Errorf("alerts.yml: %s is defined twice", name)
			}
			out["alerts.yml "+name] = r.Expr
		}
	}
	want := []string{"authserver_http_requests_total", "authserver_sequence_store_errors_total", "authserver_http_request_duration_seconds_bucket",
		"authserver_tls_certificate_expiry_timestamp_seconds", "up", "authserver_rate_limited_total", "authserver_dependency_up"}
	all := strings.Join(mapValues(out), "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("alerts.yml: no alert uses %s", w)
		}
	}
	return out
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

type grafanaPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Expr       string `json:"expr"`
		RefID      string `json:"refId"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// dashboardExprs checks the dashboard's structure and returns its
// PromQL expressions by panel, and the metric names its variables query.
func dashboardExprs(t *testing.T) (map[string]string, []string) {
	t.Helper()
	var dash struct {
		Title         string         `json:"title"`
		UID           string         `json:"uid"`
		SchemaVersion int            `json:"schemaVersion"`
		Panels        []grafanaPanel `json:"panels"`
		Templating    struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Query      json.RawMessage `json:"query"`
				Definition string          `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(bytes.NewReader(readRepo(t, "deploy/grafana-dashboard.json")))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion < 36 || len(dash.Panels) == 0 {
		t.Errorf("grafana-dashboard.json: needs a title, a uid, schemaVersion >= 36 and panels")
	}
	hasDS := false
	var varMetrics []string
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" && string(v.Query) == `"prometheus"` {
			hasDS = true
		}
		if m := regexp.MustCompile(`label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)`).FindStringSubmatch(v.Definition); m != nil {
			varMetrics = append(varMetrics, m[1])
		}
	}
	if !hasDS {
		t.Errorf("grafana-dashboard.json: no datasource variable named datasource of type prometheus")
	}
	exprs := map[string]string{}
	ids := map[int]string{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var rects []rect
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("grafana-dashboard.json: panel %q has id %d (also %q)", p.Title, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("grafana-dashboard.json: panel %q has a bad gridPos %+v", p.Title, p.GridPos)
			}
			for _, r := range rects {
				if p.GridPos.X < r.x+r.w && r.x < p.GridPos.X+p.GridPos.W && p.GridPos.Y < r.y+r.h && r.y < p.GridPos.Y+p.GridPos.H {
					t.Errorf("grafana-dashboard.json: panels %q and %q overlap", p.Title, r.title)
				}
			}
			rects = append(rects, rect{p.Title, p.GridPos.X, p.GridPos.Y, p.GridPos.W, p.GridPos.H})
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if !strings.Contains(string(p.Datasource), `"${datasource}"`) {
				t.Errorf("grafana-dashboard.json: panel %q does not use the ${datasource} variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("grafana-dashboard.json: panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" || tg.RefID == "" {
					t.Errorf("grafana-dashboard.json: panel %q has a target without expr or refId", p.Title)
				}
				exprs[fmt.Sprintf("dashboard %q %s", p.Title, tg.RefID)] = tg.Expr
			}
		}
	}
	walk(dash.Panels)
	all := strings.Join(mapValues(exprs), "\n")
	for _, w := range []string{"authserver_http_requests_total", "authserver_http_request_duration_seconds_bucket", "authserver_credentials_issued_total",
		"authserver_credentials_refused_total", "authserver_sequence_store_duration_seconds_bucket", "authserver_sequence_batch_size",
		"authserver_auth_failures_total", "authserver_rate_limited_total", "authserver_tls_certificate_expiry_timestamp_seconds", "authserver_build_info"} {
		if !strings.Contains(all, w) {
			t.Errorf("grafana-dashboard.json: no panel shows %s", w)
		}
	}
	return exprs, varMetrics
}

func TestAlertsAndDashboardStructure(t *testing.T) {
	alertExprs(t)
	dashboardExprs(t)
}

// TestEveryAlertHasAPromtoolTest: each alert of alerts.yml is expected to
// fire in at least one case of alerts_test.yml (which deploy/check.sh runs
// with promtool test rules), so a rule that can never fire is caught.
func TestEveryAlertHasAPromtoolTest(t *testing.T) {
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(readRepo(t, "deploy/prometheus/alerts_test.yml"), &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			fires[a.Alertname] = fires[a.Alertname] || len(a.ExpAlerts) > 0
		}
	}
	for name := range alertExprs(t) {
		if alert := strings.TrimPrefix(name, "alerts.yml "); !fires[alert] {
			t.Errorf("alerts_test.yml: no test expects %s to fire", alert)
		}
	}
}

// ---------------------------------------------------------------------------
// PromQL metric names

var (
	reQuoted   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	reGrafVar  = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)
	reMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	reRange    = regexp.MustCompile(`\[[^\]]*\]`)
	reGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	reToken    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*|[0-9][0-9A-Za-z_.]*`)
	// A selector with its matchers, before quoted strings are removed.
	reSelector = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}`)
	reMatcher  = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true, "Inf": true, "NaN": true}
)

// queryRefs is what one PromQL expression refers to.
type queryRefs struct {
	metrics  []string            // metric names, as written
	matchers map[string][]string // metric -> label names in its matchers
	grouping []string            // label names in by/without/on/ignoring/group_x clauses
}

// promqlRefs extracts metric names (identifiers that are not functions,
// keywords, numbers or labels) and label names from a PromQL expression,
// which may hold Grafana variables.
func promqlRefs(expr string) queryRefs {
	r := queryRefs{matchers: map[string][]string{}}
	expr = reGrafVar.ReplaceAllString(expr, "1")
	for _, m := range reSelector.FindAllStringSubmatch(expr, -1) {
		for _, lm := range reMatcher.FindAllStringSubmatch(reQuoted.ReplaceAllString(m[2], `""`), -1) {
			r.matchers[m[1]] = append(r.matchers[m[1]], lm[1])
		}
	}
	expr = reQuoted.ReplaceAllString(expr, `""`)
	expr = reMatchers.ReplaceAllString(expr, " ")
	expr = reRange.ReplaceAllString(expr, " ")
	for _, m := range reGrouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				r.grouping = append(r.grouping, l)
			}
		}
	}
	expr = reGrouping.ReplaceAllString(expr, " ")
	for _, loc := range reToken.FindAllStringIndex(expr, -1) {
		tok := expr[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || keywords[tok] {
			continue
		}
		if rest := strings.TrimLeft(expr[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or aggregation
		}
		r.metrics = append(r.metrics, tok)
	}
	return r
}

// family is one metric family of a scrape: its type and label names.
type family struct {
	typ    string
	labels map[string]bool
}

// parseExposition reads the Prometheus text format: TYPE lines and the
// label names of samples.
func parseExposition(text string) map[string]*family {
	fams := map[string]*family{}
	reLabel := regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)="`)
	var cur *family
	var curName string
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			curName = f[2]
			cur = &family{typ: f[3], labels: map[string]bool{}}
			fams[curName] = cur
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") || cur == nil {
			continue
		}
		if i := strings.IndexByte(line, '{'); i >= 0 && strings.HasPrefix(line[:i], curName) {
			for _, m := range reLabel.FindAllStringSubmatch(line[i:], -1) {
				cur.labels[m[1]] = true
			}
		}
	}
	return fams
}

// lookup finds the family a query's metric name belongs to: itself, or a
// histogram or summary for the _bucket, _sum and _count series.
func lookup(fams map[string]*family, name string) *family {
	if f, ok := fams[name]; ok {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := fams[base]; ok && (f.typ == "histogram" || f.typ == "summary") {
				return f
			}
		}
	}
	return nil
}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// missingRefs lists every metric and label name an expression uses that the
// scrape does not have. `up` is Prometheus's own.
func missingRefs(fams map[string]*family, expr string) []string {
	var missing []string
	r := promqlRefs(expr)
	labels := map[string]bool{}
	for _, n := range r.metrics {
		if n == "up" {
			continue
		}
		f := lookup(fams, n)
		if f == nil {
			missing = append(missing, "metric "+n)
			continue
		}
		for l := range f.labels {
			labels[l] = true
		}
	}
	for metric, ls := range r.matchers {
		f := lookup(fams, metric)
		for _, l := range ls {
			if targetLabels[l] || l == "__name__" {
				continue
			}
			if f == nil && metric != "up" || f != nil && !f.labels[l] {
				missing = append(missing, fmt.Sprintf("label %s of %s", l, metric))
			}
		}
	}
	for _, l := range r.grouping {
		if !targetLabels[l] && !labels[l] {
			missing = append(missing, "label "+l)
		}
	}
	return missing
}

func TestPromQLRefs(t *testing.T) {
	r := promqlRefs(`histogram_quantile(0.99, sum by (route, le) (rate(authserver_http_request_duration_seconds_bucket{job=~"$job", route!="unmatched"}[$__rate_interval])))
		> 0.5 and on (job) (authserver_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400) or up{job="a"} == 0 unless x_total offset 1h`)
	want := []string{"authserver_http_request_duration_seconds_bucket", "authserver_tls_certificate_expiry_timestamp_seconds", "up", "x_total"}
	if !slices.Equal(r.metrics, want) {
		t.Errorf("metrics = %q, want %q", r.metrics, want)
	}
	if !slices.Equal(r.grouping, []string{"route", "le", "job"}) {
		t.Errorf("grouping = %q", r.grouping)
	}
	if got := r.matchers["authserver_http_request_duration_seconds_bucket"]; !slices.Equal(got, []string{"job", "route"}) {
		t.Errorf("matchers = %v", r.matchers)
	}
	fams := parseExposition("# HELP a_seconds x\n# TYPE a_seconds histogram\na_seconds_bucket{route=\"/x\",le=\"1\"} 1\n" +
		"# TYPE b_total counter\nb_total{code=\"200\"} 1\n")
	if m := missingRefs(fams, `sum by (le, route) (rate(a_seconds_bucket[5m])) / sum(rate(b_total{code=~"5.."}[5m]))`); len(m) != 0 {
		t.Errorf("missingRefs reports %v for names that exist", m)
	}
	// A misspelt metric or label is reported: the check can fail.
	m := missingRefs(fams, `sum by (status) (rate(b_totl[5m])) + rate(b_total{status="500"}[5m]) + a_seconds_count + a_seconds_total`)
	want = []string{"metric b_totl", "metric a_seconds_total", "label status of b_total", "label status"}
	if !slices.Equal(m, want) {
		t.Errorf("missingRefs = %q, want %q", m, want)
	}
}

// ---------------------------------------------------------------------------
// A real server configured from deploy/authserver.yaml.

// server is one authserver serve process.
type server struct {
	*servertest.Process
	client      *http.Client
	apiKey      string
	appKey      string
	secrets     []string // the Sinch secrets, newest first
	secretsDir  string   // what the container sees as /run/secrets
	configPath  string
	composeEnvs []string
}

// deployedServer writes the compose secrets to a temp dir, rewrites
// deploy/authserver.yaml to use them and the given database, runs migrate
// and starts serve as docker-compose.yml does (its command and environment),
// on free loopback ports.
func deployedServer(t *testing.T, databaseURL string, extraEnv ...string) *server {
	t.Helper()
	c := loadCompose(t)
	svc := c.Services["authserver"]
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &server{appKey: deployConfig(t).Applications[0].Key, secrets: []string{servertest.RandomBase64(32), servertest.RandomBase64(32)}, secretsDir: secrets}
	certFile, keyFile, err := tlsutil.SelfSigned(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range svc.Secrets {
		var data []byte
		switch name {
		case "sinch_app_secret":
			// The rotation format the example documents: newest first.
			data = []byte("# new\n" + s.secrets[0] + "\n# old, still verifies\n" + s.secrets[1] + "\n")
		case "tls_cert":
			data, err = os.ReadFile(certFile)
		case "tls_key":
			data, err = os.ReadFile(keyFile)
		case "pgpass":
			data = []byte("*:*:*:*:unused\n")
		default:
			t.Fatalf("docker-compose.yml: authserver has secret %q, which this test does not know how to make", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(secrets, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.apiKey = servertest.RandomHex(24)

	text := string(readRepo(t, "deploy/authserver.yaml"))
	// As shipped, with its secrets in place but the placeholders not filled
	// in, the config is refused with a line naming the key, not started
	// to answer every request 401.
	shipped := filepath.Join(dir, "shipped.yaml")
	if err := os.WriteFile(shipped, []byte(strings.ReplaceAll(text, "/run/secrets/", secrets+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, nil, "check", "--config", shipped, "--offline"); code != 1 ||
		!strings.Contains(out, `config: applications[0].key: "REPLACE-WITH-YOUR-SINCH-APPLICATION-KEY" is a placeholder`) {
		t.Errorf("check of deploy/authserver.yaml as shipped: exit %d\n%s", code, out)
	}
	const placeholder = "0000000000000000000000000000000000000000000000000000000000000000"
	if !strings.Contains(text, placeholder) {
		t.Fatalf("deploy/authserver.yaml: no API key placeholder %s to replace", placeholder)
	}
	text = strings.ReplaceAll(text, placeholder, servertest.KeyHash(s.apiKey))
	// authserver refuses the placeholders as they are shipped (below): an
	// operator fills them in, as this test does.
	const appPlaceholder = "REPLACE-WITH-YOUR-SINCH-APPLICATION-KEY"
	if !strings.Contains(text, appPlaceholder) {
		t.Fatalf("deploy/authserver.yaml: no application key placeholder %s to replace", appPlaceholder)
	}
	s.appKey = "5f0c2a9e-3b7d-4c1e-9a8f-2d6b4e1c7a90"
	text = strings.ReplaceAll(text, appPlaceholder, s.appKey)
	text = strings.ReplaceAll(text, "/run/secrets/", secrets+"/")
	reDB := regexp.MustCompile(`(?m)^database_url:.*$`)
	if !reDB.MatchString(text) {
		t.Fatalf("deploy/authserver.yaml: no database_url line")
	}
	text = reDB.ReplaceAllLiteralString(text, "database_url: "+strconv.Quote(databaseURL))
	s.configPath = filepath.Join(dir, "authserver.yaml")
	if err := os.WriteFile(s.configPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	// The compose command with the config path of this test.
	cmd := slices.Clone(svc.Command)
	mcmd := slices.Clone(c.Services["authserver-migrate"].Command)
	for _, args := range [][]string{cmd, mcmd} {
		for i := range args {
			if i > 0 && (args[i-1] == "--config" || args[i-1] == "-config") {
				args[i] = s.configPath
			}
		}
	}
	for k, v := range svc.Environment {
		s.composeEnvs = append(s.composeEnvs, k+"="+v)
	}
	env := append(slices.Clone(s.composeEnvs), "AUTHSERVER_CONFIG="+s.configPath)
	env = append(env, extraEnv...)

	out, code := run(t, env, mcmd...)
	if code != 0 || !strings.Contains(out, "applied 001_sequences.sql (version 1)") || !strings.Contains(out, "now at version 1") {
		t.Fatalf("authserver %s: exit %d\n%s", strings.Join(mcmd, " "), code, out)
	}

	// On port 0: the addresses come from the "authserver started" line.
	env = append(env, "AUTHSERVER_LISTEN=127.0.0.1:0", "AUTHSERVER_ADMIN_LISTEN=127.0.0.1:0")
	s.Process = servertest.New(t, servertest.Options{Binary: binary(t), Args: cmd, Env: env})
	// What Docker runs to decide the container is healthy.
	if out, code := run(t, nil, "healthcheck", "--url", s.AdminURL()+"/readyz"); code != 0 {
		t.Fatalf("healthcheck of a ready server: exit %d\n%s", code, out)
	}

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	s.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return s
}

func (s *server) post(t *testing.T, path, apiKey, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.PublicURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &v)
	return resp.StatusCode, v
}

// writeInPlace rewrites a file keeping its inode, as a bind mount needs.
func writeInPlace(t *testing.T, name, data string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func (s *server) scrape(t *testing.T) string {
	t.Helper()
	text, err := s.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestDeployedServerMetrics runs the compose steps against a throwaway
// PostgreSQL (migrate, then serve with deploy/authserver.yaml), exercises
// every credential outcome so that every labelled series exists, and checks
// that every metric and label any alert or dashboard query names is in the
// scrape.
func TestDeployedServerMetrics(t *testing.T) {
	cluster, dbURL := pgtest.New(t)
	s := deployedServer(t, dbURL, "AUTHSERVER_RATE_LIMITS_PER_USER=3/m")

	// Before any request, every series a dashboard panel reads is there at
	// 0 (a panel of a fresh server shows 0, not "No data").
	dexprs0, _ := dashboardExprs(t)
	fresh := parseExposition(s.scrape(t))
	for _, where := range slices.Sorted(maps.Keys(dexprs0)) {
		for _, m := range missingRefs(fresh, dexprs0[where]) {
			t.Errorf("%s: %s is not in the scrape of a server that has served nothing yet", where, m)
		}
	}

	// A registration JWT, signed by the first secret of the file; the second
	// one still verifies only its own tokens (rotation: first signs).
	code, tok := s.post(t, "/v1/registration-tokens", s.apiKey, `{"userId":"alice"}`)
	if code != 200 {
		t.Fatalf("registration token: %d %v", code, tok)
	}
	token, _ := tok["token"].(string)
	if out, code := run(t, nil, "verify", "--app-secret", s.secrets[0], "--app-key", s.appKey, token); code != 0 {
		t.Errorf("the token does not verify with the first secret of the file: %s", out)
	}
	if _, code := run(t, nil, "verify", "--app-secret", s.secrets[1], token); code == 0 {
		t.Errorf("the token verifies with the second secret of the file: the first line should sign")
	}

	// A legacy signature, committed in Postgres. The deployed config keeps
	// the default sequence.clock_floor: the sequence is at least the time
	// of the request in microseconds, exact in JSON's float64.
	before := time.Now().UnixMicro()
	code, sig := s.post(t, "/v1/registration-signatures", s.apiKey, `{"userId":"alice"}`)
	seq, _ := sig["sequence"].(float64)
	if code != 200 || seq < float64(before) || seq >= 1<<53 {
		t.Fatalf("registration signature: %d %v, want a sequence of at least %d (the clock floor)", code, sig, before)
	}
	h := sha1.Sum([]byte("alice" + s.appKey + strconv.FormatInt(int64(seq), 10) + s.secrets[0]))
	if sig["signature"] != base64.StdEncoding.EncodeToString(h[:]) {
		t.Errorf("signature %v is not made with the first secret of the file", sig["signature"])
	}

	// Rotation as deploy/secrets/sinch_app_secret.example tells: the new
	// secret first, the file rewritten in place; no restart.
	s.secrets = []string{servertest.RandomBase64(32), s.secrets[0]}
	writeInPlace(t, filepath.Join(s.secretsDir, "sinch_app_secret"), s.secrets[0]+"\n"+s.secrets[1]+"\n")
	i := 0
	rotated := servertest.Poll(10*time.Second, "rotation", func() bool {
		i++
		code, tok := s.post(t, "/v1/registration-tokens", s.apiKey, fmt.Sprintf(`{"userId":"rotation%d"}`, i))
		if code != 200 {
			t.Fatalf("registration token during rotation: %d %v", code, tok)
		}
		token, _ := tok["token"].(string)
		_, code = run(t, nil, "verify", "--app-secret", s.secrets[0], token)
		return code == 0
	}) == nil
	if !rotated {
		t.Errorf("tokens are not signed with the new first secret 10 s after the secret file was rewritten\n%s", s.Out)
	}

	// The TLS pair replaced in place, as tls.crt.example tells: served
	// without a restart.
	newCert, newKey, err := tlsutil.SelfSigned(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{newKey, "tls_key"}, {newCert, "tls_cert"}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		writeInPlace(t, filepath.Join(s.secretsDir, f[1]), string(b))
	}
	wantCert, err := tls.LoadX509KeyPair(newCert, newKey)
	if err != nil {
		t.Fatal(err)
	}
	served := servertest.Poll(10*time.Second, "new certificate", func() bool {
		conn, err := tls.Dial("tcp", s.Public, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return bytes.Equal(conn.ConnectionState().PeerCertificates[0].Raw, wantCert.Certificate[0])
	}) == nil
	if !served {
		t.Errorf("the new TLS certificate is not served 10 s after the files were rewritten")
	}
	pool := x509.NewCertPool()
	pool.AddCert(wantCert.Leaf)
	s.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}

	// A failed authentication, a rate-limited user.
	if code, p := s.post(t, "/v1/registration-tokens", "not-the-key", `{"userId":"alice"}`); code != 401 {
		t.Errorf("bad API key: %d %v", code, p)
	}
	limited := false
	for i := 0; i < 10 && !limited; i++ {
		code, _ := s.post(t, "/v1/registration-tokens", s.apiKey, `{"userId":"bob"}`)
		limited = code == 429
	}
	if !limited {
		t.Errorf("no 429 with AUTHSERVER_RATE_LIMITS_PER_USER=3/m")
	}

	// The sequence store fails: a 503 and a store error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER TABLE sequences RENAME TO sequences_gone"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if code, p := s.post(t, "/v1/registration-signatures", s.apiKey, `{"userId":"carol"}`); code != 503 {
		t.Errorf("signature with the store failing: %d %v", code, p)
	}

	text := s.scrape(t)
	fams := parseExposition(text)
	for _, want := range []string{"authserver_sequence_store_errors_total", "authserver_rate_limited_total", "authserver_auth_failures_total",
		"authserver_credentials_refused_total", "authserver_credentials_issued_total"} {
		if fams[want] == nil {
			t.Errorf("the scrape has no %s after the requests meant to create it:\n%s", want, text)
		}
	}
	if !strings.Contains(text, `authserver_build_info{goversion=`) || !strings.Contains(text, `version="`+testVersion+`"`) {
		t.Errorf("authserver_build_info does not carry the version the Dockerfile's ldflags set")
	}
	if m := regexp.MustCompile(`(?m)^authserver_tls_certificate_expiry_timestamp_seconds (\S+)$`).FindStringSubmatch(text); m == nil {
		t.Errorf("no authserver_tls_certificate_expiry_timestamp_seconds sample")
	} else if v, _ := strconv.ParseFloat(m[1], 64); v < float64(time.Now().Unix()) {
		t.Errorf("authserver_tls_certificate_expiry_timestamp_seconds = %s, want the certificate's NotAfter", m[1])
	}

	exprs := alertExprs(t)
	dexprs, varMetrics := dashboardExprs(t)
	for k, v := range dexprs {
		exprs[k] = v
	}
	for _, m := range varMetrics {
		exprs["dashboard variable "+m] = m
	}
	names := map[string]bool{}
	for _, where := range slices.Sorted(maps.Keys(exprs)) {
		for _, m := range missingRefs(fams, exprs[where]) {
			t.Errorf("%s: %s is not in a real scrape of authserver", where, m)
		}
		for _, n := range promqlRefs(exprs[where]).metrics {
			names[n] = true
		}
	}
	if !t.Failed() {
		t.Logf("%d queries use %d metric names, all present in the scrape: %v", len(exprs), len(names), slices.Sorted(maps.Keys(names)))
	}

	// With the database down, Docker's healthcheck still passes (JWTs are
	// served; every replica shares the outage), and its sequence_store
	// check fails.
	if err := cluster.Stop(); errors.Is(err, pgtest.ErrExternal) {
		t.Log("external PostgreSQL: not stopping it to check the healthcheck")
	} else if err != nil {
		t.Fatal(err)
	} else {
		if out, code := run(t, nil, "healthcheck", "--url", s.AdminURL()+"/readyz"); code != 0 {
			t.Errorf("healthcheck fails with the database stopped: %s", out)
		}
		if out, code := run(t, nil, "healthcheck", "--url", s.AdminURL()+"/readyz", "--check", "sequence_store"); code == 0 {
			t.Errorf("healthcheck --check sequence_store passes with the database stopped: %s", out)
		}
	}

	if err := s.Stop(15 * time.Second); err != nil {
		t.Errorf("authserver serve exited with %v after SIGTERM\n%s", err, s.Out)
	}
}
