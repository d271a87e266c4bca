package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/internal/tlsfiles/tlstest"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	cert, key := ca.Server(t, "server")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		server bool
		f      Files
		want   string
		is     error
	}{
		{name: "certificate without key", f: Files{CertFile: cert}, is: ErrNoPair},
		{name: "key without certificate", server: true, f: Files{KeyFile: key}, is: ErrNoPair},
		{name: "server without certificate", server: true, f: Files{CAFile: ca.File}, want: "needs a certificate"},
		{name: "ca file without PEM", f: Files{CAFile: notPEM}, want: "no PEM certificate"},
		{name: "missing ca file", server: true, f: Files{CertFile: cert, KeyFile: key, CAFile: filepath.Join(dir, "nope")}, want: "read ca file"},
		{name: "key that is not a key", f: Files{CertFile: cert, KeyFile: notPEM}, want: "tls key pair"},
		{name: "missing certificate", server: true, f: Files{CertFile: filepath.Join(dir, "nope"), KeyFile: key}, want: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.server {
				_, err = Server(tc.f)
			} else {
				_, err = Client(tc.f)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// serve accepts TLS connections with cfg and sends each the serial of the
// client certificate it verified ("none" without one).
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				cs := tc.ConnectionState()
				msg := "none"
				if VerifiedClient(&cs) {
					msg = cs.VerifiedChains[0][0].SerialNumber.String()
				}
				io.WriteString(tc, msg)
			}
			tc.Close()
		}
	}()
	return ln.Addr().String()
}

// dial connects with cfg and returns the server's leaf serial and what the
// server said about the client.
func dial(t *testing.T, addr string, cfg *tls.Config) (*big.Int, string, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, string(b), nil
}

func serialOf(t *testing.T, file string) *big.Int {
	t.Helper()
	c, err := tls.LoadX509KeyPair(file, strings.TrimSuffix(file, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x.SerialNumber
}

func TestHandshakes(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	other := tlstest.NewCA(t, dir, "other")
	sc, sk := ca.Server(t, "server")
	cc, ck := ca.Client(t, "agent")
	oc, ok := other.Client(t, "stranger")
	srv, err := Server(Files{CertFile: sc, KeyFile: sk, CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)

	for _, tc := range []struct {
		name    string
		f       Files
		said    string // "" for the client's serial
		failure string
	}{
		{name: "client certificate verified", f: Files{CertFile: cc, KeyFile: ck, CAFile: ca.File}},
		{name: "no client certificate", f: Files{CAFile: ca.File}, said: "none"},
		{name: "server not trusted", f: Files{CAFile: other.File}, failure: "certificate signed by unknown authority"},
		{name: "client of another CA", f: Files{CertFile: oc, KeyFile: ok, CAFile: ca.File}, failure: "unknown certificate authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Client(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			_, said, err := dial(t, addr, cfg)
			if tc.failure != "" {
				if err == nil || !strings.Contains(err.Error(), tc.failure) {
					t.Fatalf("error %v, want %q", err, tc.failure)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.said
			if want == "" {
				want = serialOf(t, tc.f.CertFile).String()
			}
			if said != want {
				t.Fatalf("server saw client %q, want %q", said, want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old := recheck
	recheck = 10 * time.Millisecond
	t.Cleanup(func() { recheck = old })
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	sc, sk := ca.Server(t, "server")
	srv, err := Server(Files{CertFile: sc, KeyFile: sk})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	cli, err := Client(Files{CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, want *big.Int) {
		t.Helper()
		time.Sleep(3 * recheck)
		got, _, err := dial(t, addr, cli)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("%s: server presented serial %v, want %v", what, got, want)
		}
	}
	first := serialOf(t, sc)
	check("before rotation", first)

	ca.Server(t, "server") // cert-manager renews the Secret
	second := serialOf(t, sc)
	check("after rotation", second)

	// A rotation half done (a key that does not match) keeps the last pair.
	if err := os.WriteFile(sk, []byte("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("with a broken key file", second)
}
