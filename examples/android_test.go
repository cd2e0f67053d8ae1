package examples

import (
	"crypto/sha1"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// installJVM says how to get the tools the Android examples' test needs.
const installJVM = "the Android examples' test needs a JDK (javac, java, keytool) and the Kotlin compiler (kotlinc); " +
	"install them, e.g. `apt-get install -y default-jdk-headless kotlin` on Debian"

// TestAndroidExamples compiles the Android examples (current SDK: JWT;
// legacy SDK 3.x: signature + sequence) with kotlinc against stand-in types
// that copy the SDK members they use (android/stubs), then runs them on the
// JVM against a real `authserver dev`, trusting its certificate through a
// trust store made with keytool:
//
//   - current: the user id comes from authserver (sinchUserId), the
//     listener hands the SDK a JWT for that user (checked by `authserver
//     verify`), and calls registerFailed() for a client of another user
//     (403), for a server that never answers (the timeouts end the wait),
//     and the client refuses a plain-http URL;
//   - legacy: two signatures with consecutive sequences that match
//     Base64(SHA1(userId + applicationKey + sequence + secret)), and
//     registerFailed() for another user.
//
// The tools are required: without them this test fails, it does not skip.
func TestAndroidExamples(t *testing.T) {
	t.Parallel()
	javac := requireTool(t, "javac", installJVM)
	java := requireTool(t, "java", installJVM)
	keytool := requireTool(t, "keytool", installJVM)
	kotlinc := requireTool(t, "kotlinc", installJVM)
	bin := buildAuthserver(t)
	dir := t.TempDir()
	devDir := filepath.Join(dir, "dev")
	got := start(t, bin, []string{"dev", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", devDir, "--demo-user", "dora"}, devBannerWithToken())
	devURL, idToken, _ := strings.Cut(got, " ")

	trustStore := filepath.Join(dir, "trust.p12")
	runTool(t, time.Minute, keytool, "-importcert", "-noprompt", "-alias", "authserver-dev", "-file", filepath.Join(devDir, "dev-cert.pem"),
		"-keystore", trustStore, "-storetype", "PKCS12", "-storepass", "changeit")
	javaRun := func(t *testing.T, classpath, main string) string {
		t.Helper()
		return runTool(t, 2*time.Minute, java, "-Djavax.net.ssl.trustStore="+trustStore, "-Djavax.net.ssl.trustStorePassword=changeit",
			"-Djavax.net.ssl.trustStoreType=PKCS12", "-cp", classpath, main, devURL, idToken)
	}
	compile := func(t *testing.T, sdk string, sources ...string) string {
		t.Helper()
		stubs := filepath.Join(dir, sdk)
		javaSrc, err := filepath.Glob(filepath.Join("android", "stubs", sdk, "com", "sinch", "android", "rtc", "*.java"))
		if err != nil || len(javaSrc) == 0 {
			t.Fatalf("no stand-ins for %s: %v", sdk, err)
		}
		platform, _ := filepath.Glob(filepath.Join("android", "stubs", "platform", "org", "json", "*.java"))
		runTool(t, 2*time.Minute, javac, append([]string{"--release", "8", "-nowarn", "-d", stubs}, append(javaSrc, platform...)...)...)
		jar := filepath.Join(dir, sdk+".jar")
		runTool(t, 5*time.Minute, kotlinc, append([]string{"-cp", stubs, "-include-runtime", "-d", jar}, sources...)...)
		return jar + string(os.PathListSeparator) + stubs
	}
	line := func(t *testing.T, out, prefix string) string {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
				return rest
			}
		}
		t.Fatalf("no %q line in:\n%s", prefix, out)
		return ""
	}

	t.Run("current SDK: JWT", func(t *testing.T) {
		cp := compile(t, "current", "android/AuthserverClient.kt", "android/AuthserverCredentials.kt", "android/stubs/usage/Current.kt")
		out := javaRun(t, cp, "com.example.sinchauth.usage.CurrentKt")
		t.Logf("example output:\n%s", out)
		if u := line(t, out, "USER"); u != "dora" {
			t.Errorf("sinchUserId = %q, want dora", u)
		}
		jwt, ok := strings.CutPrefix(line(t, out, "OWN"), "REGISTERED ")
		if !ok {
			t.Fatalf("own user: %q, want REGISTERED <jwt>", line(t, out, "OWN"))
		}
		v := runTool(t, time.Minute, bin, "verify", "--app-secret-file", filepath.Join(devDir, "dev-app-secret"), "--app-key", "demo-app", jwt)
		if !strings.Contains(v, "//rtc.sinch.com/applications/demo-app/users/dora") {
			t.Errorf("the JWT is not for dora:\n%s", v)
		}
		if o := line(t, out, "OTHER"); o != "FAILED" {
			t.Errorf("a client of another user: %q, want FAILED", o)
		}
		m := regexp.MustCompile(`^FAILED (\d+)ms$`).FindStringSubmatch(line(t, out, "TIMEOUT"))
		if m == nil {
			t.Errorf("a server that never answers: %q, want FAILED", line(t, out, "TIMEOUT"))
		} else if ms, _ := strconv.Atoi(m[1]); ms > 5000 {
			t.Errorf("registerFailed after %d ms; the timeouts are 500 ms", ms)
		}
		if h := line(t, out, "HTTP"); h != "refused" {
			t.Errorf("a plain-http base URL was %s", h)
		}
	})

	t.Run("legacy SDK 3.x: signature and sequence", func(t *testing.T) {
		start := time.Now()
		cp := compile(t, "legacy", "android/AuthserverClient.kt", "android/legacy/AuthserverSignatures.kt", "android/stubs/usage/Legacy.kt")
		out := javaRun(t, cp, "com.example.sinchauth.usage.LegacyKt")
		t.Logf("example output:\n%s", out)
		secret := strings.TrimSpace(strings.SplitN(string(mustRead(t, filepath.Join(devDir, "dev-app-secret"))), "\n", 2)[0])
		re := regexp.MustCompile(`(?m)^OWN SIGNED (\d+) (\S+)$`)
		own := re.FindAllStringSubmatch(out, -1)
		if len(own) != 2 {
			t.Fatalf("want two signatures for the own user:\n%s", out)
		}
		var prev uint64
		for i, m := range own {
			seq, _ := strconv.ParseUint(m[1], 10, 64)
			sum := sha1.Sum([]byte("dora" + "demo-app" + m[1] + secret))
			if want := base64.StdEncoding.EncodeToString(sum[:]); m[2] != want {
				t.Errorf("signature %d = %s, want %s", i, m[2], want)
			}
			// dev runs with sequence.clock_floor on: each number is at
			// least the time in µs and above the user's last one.
			if i > 0 && seq <= prev {
				t.Errorf("sequences %d then %d, want increasing", prev, seq)
			}
			if floor := uint64(start.UnixMicro()); seq < floor {
				t.Errorf("sequence %d is below the clock floor %d", seq, floor)
			}
			prev = seq
		}
		if o := line(t, out, "OTHER"); o != "FAILED" {
			t.Errorf("a client of another user: %q, want FAILED", o)
		}
	})
}
