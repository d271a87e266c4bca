package kvraft_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/faultnet"
)

// testCluster is an in-process cluster on a fault-injecting network.
type testCluster struct {
	t       *testing.T
	net     *faultnet.Network
	dir     string
	members []kvraft.Member
	tune    func(*kvraft.Config)

	mu    sync.Mutex
	nodes map[uint64]*kvraft.Node
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("KVRAFT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newCluster(t *testing.T, size int, tune func(*kvraft.Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, net: faultnet.New(uint64(time.Now().UnixNano())), dir: t.TempDir(), tune: tune, nodes: map[uint64]*kvraft.Node{}}
	for i := 1; i <= size; i++ {
		c.members = append(c.members, kvraft.Member{ID: uint64(i), PeerURL: fmt.Sprintf("http://node%d:1", i)})
	}
	for _, m := range c.members {
		c.start(m.ID)
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *testCluster) config(id uint64) kvraft.Config {
	cfg := kvraft.Config{
		ID:             id,
		DataDir:        filepath.Join(c.dir, fmt.Sprint(id)),
		InitialCluster: c.members,
		APIURL:         fmt.Sprintf("http://api%d:1", id),
		NewTransport:   c.net.Factory(id),
		TickInterval:   10 * time.Millisecond,
		Logger:         testLogger(c.t).With("test", c.t.Name()),
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

func (c *testCluster) startWith(cfg kvraft.Config) *kvraft.Node {
	c.t.Helper()
	n, err := kvraft.Start(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("start member %d: %v", cfg.ID, err)
	}
	c.mu.Lock()
	c.nodes[cfg.ID] = n
	c.mu.Unlock()
	return n
}

func (c *testCluster) start(id uint64) *kvraft.Node {
	c.t.Helper()
	return c.startWith(c.config(id))
}

func (c *testCluster) stop(id uint64) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n != nil {
		n.Stop()
	}
}

// crash stops member id abruptly (no leadership transfer).
func (c *testCluster) crash(id uint64) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n != nil {
		n.Crash()
	}
}

func (c *testCluster) stopAll() {
	c.mu.Lock()
	ids := make([]uint64, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.stop(id)
	}
	c.net.Wait()
}

func (c *testCluster) node(id uint64) *kvraft.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *testCluster) running() []*kvraft.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*kvraft.Node
	for _, m := range c.members {
		if n := c.nodes[m.ID]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// waitLeader waits until all running nodes agree on a running leader.
func (c *testCluster) waitLeader() uint64 {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, n := range c.running() {
			l := n.Status().Leader
			if l == 0 || (lead != 0 && l != lead) {
				agree = false
				break
			}
			lead = l
		}
		if agree && lead != 0 && c.node(lead) != nil {
			return lead
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader elected within 20s")
	return 0
}

// waitApplied waits until every running node has applied idx.
func (c *testCluster) waitApplied(idx uint64) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range c.running() {
			if n.Status().AppliedIndex < idx {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range c.running() {
		c.t.Logf("member %d: %+v", n.ID(), n.Status())
	}
	c.t.Fatalf("index %d not applied everywhere within 30s", idx)
}

// put retries a put until it succeeds (through elections).
func put(t *testing.T, n *kvraft.Node, key, value string) uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		idx, err := n.Put(ctx, []byte(key), []byte(value))
		cancel()
		if err == nil {
			return idx
		}
		retry := errors.Is(err, kvraft.ErrTimeout) || errors.Is(err, kvraft.ErrNoLeader)
		if !retry || time.Now().After(deadline) {
			t.Fatalf("put %s on %d: %v", key, n.ID(), err)
		}
	}
}

func get(t *testing.T, n *kvraft.Node, key string, opts kvraft.ReadOptions) kvraft.GetResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := n.Get(ctx, []byte(key), opts)
	if err != nil {
		t.Fatalf("get %s on %d (%v): %v", key, n.ID(), opts.Consistency, err)
	}
	return r
}

var linearizable = kvraft.ReadOptions{Consistency: kvraft.Linearizable}
