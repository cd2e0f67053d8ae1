package tlsutil

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReloaderSetFiles switches a Reloader to another pair of files: a
// broken pair changes nothing, a good one is served at once and its files
// are the ones watched from then on.
func TestReloaderSetFiles(t *testing.T) {
	dir := t.TempDir()
	pair := func(name string) (cert, key string, leaf *x509.Certificate) {
		t.Helper()
		cert, key, err := SelfSigned(filepath.Join(dir, name), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReloader(cert, key, ReloaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cert, key, r.Leaf()
	}
	cert1, key1, leaf1 := pair("one")
	cert2, key2, leaf2 := pair("two")
	_, _, leaf3 := pair("three")

	r, err := NewReloader(cert1, key1, ReloaderOptions{OnReload: func(*x509.Certificate, error) {}})
	if err != nil {
		t.Fatal(err)
	}
	served := func() *x509.Certificate {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		l, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	if _, err := r.SetFiles(cert1, key2); err == nil {
		t.Fatal("SetFiles accepted a certificate with another certificate's key")
	}
	if _, err := r.SetFiles(filepath.Join(dir, "missing.pem"), key2); err == nil {
		t.Fatal("SetFiles accepted a missing file")
	}
	if c, k := r.Files(); c != cert1 || k != key1 || !served().Equal(leaf1) || !r.Leaf().Equal(leaf1) {
		t.Fatalf("a failed SetFiles changed the Reloader: files %s %s", c, k)
	}

	leaf, err := r.SetFiles(cert2, key2)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(leaf2) || !served().Equal(leaf2) || !r.Leaf().Equal(leaf2) {
		t.Fatal("SetFiles did not switch to the new certificate")
	}
	if c, k := r.Files(); c != cert2 || k != key2 {
		t.Fatalf("Files = %s %s after SetFiles", c, k)
	}

	// The new files are the watched ones: replacing them is picked up.
	for _, f := range [][2]string{{"dev-cert.pem", cert2}, {"dev-key.pem", key2}} {
		data, err := os.ReadFile(filepath.Join(dir, "three", f[0]))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFileAtomic(f[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if !served().Equal(leaf3) {
		t.Fatal("replacing the switched-to files was not picked up")
	}
}
