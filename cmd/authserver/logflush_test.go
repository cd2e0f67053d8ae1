package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestServeWritesEveryLogRecordOnShutdown: log records are batched in
// memory (internal/logbuf), and a graceful shutdown writes all of them: as
// soon as run returns, the output holds the access record and the
// credential audit record of every request served, and the last line is
// "stopped".
func TestServeWritesEveryLogRecordOnShutdown(t *testing.T) {
	f := newServeFixture(t)
	rc, s := f.serve(t, f.config())

	const n = 20
	for i := range n {
		resp, body := s.post(t, "/v1/registration-tokens", map[string]string{"X-API-Key": f.apiKey}, `{"userId":"user-`+string(rune('a'+i))+`"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %s %s", i, resp.Status, body)
		}
	}
	s.client.CloseIdleConnections()
	if err := rc.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	// No polling: everything must be written by the time run returned.
	logs := strings.TrimSpace(rc.stderr.String())
	var access, audit int
	for _, line := range strings.Split(logs, "\n") {
		switch {
		case strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"route":"/v1/registration-tokens"`):
			access++
		case strings.Contains(line, `"msg":"credential"`):
			audit++
		}
	}
	if access != n || audit != n {
		t.Errorf("after the shutdown: %d access and %d audit records for %d requests\n%s", access, audit, n, logs)
	}
	if last := logs[strings.LastIndexByte(logs, '\n')+1:]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Errorf("the last record is %s, not \"stopped\"", last)
	}
}
