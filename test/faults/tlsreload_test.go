//go:build faults

package faults

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authserver-dev/authserver/internal/tlsutil"
)

// TestTLSCertificateReplaced replaces the certificate and key files on disk
// (each through a rename, key first, as a deploy tool would) while clients
// keep sending requests and opening new connections. New handshakes must
// get the new certificate (compared by leaf serial) without a restart, and
// no request may fail.
func TestTLSCertificateReplaced(t *testing.T) {
	f := newFixture(t)
	oldLeaf := f.trust(f.certFile)
	newCert, newKey, err := tlsutil.SelfSigned(filepath.Join(f.dir, "tls-next"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	newLeaf := f.trust(newCert)
	oldSerial, newSerial := oldLeaf.SerialNumber.String(), newLeaf.SerialNumber.String()
	if oldSerial == newSerial {
		t.Fatal("the two certificates have the same serial")
	}

	s := f.newServer("tls", serverConfig{})
	s.start()
	pid := s.pid()
	if got := handshakeSerial(t, f, s.pubAddr); got != oldSerial {
		t.Fatalf("first handshake: serial %s, want the original %s", got, oldSerial)
	}
	// Clients drop their connections every 100ms, so handshakes happen all
	// through the replacement.
	l := startWarm(t, f, loadOpts{urls: []string{s.url()}, workers: 6, users: users("u", 10), jwtShare: 0.5, newConnEvery: 100 * time.Millisecond})

	replaced := time.Now()
	for _, p := range [][2]string{{newKey, f.keyFile}, {newCert, f.certFile}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		replaceFile(t, p[1], b)
	}
	var switched time.Time
	deadline := time.Now().Add(10 * time.Second)
	for {
		if handshakeSerial(t, f, s.pubAddr) == newSerial {
			switched = time.Now()
			break
		}
		if time.Now().After(deadline) {
			l.Stop()
			t.Fatalf("new handshakes still get the old certificate 10s after the files were replaced")
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.waitOps(t, warmOps, switched)
	ops := l.Stop()

	all := count(ops, nil)
	var oldHS, newHS, staleAfterSwitch int
	for _, o := range ops {
		switch o.serial {
		case oldSerial:
			oldHS++
			if o.start.After(switched) {
				staleAfterSwitch++
			}
		case newSerial:
			newHS++
		}
	}
	for range 5 {
		if got := handshakeSerial(t, f, s.pubAddr); got != newSerial {
			t.Errorf("handshake after the switch: serial %s, want %s", got, newSerial)
		}
	}
	m, err := s.scrape(`authserver_config_reload_total{result="success"}`)
	if err != nil {
		t.Error(err)
	}
	t.Logf("all: %v", all)
	t.Logf("load handshakes: old certificate %d, new %d, old after the switch %d; new certificate served %s after the files were replaced; reloads counted: %v",
		oldHS, newHS, staleAfterSwitch, switched.Sub(replaced).Round(time.Millisecond), m)

	if all.ok != all.sent {
		t.Errorf("failed requests during the certificate change: %v", all)
	}
	if staleAfterSwitch > 0 {
		t.Errorf("%d handshakes started after the switch got the old certificate", staleAfterSwitch)
	}
	if oldHS == 0 || newHS == 0 {
		t.Errorf("the load should have made handshakes with both certificates (old %d, new %d)", oldHS, newHS)
	}
	if s.pid() != pid || s.exited() {
		t.Errorf("the server restarted or exited")
	}
}

// handshakeSerial makes a fresh TLS connection and returns the leaf serial.
func handshakeSerial(t *testing.T, f *fixture, addr string) string {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, f.tlsConfig())
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
