package tlsutil

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCert is a self-signed certificate for localhost/127.0.0.1 with a
// chosen serial, PEM-encoded, plus the parsed leaf.
type testCert struct {
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
}

func newTestCert(t *testing.T, rsaKey bool, serial int64) testCert {
	t.Helper()
	var priv crypto.Signer
	var err error
	if rsaKey {
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "tlsutil test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		leaf:    leaf,
	}
}

// replaceFile swaps a file's content the way deploy tools do: a new file
// renamed over the old one.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (c testCert) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	replaceFile(t, keyFile, c.keyPEM)
	replaceFile(t, certFile, c.certPEM)
}

// serveTLS accepts on a real TLS listener and completes one handshake per
// connection, then closes it. It returns the listener's address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = c.(*tls.Conn).HandshakeContext(ctx)
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake dials addr with cfg and returns the negotiated state.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	st, err := handshake(addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return st.PeerCertificates[0].SerialNumber.Int64()
}

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func newFakeClock(t time.Time) *fakeClock    { c := &fakeClock{}; c.ns.Store(t.UnixNano()); return c }
func (r *reloadLog) add(leaf *x509.Certificate, err error) {
	r.mu.Lock()
	r.calls = append(r.calls, reloadCall{leaf, err})
	r.mu.Unlock()
}

type reloadCall struct {
	leaf *x509.Certificate
	err  error
}

type reloadLog struct {
	mu    sync.Mutex
	calls []reloadCall
}

func (r *reloadLog) snapshot() []reloadCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]reloadCall(nil), r.calls...)
}

// TestReloaderServesReplacedCertificate runs a real tls.Listen with the
// Reloader's GetCertificate and replaces the files under it: the next
// handshake after the check interval serves the new certificate, with no
// restart; broken replacements keep the old one and are reported.
func TestReloaderServesReplacedCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a, b, c, d := newTestCert(t, false, 1001), newTestCert(t, false, 1002), newTestCert(t, false, 1003), newTestCert(t, false, 1004)
	a.write(t, certFile, keyFile)
	roots := x509.NewCertPool()
	for _, tc := range []testCert{a, b, c, d} {
		roots.AddCert(tc.leaf)
	}

	clk := newFakeClock(time.Now())
	var log reloadLog
	r, err := NewReloader(certFile, keyFile, ReloaderOptions{CheckEvery: time.Minute, Now: clk.Now, OnReload: log.add})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, ServerConfig(r.GetCertificate))

	if got := servedSerial(t, addr, roots); got != 1001 {
		t.Fatalf("serial %d, want 1001", got)
	}

	b.write(t, certFile, keyFile)
	// Within the check interval the files are not looked at.
	if got := servedSerial(t, addr, roots); got != 1001 {
		t.Fatalf("before the check interval: serial %d, want still 1001", got)
	}
	if n := len(log.snapshot()); n != 0 {
		t.Fatalf("OnReload called %d times before the check interval", n)
	}
	clk.Advance(61 * time.Second)
	if got := servedSerial(t, addr, roots); got != 1002 {
		t.Fatalf("after replacing the files: serial %d, want 1002", got)
	}
	calls := log.snapshot()
	if len(calls) != 1 || calls[0].err != nil || calls[0].leaf.SerialNumber.Int64() != 1002 {
		t.Fatalf("OnReload calls = %+v, want one success with serial 1002", calls)
	}
	if r.Leaf().SerialNumber.Int64() != 1002 {
		t.Fatalf("Leaf() serial %d, want 1002", r.Leaf().SerialNumber.Int64())
	}
	// Unchanged files: a later check reloads nothing and reports nothing.
	clk.Advance(61 * time.Second)
	if got := servedSerial(t, addr, roots); got != 1002 {
		t.Fatalf("serial %d, want 1002", got)
	}
	if n := len(log.snapshot()); n != 1 {
		t.Fatalf("OnReload called %d times, want 1 (files unchanged)", n)
	}

	// Garbage in the certificate file: keep serving b, report the error.
	replaceFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"))
	clk.Advance(61 * time.Second)
	if got := servedSerial(t, addr, roots); got != 1002 {
		t.Fatalf("after a broken certificate file: serial %d, want the previous 1002", got)
	}
	calls = log.snapshot()
	if len(calls) != 2 || calls[1].err == nil || calls[1].leaf != nil {
		t.Fatalf("OnReload calls = %+v, want a second call with an error", calls)
	}

	// A valid certificate whose key was not replaced (yet): mismatched pair.
	replaceFile(t, certFile, c.certPEM)
	clk.Advance(61 * time.Second)
	if got := servedSerial(t, addr, roots); got != 1002 {
		t.Fatalf("with a mismatched key: serial %d, want the previous 1002", got)
	}
	calls = log.snapshot()
	if len(calls) != 3 || calls[2].err == nil || !strings.Contains(calls[2].err.Error(), "private key does not match") {
		t.Fatalf("OnReload calls = %+v, want a third call with a key mismatch error", calls)
	}

	// The key arrives: c is served.
	replaceFile(t, keyFile, c.keyPEM)
	clk.Advance(61 * time.Second)
	if got := servedSerial(t, addr, roots); got != 1003 {
		t.Fatalf("after fixing the pair: serial %d, want 1003", got)
	}

	// Missing files (e.g. mid-rotation): keep serving, report.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("Reload with a missing key file: no error")
	}
	if got := servedSerial(t, addr, roots); got != 1003 {
		t.Fatalf("with the key file missing: serial %d, want 1003", got)
	}

	// Reload (SIGHUP) checks at once, without waiting for the interval.
	d.write(t, certFile, keyFile)
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := servedSerial(t, addr, roots); got != 1004 {
		t.Fatalf("after Reload: serial %d, want 1004", got)
	}
	last := log.snapshot()
	if l := last[len(last)-1]; l.err != nil || l.leaf.SerialNumber.Int64() != 1004 {
		t.Fatalf("last OnReload call = %+v, want success with 1004", l)
	}
}

func TestNewReloaderRefusesBrokenPair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := NewReloader(certFile, keyFile, ReloaderOptions{}); err == nil {
		t.Fatal("missing files: no error")
	}
	a, b := newTestCert(t, false, 1), newTestCert(t, false, 2)
	replaceFile(t, certFile, a.certPEM)
	replaceFile(t, keyFile, b.keyPEM)
	if _, err := NewReloader(certFile, keyFile, ReloaderOptions{}); err == nil {
		t.Fatal("mismatched pair: no error")
	}
}

func TestSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	now := time.Now()
	certFile, keyFile, err := SelfSigned(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("key file mode %v: readable by others", perm)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		t.Fatal("certificate file holds no PEM certificate")
	}
	blk, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName: name, Roots: roots, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots, CurrentTime: now}); err == nil {
		t.Error("the dev certificate verifies for example.com")
	}

	// A real handshake with the file as the only root, by IP and by name.
	r, err := NewReloader(certFile, keyFile, ReloaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, ServerConfig(r.GetCertificate))
	for _, sn := range []string{"", "localhost"} {
		cfg := &tls.Config{RootCAs: roots, ServerName: sn}
		if sn == "" {
			cfg.ServerName = "127.0.0.1"
		}
		if _, err := handshake(addr, cfg); err != nil {
			t.Errorf("handshake with ServerName %q: %v", cfg.ServerName, err)
		}
	}

	// A second call while the certificate is still good keeps it (curl
	// --cacert keeps working across dev restarts).
	keyPEM, _ := os.ReadFile(keyFile)
	if _, _, err := SelfSigned(dir, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	certPEM2, _ := os.ReadFile(certFile)
	keyPEM2, _ := os.ReadFile(keyFile)
	if !bytes.Equal(certPEM, certPEM2) || !bytes.Equal(keyPEM, keyPEM2) {
		t.Error("SelfSigned replaced a certificate that was still valid")
	}
	// Near its expiry it is replaced.
	later := leaf.NotAfter.Add(-time.Hour)
	if _, _, err := SelfSigned(dir, later); err != nil {
		t.Fatal(err)
	}
	certPEM3, _ := os.ReadFile(certFile)
	blk3, _ := pem.Decode(certPEM3)
	leaf3, err := x509.ParseCertificate(blk3.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if leaf3.SerialNumber.Cmp(leaf.SerialNumber) == 0 || !leaf3.NotAfter.After(later.Add(24*time.Hour)) {
		t.Errorf("certificate expiring at %v was not renewed at %v (new NotAfter %v)", leaf.NotAfter, later, leaf3.NotAfter)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Errorf("renewed pair does not load: %v", err)
	}
}

// allSuites lists every suite crypto/tls implements, secure or not.
func allSuites() []*tls.CipherSuite {
	return append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
}

func suiteIDs() []uint16 {
	var ids []uint16
	for _, s := range allSuites() {
		ids = append(ids, s.ID)
	}
	return ids
}

func supportsTLS12(s *tls.CipherSuite) bool {
	for _, v := range s.SupportedVersions {
		if v == tls.VersionTLS12 {
			return true
		}
	}
	return false
}

// TestServerConfigPosture offers old protocol versions and each TLS 1.2 suite
// alone to a real listener using ServerConfig, and the same client to a
// permissive control listener with the same certificate, so a refusal is
// known to come from the configuration and not from the client.
func TestServerConfigPosture(t *testing.T) {
	for _, kt := range []struct {
		name string
		rsa  bool
	}{{"ecdsa", false}, {"rsa", true}} {
		t.Run(kt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			tc := newTestCert(t, kt.rsa, 7)
			tc.write(t, certFile, keyFile)
			r, err := NewReloader(certFile, keyFile, ReloaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			hardened := serveTLS(t, ServerConfig(r.GetCertificate))
			pair, err := tls.X509KeyPair(tc.certPEM, tc.keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			control := serveTLS(t, &tls.Config{
				Certificates: []tls.Certificate{pair},
				MinVersion:   tls.VersionTLS10,
				CipherSuites: suiteIDs(),
			})
			roots := x509.NewCertPool()
			roots.AddCert(tc.leaf)
			client := func(minV, maxV uint16, suites []uint16) *tls.Config {
				return &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: minV, MaxVersion: maxV, CipherSuites: suites}
			}

			for _, v := range []struct {
				name string
				v    uint16
			}{{"TLS 1.0", tls.VersionTLS10}, {"TLS 1.1", tls.VersionTLS11}} {
				cc := client(v.v, v.v, suiteIDs())
				if _, err := handshake(control, cc); err != nil {
					t.Fatalf("%s control handshake failed, so the check proves nothing: %v", v.name, err)
				}
				if st, err := handshake(hardened, cc); err == nil {
					t.Errorf("%s handshake accepted (version %x)", v.name, st.Version)
				}
			}
			if st, err := handshake(hardened, client(tls.VersionTLS13, tls.VersionTLS13, nil)); err != nil {
				t.Errorf("TLS 1.3 refused: %v", err)
			} else if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "h2" && st.NegotiatedProtocol != "http/1.1" {
				t.Errorf("ALPN %q", st.NegotiatedProtocol)
			}

			var accepted, refused int
			for _, s := range allSuites() {
				if !supportsTLS12(s) {
					continue
				}
				ecdsaAuth := strings.Contains(s.Name, "_ECDSA_")
				if ecdsaAuth == kt.rsa {
					continue // needs the other kind of certificate
				}
				cc := client(tls.VersionTLS12, tls.VersionTLS12, []uint16{s.ID})
				if _, err := handshake(control, cc); err != nil {
					t.Logf("%s: not negotiable by this Go even when allowed (%v); skipped", s.Name, err)
					continue
				}
				aead := strings.Contains(s.Name, "_GCM_") || strings.Contains(s.Name, "_CHACHA20_POLY1305")
				want := aead && strings.HasPrefix(s.Name, "TLS_ECDHE_")
				st, err := handshake(hardened, cc)
				switch {
				case want && err != nil:
					t.Errorf("%s (ECDHE, AEAD) refused: %v", s.Name, err)
				case want && st.CipherSuite != s.ID:
					t.Errorf("%s offered alone, negotiated %s", s.Name, tls.CipherSuiteName(st.CipherSuite))
				case want:
					accepted++
				case err == nil:
					t.Errorf("%s accepted; only ECDHE with AEAD may be", s.Name)
				default:
					refused++
					t.Logf("%s refused as it should be: %v", s.Name, err)
				}
			}
			// P-256 ECDSA: 3 AEAD suites; RSA: 3 too. Non-AEAD: several CBC
			// (and RC4/3DES where Go still has them) per key type.
			if accepted != 3 || refused < 3 {
				t.Errorf("checked %d accepted and %d refused suites; expected 3 and at least 3", accepted, refused)
			}
		})
	}
}

// Make sure errors from a broken file never carry its content: the key file
// could be the thing that is broken.
func TestReloaderErrorDoesNotQuoteKey(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a := newTestCert(t, false, 1)
	a.write(t, certFile, keyFile)
	var log reloadLog
	clk := newFakeClock(time.Now())
	r, err := NewReloader(certFile, keyFile, ReloaderOptions{CheckEvery: time.Second, Now: clk.Now, OnReload: log.add})
	if err != nil {
		t.Fatal(err)
	}
	// Key PEM with its body cut: the base64 body must not show in the error.
	broken := a.keyPEM[:len(a.keyPEM)/2]
	replaceFile(t, keyFile, broken)
	err = r.Reload()
	if err == nil {
		t.Fatal("no error for a truncated key")
	}
	body := strings.Split(string(a.keyPEM), "\n")[1]
	if strings.Contains(err.Error(), body[:20]) {
		t.Fatalf("error quotes the key: %v", err)
	}
}
