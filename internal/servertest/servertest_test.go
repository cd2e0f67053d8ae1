package servertest

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSamples(t *testing.T) {
	text := "# HELP x_total a counter\n# TYPE x_total counter\n" +
		"x_total{result=\"ok\"} 3\nx_total{result=\"error\"} 1\nx_total_other 9\ngo_goroutines 12\n"
	got, err := Samples(text, `x_total{result="ok"}`, "go_goroutines")
	if err != nil || got[`x_total{result="ok"}`] != 3 || got["go_goroutines"] != 12 || len(got) != 2 {
		t.Errorf("Samples = %v, %v", got, err)
	}
	if _, err := Samples(text, "x_total"); err == nil {
		t.Error("a series named only by a prefix of others was found")
	}
	if all := ParseSamples(text); len(all) != 4 || all["x_total_other"] != 9 || all[`x_total{result="error"}`] != 1 {
		t.Errorf("ParseSamples = %v, want the 4 samples and no comment lines", all)
	}
}

func TestBufferLines(t *testing.T) {
	var b Buffer
	fmt.Fprintln(&b, `{"msg":"authserver started","listen":"127.0.0.1:1"}`)
	fmt.Fprintln(&b, "not json")
	fmt.Fprintln(&b, `{"msg":"other"}`)
	if l := b.Lines("authserver started"); len(l) != 1 || l[0]["listen"] != "127.0.0.1:1" {
		t.Errorf("Lines(started) = %v", l)
	}
	if l := b.Lines(""); len(l) != 2 {
		t.Errorf("Lines(\"\") = %d lines, want the 2 JSON ones", len(l))
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(5*time.Second, "third call", func() bool { n++; return n == 3 }); err != nil || n != 3 {
		t.Errorf("Poll: %v after %d calls", err, n)
	}
	if err := Poll(20*time.Millisecond, "never", func() bool { return false }); err == nil || !strings.Contains(err.Error(), "never") {
		t.Errorf("Poll of a condition that never holds: %v", err)
	}
}

func TestRandomAndKeyHash(t *testing.T) {
	if a, b := RandomHex(16), RandomHex(16); len(a) != 32 || a == b {
		t.Errorf("RandomHex(16) = %q, %q: want 32 hex digits, different each time", a, b)
	}
	if _, err := hex.DecodeString(RandomHex(3)); err != nil {
		t.Errorf("RandomHex is not hex: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(RandomBase64(32))
	if err != nil || len(raw) != 32 {
		t.Errorf("RandomBase64(32) decodes to %d bytes, %v", len(raw), err)
	}
	// The FIPS 180-2 test vector.
	if got := KeyHash("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("KeyHash(abc) = %s", got)
	}
}

func TestProcStatusKB(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	if kb, err := ProcStatusKB(os.Getpid(), "VmRSS"); err != nil || kb <= 0 {
		t.Errorf("ProcStatusKB(self, VmRSS) = %d, %v", kb, err)
	}
	if _, err := ProcStatusKB(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("a missing field was found")
	}
}
