package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/tlsfiles"
	"github.com/pennyhq/penny/internal/tlsfiles/tlstest"
	"github.com/pennyhq/penny/wire"
)

// TestTLS serves the API over HTTPS with client certificates: an agent
// with one streams over HTTP/2, an agent without one is refused and
// stores nothing, and reads stay open to any client that trusts the CA.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	sc, sk := ca.Server(t, "aggregator")
	cc, ck := ca.ClientInGroups(t, "with-cert", authn.GroupAgents)
	rc, rk := ca.ClientInGroups(t, "reader", authn.GroupAdmins)
	cfg := config(t.TempDir(), "127.0.0.1:0")
	cfg.TLS = tlsfiles.Files{CertFile: sc, KeyFile: sk, CAFile: ca.File}
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	base := "https://" + s.Addr.String()

	ship := func(name string, f tlsfiles.Files, log io.Writer) *prometheus.Registry {
		t.Helper()
		tc, err := tlsfiles.Client(f)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: name})
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		sh, err := shipper.New(shipper.Config{URLs: []string{base}, TLS: tc, Registerer: reg,
			Logger:     slog.New(slog.NewTextHandler(log, nil)),
			BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, enc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go sh.Run(ctx)
		t0 := time.Now().Truncate(time.Second)
		for i := range 3 {
			if err := sh.Submit(snapshot(t0.Add(time.Duration(i)*time.Second), 100, uint64(i)*1000, "/a")); err != nil {
				t.Fatal(err)
			}
		}
		return reg
	}
	good := ship("with-cert", tlsfiles.Files{CertFile: cc, KeyFile: ck, CAFile: ca.File}, io.Discard)
	var badLog syncBuffer
	bad := ship("without-cert", tlsfiles.Files{CAFile: ca.File}, &badLog)
	waitFor(t, "frames over TLS acknowledged", func() bool { return testutil.ToFloat64(acked(good)) == 3 })
	waitFor(t, "the agent without a certificate refused", func() bool {
		return strings.Contains(badLog.String(), "401 Unauthorized") && strings.Contains(badLog.String(), "client certificate")
	})

	reader, err := tlsfiles.Client(tlsfiles.Files{CertFile: rc, KeyFile: rk, CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: reader, ForceAttemptHTTP2: true}}
	get := func(params string) *query.Containers {
		t.Helper()
		resp, err := client.Get(base + gateway.ContainersPath + "?consistency=linearizable&" + params)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("read with an admin's certificate: %s over %s", resp.Status, resp.Proto)
		}
		var c query.Containers
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	if c := get("node=with-cert"); len(c.Containers) != 1 || c.Containers[0].NetRxBytes != 1000 {
		t.Fatalf("the agent with a certificate: %+v", c.Containers)
	}
	if c := get("node=without-cert"); len(c.Containers) != 0 || testutil.ToFloat64(acked(bad)) != 0 {
		t.Fatalf("the agent without a certificate stored %+v, %v frames acknowledged",
			c.Containers, testutil.ToFloat64(acked(bad)))
	}

	anonymousTLS, err := tlsfiles.Client(tlsfiles.Files{CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	anonymous := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: anonymousTLS, ForceAttemptHTTP2: true}}
	// Reads need a certificate: today's main served them to anyone.
	if resp, err := anonymous.Get(base + gateway.ContainersPath); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("read without a client certificate: %s, want 401", resp.Status)
	}
	// Health checks need no certificate: kubelet probes carry none.
	if resp, err := anonymous.Get(base + "/v1/health"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		t.Fatalf("health without a client certificate: %s", resp.Status)
	}
	// The prices in force need an identity, any.
	if resp, err := client.Get(base + pricing.Path); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		t.Fatalf("prices with a client certificate: %s", resp.Status)
	}
	// The KV API writes only with a certificate too.
	req, _ := http.NewRequest(http.MethodPut, base+"/v1/kv/x", strings.NewReader("v"))
	resp, err := anonymous.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("KV write without a client certificate: %s, want 401", resp.Status)
	}
	// Plain HTTP is not served next to HTTPS.
	if resp, err := h2c().Get("http://" + s.Addr.String() + gateway.ContainersPath); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}
}

// TestPprofNeedsAClientCertificate checks that with a client CA the
// profiles are served only to admins: clients with a certificate it signed
// in group penny:admins.
func TestPprofNeedsAClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	sc, sk := ca.Server(t, "aggregator")
	cc, ck := ca.ClientInGroups(t, "admin", authn.GroupAdmins)
	nc, nk := ca.Client(t, "someone")
	cfg := config(t.TempDir(), "127.0.0.1:0")
	cfg.TLS = tlsfiles.Files{CertFile: sc, KeyFile: sk, CAFile: ca.File}
	cfg.EnablePprof = true
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	base := "https://" + s.Addr.String()
	client := func(f tlsfiles.Files) *http.Client {
		t.Helper()
		tc, err := tlsfiles.Client(f)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	anonymous := client(tlsfiles.Files{CAFile: ca.File})
	admin := client(tlsfiles.Files{CertFile: cc, KeyFile: ck, CAFile: ca.File})
	someone := client(tlsfiles.Files{CertFile: nc, KeyFile: nk, CAFile: ca.File})
	tests := []struct {
		name   string
		client *http.Client
		path   string
		status int
	}{
		{"index without a certificate", anonymous, "/debug/pprof/", http.StatusUnauthorized},
		{"a profile without a certificate", anonymous, "/debug/pprof/goroutine?debug=1", http.StatusUnauthorized},
		{"cpu profile without a certificate", anonymous, "/debug/pprof/profile?seconds=1", http.StatusUnauthorized},
		{"trace without a certificate", anonymous, "/debug/pprof/trace?seconds=1", http.StatusUnauthorized},
		{"index with a certificate, no admin", someone, "/debug/pprof/", http.StatusForbidden},
		{"index with a certificate", admin, "/debug/pprof/", http.StatusOK},
		{"a profile with a certificate", admin, "/debug/pprof/goroutine?debug=1", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.client.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s: %s, want %d", tt.path, resp.Status, tt.status)
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	sc, _ := ca.Server(t, "aggregator")
	for _, tc := range []struct {
		name string
		f    tlsfiles.Files
		want string
	}{
		{"certificate without key", tlsfiles.Files{CertFile: sc}, "needs its key"},
		{"client CA without a certificate", tlsfiles.Files{CAFile: ca.File}, "needs the server's own certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t.TempDir(), "127.0.0.1:0")
			cfg.TLS = tc.f
			_, err := server.Start(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
