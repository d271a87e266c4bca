package transport_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/pennyhq/penny/internal/tlsfiles/tlstest"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/transport"
)

type member struct {
	cfg  kvraft.Config
	addr string
	node *kvraft.Node
}

// startCluster runs size members over rafthttp on loopback.
func startCluster(t *testing.T, size int, tls *transport.TLS, tune func(*kvraft.Config)) []*member {
	t.Helper()
	scheme := "http"
	if tls != nil {
		scheme = "https"
	}
	var ms []*member
	var ic []kvraft.Member
	for i := 1; i <= size; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		ms = append(ms, &member{addr: addr})
		ic = append(ic, kvraft.Member{ID: uint64(i), PeerURL: scheme + "://" + addr})
	}
	dir := t.TempDir()
	for i, m := range ms {
		id := uint64(i + 1)
		addr := m.addr
		m.cfg = kvraft.Config{
			ID: id, DataDir: filepath.Join(dir, fmt.Sprint(id)), InitialCluster: ic,
			TickInterval: 20 * time.Millisecond,
			NewTransport: func(r kvraft.Receiver) (kvraft.Transport, error) {
				return transport.New(transport.Config{ID: id, ClusterToken: "test", ListenAddr: addr,
					AdvertiseURL: scheme + "://" + addr, TLS: tls}, r)
			},
		}
		if tune != nil {
			tune(&m.cfg)
		}
		m.start(t)
	}
	t.Cleanup(func() {
		for _, m := range ms {
			if m.node != nil {
				m.node.Stop()
			}
		}
	})
	return ms
}

func (m *member) start(t *testing.T) {
	t.Helper()
	n, err := kvraft.Start(context.Background(), m.cfg)
	if err != nil {
		t.Fatalf("start %d: %v", m.cfg.ID, err)
	}
	m.node = n
}

func putRetry(t *testing.T, n *kvraft.Node, k, v string) uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		idx, err := n.Put(ctx, []byte(k), []byte(v))
		cancel()
		if err == nil {
			return idx
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v", k, err)
		}
	}
}

func waitApplied(t *testing.T, n *kvraft.Node, idx uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n.Status().AppliedIndex < idx {
		if time.Now().After(deadline) {
			t.Fatalf("member %d stuck at %d, want %d", n.ID(), n.Status().AppliedIndex, idx)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClusterOverRaftHTTP(t *testing.T) {
	ms := startCluster(t, 3, nil, func(c *kvraft.Config) { c.SnapshotCount = 50; c.SnapshotCatchUpEntries = 10 })
	idx := putRetry(t, ms[1].node, "k", "v")
	for _, m := range ms {
		waitApplied(t, m.node, idx)
	}
	// A member that misses far more than the kept log catches up through a
	// snapshot sent over rafthttp's pipeline.
	ms[2].node.Stop()
	ms[2].node = nil
	for i := range 200 {
		idx = putRetry(t, ms[0].node, fmt.Sprintf("k%d", i), "v")
	}
	ms[2].start(t)
	waitApplied(t, ms[2].node, idx)
	r, err := ms[2].node.Get(context.Background(), []byte("k199"), kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err != nil || !r.Found {
		t.Fatalf("get after catch-up: %+v, %v", r, err)
	}
}

func TestClusterOverMutualTLS(t *testing.T) {
	tls := writeCerts(t)
	ms := startCluster(t, 3, tls, nil)
	idx := putRetry(t, ms[0].node, "secure", "yes")
	for _, m := range ms {
		waitApplied(t, m.node, idx)
	}
}

func TestConfigValidate(t *testing.T) {
	good := transport.Config{ID: 1, ClusterToken: "t", ListenAddr: "127.0.0.1:0", AdvertiseURL: "http://127.0.0.1:1"}
	tests := []struct {
		name   string
		mutate func(*transport.Config)
		ok     bool
	}{
		{"good", func(*transport.Config) {}, true},
		{"no id", func(c *transport.Config) { c.ID = 0 }, false},
		{"no token", func(c *transport.Config) { c.ClusterToken = "" }, false},
		{"no listener", func(c *transport.Config) { c.ListenAddr = "" }, false},
		{"bad url", func(c *transport.Config) { c.AdvertiseURL = "127.0.0.1:1" }, false},
		{"tls without key", func(c *transport.Config) { c.TLS = &transport.TLS{CertFile: "c"} }, false},
		{"client auth without ca", func(c *transport.Config) {
			c.TLS = &transport.TLS{CertFile: "c", KeyFile: "k", ClientCertAuth: true}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if transport.ClusterID("a") == transport.ClusterID("b") {
		t.Fatal("different tokens give the same cluster id")
	}
}

// writeCerts creates a CA and one certificate for 127.0.0.1 that serves
// and authenticates every member.
func writeCerts(t *testing.T) *transport.TLS {
	t.Helper()
	ca := tlstest.NewCA(t, t.TempDir(), "ca")
	cert, key := ca.Peer(t, "member")
	return &transport.TLS{CertFile: cert, KeyFile: key, TrustedCAFile: ca.File, ClientCertAuth: true}
}
