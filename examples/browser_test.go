package examples

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/servertest"
)

// installChromium says how to get the browser the web example runs in.
const installChromium = "the browser test needs Chromium; install it, e.g. `apt-get install -y chromium` on Debian " +
	"(or set CHROMIUM to its path)"

// requireChromium finds Chromium or fails the test saying how to install it.
func requireChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium not found on PATH: %s", installChromium)
	return ""
}

var tokenLineRE = regexp.MustCompile(`^  (eyJ[\w-]+\.[\w-]+\.[\w-]+)$`)

// devBannerWithToken reads the public URL and the demo identity token from
// the banner of `authserver dev`, as "URL TOKEN".
func devBannerWithToken() func(line string) (string, bool) {
	var mu sync.Mutex
	var u, tok string
	return func(line string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if m := devURLRE.FindStringSubmatch(line); m != nil {
			u = m[1]
		}
		if m := tokenLineRE.FindStringSubmatch(line); m != nil {
			tok = m[1]
		}
		return u + " " + tok, u != "" && tok != ""
	}
}

// spkiHash is the base64 SHA-256 of the certificate's public key, the form
// Chromium's --ignore-certificate-errors-spki-list takes: it trusts that one
// key (dev's self-signed certificate), not every certificate.
func spkiHash(t *testing.T, certFile string) string {
	t.Helper()
	cert, err := servertest.Certificate(certFile)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// pageResult is what web/demo.html writes into #result.
type pageResult struct {
	Outcome string `json:"outcome"`
	UserID  string `json:"userId"`
	JWT     string `json:"jwt"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

var resultRE = regexp.MustCompile(`(?s)<pre id="result">(.*?)</pre>`)

// runPage loads pageURL in headless Chromium, lets its scripts run (virtual
// time, so the fetches finish), and returns what the page wrote in #result.
func runPage(t *testing.T, chromium, pageURL string, extraFlags ...string) pageResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=15000", "--dump-dom",
	}, extraFlags...)
	cmd := exec.CommandContext(ctx, chromium, append(args, pageURL)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	m := resultRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no #result in the page:\n%s\nstderr:\n%s", out, stderr.String())
	}
	var r pageResult
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &r); err != nil {
		t.Fatalf("#result %q: %v\nstderr:\n%s", m[1], err, stderr.String())
	}
	return r
}

// TestWebExampleInChromium opens web/demo.html in real headless Chromium
// against a real `authserver dev`, the way a web app runs:
//
//   - served from http://127.0.0.1:<port> (an origin dev allows), with the
//     demo identity token dev's banner prints, the page learns its Sinch user
//     id and onCredentialsRequired hands the SDK a JWT for that user, which
//     `authserver verify` accepts with the app secret;
//   - the same page from another origin (http://app.example.test, resolved
//     to loopback) is refused by CORS: the browser never lets the request
//     through, and the page reports the failure.
//
// Chromium trusts dev's self-signed certificate through
// --ignore-certificate-errors-spki-list (that key only). Chromium is
// required: without it this test fails, it does not skip.
func TestWebExampleInChromium(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	bin := buildAuthserver(t)
	devDir := filepath.Join(t.TempDir(), "dev")
	got := start(t, bin, []string{"dev", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", devDir, "--demo-user", "carol"}, devBannerWithToken())
	devURL, idToken, _ := strings.Cut(got, " ")
	certFile := filepath.Join(devDir, "dev-cert.pem")
	trust := "--ignore-certificate-errors-spki-list=" + spkiHash(t, certFile)

	// The page is served the way a developer would: a static file server.
	pages := httptest.NewServer(http.FileServer(http.Dir("web")))
	t.Cleanup(pages.Close)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(pages.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fragment := "#" + url.Values{"server": {devURL}, "token": {idToken}}.Encode()

	t.Run("allowed origin gets a JWT for its user", func(t *testing.T) {
		r := runPage(t, chromium, pages.URL+"/demo.html"+fragment, trust)
		if r.Outcome != "registered" || r.UserID != "carol" || r.JWT == "" {
			t.Fatalf("page result %+v, want registered for carol", r)
		}
		// The JWT is a Sinch registration token for carol, checked by the
		// binary's own verify command with the app secret.
		out, err := exec.Command(bin, "verify", "--app-secret-file", filepath.Join(devDir, "dev-app-secret"), "--app-key", "demo-app", r.JWT).CombinedOutput()
		if err != nil {
			t.Fatalf("authserver verify: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "//rtc.sinch.com/applications/demo-app/users/carol") {
			t.Errorf("verify output does not name carol:\n%s", out)
		}
	})

	t.Run("another origin is refused by CORS", func(t *testing.T) {
		other := "http://app.example.test:" + port + "/demo.html" + fragment
		r := runPage(t, chromium, other, trust, "--host-resolver-rules=MAP app.example.test 127.0.0.1")
		if r.Outcome == "registered" || r.JWT != "" {
			t.Fatalf("a page from another origin got a JWT: %+v", r)
		}
		// fetch rejects with a TypeError when CORS blocks the response.
		if r.Outcome != "error" || r.Name != "TypeError" {
			t.Errorf("page result %+v, want a TypeError from fetch", r)
		}
	})
}
