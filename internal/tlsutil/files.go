package tlsutil

import "crypto/x509"

// Files returns the certificate and key files the Reloader serves from.
func (r *Reloader) Files() (certFile, keyFile string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.certFile, r.keyFile
}

// SetFiles switches to another certificate and key file pair, for a
// configuration reload that changed tls.cert_file or tls.key_file. The new
// pair is loaded first: on error nothing changes and the old pair stays in
// use and watched. On success new handshakes get the new certificate, later
// checks watch the new files, and the new leaf is returned. OnReload is not
// called: the caller reports the reload it is part of.
func (r *Reloader) SetFiles(certFile, keyFile string) (*x509.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldCert, oldKey := r.certFile, r.keyFile
	r.certFile, r.keyFile = certFile, keyFile
	l, err := r.load()
	if err != nil {
		r.certFile, r.keyFile = oldCert, oldKey
		return nil, err
	}
	r.cur.Store(l)
	return l.leaf, nil
}
