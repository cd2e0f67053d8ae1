package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Ready asks a readiness URL of the admin listener (/readyz, or, with a
// check name, url/check) and returns nil for 200, else why not: the first
// failed check's line, e.g. "[-]sequence_store failed: ...".
func Ready(ctx context.Context, url, check string) error {
	if check != "" {
		url = strings.TrimSuffix(url, "/") + "/" + check
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	why := ""
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<16))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "[-]") {
			why = ": " + strings.TrimPrefix(sc.Text(), "[-]")
			break
		}
	}
	return fmt.Errorf("not ready: %s answered %s%s", url, resp.Status, why)
}
