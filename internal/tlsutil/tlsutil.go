// Package tlsutil holds the public listener's TLS: a hardened tls.Config, a
// certificate that is reloaded when its files change, and the self-signed
// certificate of `authserver dev`.
package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ServerConfig returns the public listener's TLS settings: TLS 1.2 or newer,
// and for 1.2 only ECDHE key exchange with AEAD ciphers (1.3's suites are all
// AEAD and not configurable). getCert supplies the certificate per handshake.
func ServerConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: getCert,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// Reloader serves a certificate from files and picks up new files without a
// restart: on Reload, and on a handshake at most once per CheckEvery (unless
// the caller watches the files itself), it compares a hash of the files'
// contents and reloads when they changed. A broken new pair is reported
// through OnReload and the old certificate stays in use.
type Reloader struct {
	certFile, keyFile string
	checkEvery        time.Duration
	now               func() time.Time
	onReload          func(cert *x509.Certificate, err error)

	cur       atomic.Pointer[loaded]
	nextCheck atomic.Int64 // unix nanos
	mu        sync.Mutex   // one reload at a time
}

type loaded struct {
	cert  *tls.Certificate
	leaf  *x509.Certificate
	stamp string // hash of both files' contents
}

// ReloaderOptions tune a Reloader; zero values are fine.
type ReloaderOptions struct {
	CheckEvery time.Duration                           // default 1s; negative: only on Reload (the caller watches)
	Now        func() time.Time                        // default time.Now
	OnReload   func(cert *x509.Certificate, err error) // called after each reload attempt
}

// NewReloader loads the pair once; an error here means the server must not
// start.
func NewReloader(certFile, keyFile string, o ReloaderOptions) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, checkEvery: o.CheckEvery, now: o.Now, onReload: o.OnReload}
	if r.checkEvery == 0 {
		r.checkEvery = time.Second
	}
	if r.now == nil {
		r.now = time.Now
	}
	l, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(l)
	r.nextCheck.Store(r.now().Add(r.checkEvery).UnixNano())
	return r, nil
}

// Leaf returns the certificate currently served.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().leaf }

// GetCertificate implements tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := r.now().UnixNano()
	if next := r.nextCheck.Load(); r.checkEvery > 0 && now >= next && r.nextCheck.CompareAndSwap(next, now+int64(r.checkEvery)) {
		r.maybeReload()
	}
	return r.cur.Load().cert, nil
}

// Reload checks the files now (SIGHUP does this), reloading if they changed.
func (r *Reloader) Reload() error { return r.maybeReload() }

func (r *Reloader) maybeReload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp, err := r.stamp()
	if err != nil {
		r.report(nil, err)
		return err
	}
	if stamp == r.cur.Load().stamp {
		return nil
	}
	l, err := r.load()
	if err != nil {
		r.report(nil, err)
		return err
	}
	r.cur.Store(l)
	r.report(l.leaf, nil)
	return nil
}

func (r *Reloader) report(leaf *x509.Certificate, err error) {
	if r.onReload != nil {
		r.onReload(leaf, err)
	}
}

// stamp hashes the contents of both files: a rewrite within one mtime tick,
// or to the same size, is still a change.
func (r *Reloader) stamp() (string, error) {
	_, stamp, err := r.read()
	return stamp, err
}

// read reads both files once, for their stamp and for the key pair.
func (r *Reloader) read() (pems [2][]byte, stamp string, err error) {
	h := sha256.New()
	for i, f := range []string{r.certFile, r.keyFile} {
		if pems[i], err = os.ReadFile(f); err != nil {
			return pems, "", fmt.Errorf("tls: %w", err)
		}
		sum := sha256.Sum256(pems[i])
		h.Write(sum[:])
	}
	return pems, string(h.Sum(nil)), nil
}

func (r *Reloader) load() (*loaded, error) {
	pems, stamp, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(pems[0], pems[1])
	if err != nil {
		return nil, fmt.Errorf("tls: loading %s and %s: %w", r.certFile, r.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: parsing %s: %w", r.certFile, err)
		}
	}
	return &loaded{cert: &cert, leaf: leaf, stamp: stamp}, nil
}

// SelfSigned makes sure dir holds a self-signed ECDSA P-256 certificate for
// localhost, 127.0.0.1 and ::1 that is valid at now for at least a day, and
// returns the paths of the certificate and key files.
func SelfSigned(dir string, now time.Time) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "dev-cert.pem"), filepath.Join(dir, "dev-key.pem")
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil && now.Add(24*time.Hour).Before(leaf.NotAfter) {
			return certFile, keyFile, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "authserver dev"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so curl --cacert accepts it as its own anchor
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// writeFileAtomic writes through a temporary file and a rename, so a reader
// (or the Reloader) never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
