package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrNoPair means a certificate was given without its key, or a key
// without its certificate.
var ErrNoPair = errors.New("tlsfiles: a certificate needs its key and a key its certificate")

// Files names the PEM files of one side of a connection.
type Files struct {
	// CertFile and KeyFile are this side's certificate (chain) and key.
	CertFile, KeyFile string
	// CAFile holds the CAs that sign the other side's certificates: the
	// servers' for a client (the system roots when empty), the clients' for
	// a server (client certificates are then verified).
	CAFile string
}

// Validate checks that a certificate comes with its key.
func (f *Files) Validate() error {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return ErrNoPair
	}
	return nil
}

// Enabled reports whether any file is set.
func (f *Files) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.CAFile != "" }

// Server returns a server configuration: the certificate it presents
// (required) and, with a CA file, verification of the client certificates
// that are presented. Handlers decide which paths require one
// (VerifiedClient).
func Server(f Files) (*tls.Config, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.CertFile == "" {
		return nil, errors.New("tlsfiles: a server needs a certificate and a key")
	}
	kp, err := newKeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	if f.CAFile != "" {
		if cfg.ClientCAs, err = pool(f.CAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// Client returns a client configuration: the CAs that sign the servers
// (the system roots without a CA file) and the certificate to present
// when one is set.
func Client(f Files) (*tls.Config, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var err error
	if f.CAFile != "" {
		if cfg.RootCAs, err = pool(f.CAFile); err != nil {
			return nil, err
		}
	}
	if f.CertFile != "" {
		kp, err := newKeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

func pool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read ca file: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ca file %s: no PEM certificate in it", file)
	}
	return p, nil
}

// keyPair is a certificate and key read again when either file's
// modification time or size changes.
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]stamp
	checked time.Time
}

type stamp struct {
	mod  time.Time
	size int64
}

// recheck bounds how often the files are stat'ed: handshakes can be many.
var recheck = time.Second

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.load(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPair) stamps() ([2]stamp, error) {
	var s [2]stamp
	for i, f := range []string{kp.certFile, kp.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return s, err
		}
		s[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

// load reads the pair; the caller holds mu or owns kp.
func (kp *keyPair) load() error {
	s, err := kp.stamps()
	if err != nil {
		return fmt.Errorf("tls key pair: %w", err)
	}
	c, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("tls key pair %s, %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cert, kp.stamp, kp.checked = &c, s, time.Now()
	return nil
}

// get returns the pair, reloaded when the files changed. A pair that fails
// to load (a rotation half written) leaves the previous one in use.
func (kp *keyPair) get() (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if time.Since(kp.checked) < recheck {
		return kp.cert, nil
	}
	kp.checked = time.Now()
	if s, err := kp.stamps(); err == nil && s != kp.stamp {
		_ = kp.load()
	}
	return kp.cert, nil
}

// VerifiedClient reports whether a request came over TLS with a client
// certificate that verified against the server's CA.
func VerifiedClient(cs *tls.ConnectionState) bool {
	return cs != nil && len(cs.VerifiedChains) > 0
}
