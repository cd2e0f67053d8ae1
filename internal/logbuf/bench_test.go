package logbuf

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func benchLog(b *testing.B, buffered bool) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out io.Writer = f
	if buffered {
		w := New(f, Options{})
		defer w.Close()
		out = w
	}
	logger := slog.New(slog.NewJSONHandler(out, nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			logger.Info("request", "method", "POST", "path", "/v1/registration-tokens", "status", 200,
				"duration_ms", 0.42, "request_id", "3f1c8a9e2b7d4c10", "remote", "127.0.0.1")
			logger.Info("credential", "kind", "jwt", "application", "bench-app", "user_id", "user-123",
				"principal", "api_key:bench", "request_id", "3f1c8a9e2b7d4c10")
		}
	})
}
