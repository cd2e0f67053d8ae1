//go:build faults

package faults

import (
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestSecretRotation rotates the application secret under traffic: the
// secret file holds [A]; it is rewritten to [B, A] (B signs, A still
// verifies) and the server gets SIGHUP. No request may fail; credentials
// finished before the rewrite are signed with A, those requested after the
// first B-signed one arrived are signed with B; every JWT verifies with the
// new file (`authserver verify --app-secret-file`), and new ones no longer
// with A alone.
func TestSecretRotation(t *testing.T) {
	f := newFixture(t) // secret A, index 0
	b := f.addSecret(newSecretText())
	s := f.newServer("rotation", serverConfig{})
	s.start()
	pid := s.pid()
	l := startWarm(t, f, loadOpts{urls: []string{s.url()}, workers: 4, users: users("u", 10), jwtShare: 0.5})

	rewritten := time.Now()
	replaceFile(t, f.secretFile, []byte(f.secretTexts[b]+"\n"+f.secretTexts[0]+"\n"))
	s.signal(syscall.SIGHUP)
	var firstB op
	if !l.waitFor(10*time.Second, func(ops []op) bool {
		for _, o := range ops {
			if o.signedBy == b && (firstB.end.IsZero() || o.end.Before(firstB.end)) {
				firstB = o
			}
		}
		return !firstB.end.IsZero()
	}) {
		l.Stop()
		t.Fatalf("no credential signed with the new secret 10s after the rewrite and SIGHUP:\n%s", tail(s.logPath, 20))
	}
	l.waitOps(t, warmOps, firstB.end)
	ops := l.Stop()

	all := count(ops, nil)
	var beforeA, beforeOther, afterB, afterOther, windowA, windowB int
	var oldJWT, newJWT string
	for _, o := range ops {
		if o.status != http.StatusOK {
			continue
		}
		switch {
		case o.end.Before(rewritten):
			if o.signedBy == 0 {
				beforeA++
				if o.token != "" {
					oldJWT = o.token
				}
			} else {
				beforeOther++
			}
		case o.start.After(firstB.end):
			if o.signedBy == b {
				afterB++
				if o.token != "" {
					newJWT = o.token
				}
			} else {
				afterOther++
			}
		case o.signedBy == 0:
			windowA++
		case o.signedBy == b:
			windowB++
		}
	}
	t.Logf("all: %v", all)
	t.Logf("before the rewrite: %d signed with A (%d otherwise); in between: %d A, %d B; after the first B (%s after the rewrite): %d signed with B (%d otherwise)",
		beforeA, beforeOther, windowA, windowB, firstB.end.Sub(rewritten).Round(time.Millisecond), afterB, afterOther)
	if m, err := s.scrape(`authserver_config_reload_total{result="success"}`, `authserver_config_reload_total{result="error"}`); err == nil {
		t.Logf("reload metrics: %v", m)
	}

	if all.ok != all.sent || all.badCredential > 0 {
		t.Errorf("failed requests or unverifiable credentials during the rotation: %v", all)
	}
	if beforeOther > 0 || afterOther > 0 {
		t.Errorf("credentials signed with the wrong secret: %d before the rewrite, %d after the switch", beforeOther, afterOther)
	}
	if beforeA == 0 || afterB == 0 || oldJWT == "" || newJWT == "" {
		t.Fatalf("not enough traffic on both sides of the rotation")
	}
	// The old token still verifies with the rotated file; the new one only with B.
	if _, err := runCLI(t, "verify", "--app-secret-file", f.secretFile, "--app-key", f.appKey, oldJWT); err != nil {
		t.Errorf("a token signed with A before the rotation does not verify with [B, A]: %v", err)
	}
	if _, err := runCLI(t, "verify", "--app-secret", f.secretTexts[b], newJWT); err != nil {
		t.Errorf("a token issued after the rotation does not verify with B: %v", err)
	}
	if _, err := runCLI(t, "verify", "--app-secret", f.secretTexts[0], newJWT); err == nil {
		t.Errorf("a token issued after the rotation verifies with A")
	}
	if s.pid() != pid || s.exited() {
		t.Errorf("the server restarted or exited")
	}
}
