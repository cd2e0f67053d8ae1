package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/metrics"
	"github.com/authserver-dev/authserver/internal/servertest"
)

// viaSlog is what slog's JSONHandler writes for the record.
func viaSlog(tb testing.TB, w io.Writer, t time.Time, msg string, attrs []slog.Attr) {
	tb.Helper()
	rec := slog.NewRecord(t, slog.LevelInfo, msg, 0)
	rec.AddAttrs(attrs...)
	if err := slog.NewJSONHandler(w, nil).Handle(context.Background(), rec); err != nil {
		tb.Fatal(err)
	}
}

func mustMatchSlog(tb testing.TB, t time.Time, msg string, attrs []slog.Attr) {
	tb.Helper()
	var want bytes.Buffer
	viaSlog(tb, &want, t, msg, attrs)
	got, ok := appendJSONRecord(nil, t, msg, attrs)
	if !ok {
		tb.Fatalf("appendJSONRecord refused %v", attrs)
	}
	if !bytes.Equal(got, want.Bytes()) {
		tb.Fatalf("by hand:\n%s\nslog:\n%s", got, want.Bytes())
	}
}

// credentialRecord is a typical record: what logRecord writes for a token
// issued to an API key.
func credentialRecord() []slog.Attr {
	return []slog.Attr{
		slog.String("request_id", "3f9a1c2b7d4e-1a"), slog.String("method", "POST"),
		slog.String("route", "/v1/registration-tokens"), slog.Int("status", 200),
		slog.Float64("duration_ms", 0.183529), slog.String("client_ip", "203.0.113.9"),
		slog.Int("bytes", 574), slog.String("outcome", "issued"), slog.String("kind", "jwt"),
		slog.String("principal_kind", "api_key"), slog.String("principal", "backend"),
		slog.String("application", "196087a1-e815-4bc4-8984-60d8d8a43f1d"),
		slog.String("user_id", "alice"), slog.String("kid", "hkdfv1-20261130"),
	}
}

func TestRecordMatchesSlog(t *testing.T) {
	now := time.Now()
	mustMatchSlog(t, now, "credential", credentialRecord())
	mustMatchSlog(t, now.UTC(), "request", nil)
	mustMatchSlog(t, time.Date(2026, 11, 30, 17, 0, 0, 0, time.FixedZone("x", -5*3600)), "request", nil)
	for _, s := range []string{"", `"quoted" \ back`, "tab\tnew\nline\rret\x00\x1f\x7f", "<html>&amp;",
		"ünïcödé 日本 🙂", "bad \xff utf-8 \xc3", "sep \u2028 \u2029 end", "\u2027\u202a"} {
		mustMatchSlog(t, now, s, []slog.Attr{slog.String(s, s)})
	}
	for _, f := range []float64{0, 1, -1, 0.000001, 0.0000009, 1e-7, 123456.789, 1e20, 1e21, -2.5e-9, math.MaxFloat64,
		math.SmallestNonzeroFloat64, 1.0 / 3} {
		mustMatchSlog(t, now, "f", []slog.Attr{slog.Float64("duration_ms", f)})
	}
	for _, n := range []int64{0, -1, math.MaxInt64, math.MinInt64} {
		mustMatchSlog(t, now, "n", []slog.Attr{slog.Int64("sequence", n)})
	}
	for _, n := range []uint64{0, 1, math.MaxUint64} { // a signature's sequence is a slog.Uint64
		mustMatchSlog(t, now, "n", []slog.Attr{slog.Uint64("sequence", n)})
	}
}

// TestRecordRefusesOtherKinds: anything but strings, integers and finite
// floats (and years of four digits) is left to slog.
func TestRecordRefusesOtherKinds(t *testing.T) {
	now := time.Now()
	for _, attrs := range [][]slog.Attr{
		{slog.Bool("b", true)},
		{slog.Duration("d", time.Second)},
		{slog.Float64("f", math.Inf(1))},
		{slog.Float64("f", math.NaN())},
		{slog.Group("g", slog.String("a", "b"))},
	} {
		if _, ok := appendJSONRecord(nil, now, "m", attrs); ok {
			t.Errorf("encoded %v", attrs)
		}
	}
	if _, ok := appendJSONRecord(nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "m", nil); ok {
		t.Error("encoded the year 10000")
	}
}

func FuzzRecordMatchesSlog(f *testing.F) {
	f.Add("alice", "backend", int64(7), uint64(7), 0.25)
	f.Add("\xff\u2028\"\\\n", "", int64(-1), uint64(math.MaxUint64), 1e-9)
	f.Fuzz(func(t *testing.T, user, principal string, n int64, seq uint64, ms float64) {
		if math.IsInf(ms, 0) || math.IsNaN(ms) {
			return
		}
		mustMatchSlog(t, time.Now(), user, []slog.Attr{
			slog.String("user_id", user), slog.String(principal, principal),
			slog.Int64("bytes", n), slog.Uint64("sequence", seq), slog.Float64("duration_ms", ms),
		})
	})
}

// BenchmarkRequestRecord is one credential record through slog's
// JSONHandler and by hand, to a discarding writer.
func BenchmarkRequestRecord(b *testing.B) {
	attrs := credentialRecord()
	b.Run("slog", func(b *testing.B) {
		h := slog.NewJSONHandler(io.Discard, nil)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			rec := slog.NewRecord(time.Now(), slog.LevelInfo, "credential", 0)
			rec.AddAttrs(attrs...)
			_ = h.Handle(ctx, rec)
		}
	})
	b.Run("hand", func(b *testing.B) {
		j := newJSONRecords(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			j.write(time.Now(), "credential", attrs)
		}
	})
}

// frontServer is a Server whose front middleware wraps h, served over
// plain HTTP, logging JSON at level to logs (by hand when records is set).
func frontServer(t *testing.T, logs io.Writer, level slog.Level, records bool, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	o := Options{
		State:   &State{},
		Metrics: metrics.New(metrics.BuildInfo{}),
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})),
	}
	if records {
		o.Records = logs
	}
	ts := httptest.NewServer(New(o).front(h))
	t.Cleanup(ts.Close)
	return ts
}

// TestRecordsFollowTheLevel: at warn no info record is written, by hand or
// not; without Records the record goes through the logger (the text format's
// path), once.
func TestRecordsFollowTheLevel(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }
	for _, c := range []struct {
		level   slog.Level
		records bool
		want    int
	}{
		{slog.LevelWarn, true, 0},
		{slog.LevelWarn, false, 0},
		{slog.LevelInfo, false, 1},
		{slog.LevelInfo, true, 1},
	} {
		var logs servertest.Buffer
		ts := frontServer(t, &logs, c.level, c.records, ok)
		resp, err := ts.Client().Get(ts.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ts.Close() // waits for the handler, and so for its record
		if got := strings.Count(logs.String(), `"msg":"request"`); got != c.want {
			t.Errorf("level %v, records %t: %d records, want %d:\n%s", c.level, c.records, got, c.want, logs.String())
		}
	}
}

// TestPanicAfterTheResponseBegan: a handler that panics after writing its
// status cannot answer a problem any more; the connection is dropped (the
// client sees a broken response, not a truncated 200), and the panic and a
// status of 500 are recorded.
func TestPanicAfterTheResponseBegan(t *testing.T) {
	var logs servertest.Buffer
	ts := frontServer(t, &logs, slog.LevelInfo, true, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"token":"`)
		w.(http.Flusher).Flush()
		panic("boom")
	})
	resp, err := ts.Client().Get(ts.URL + "/x")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("the client read a whole response")
	}
	ts.Close()
	out := logs.String()
	if !strings.Contains(out, `"msg":"panic serving request"`) || !strings.Contains(out, `"msg":"request"`) || !strings.Contains(out, `"status":500`) {
		t.Errorf("logs:\n%s", out)
	}
}
