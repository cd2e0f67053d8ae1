package servertest

import (
	"fmt"
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
