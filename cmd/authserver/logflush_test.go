package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestServeWritesEveryLogRecordOnShutdown: log records are batched in
// memory (internal/logbuf), and a graceful shutdown writes all of them: as
// soon as run returns, the output holds the record of every request served
// (access and audit fields in one), and the last line is "stopped".
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
	// One record per request: the credential record carries the access
	// fields (route, status) and the audit fields (outcome).
	records := 0
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"msg":"credential"`) && strings.Contains(line, `"route":"/v1/registration-tokens"`) &&
			strings.Contains(line, `"status":200`) && strings.Contains(line, `"outcome":"issued"`) {
			records++
		}
	}
	if records != n {
		t.Errorf("after the shutdown: %d credential records for %d requests\n%s", records, n, logs)
	}
	if last := logs[strings.LastIndexByte(logs, '\n')+1:]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Errorf("the last record is %s, not \"stopped\"", last)
	}
}
