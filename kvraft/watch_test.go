package kvraft_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// mirror is a Watcher that copies the store: what an index sees.
type mirror struct {
	mu     sync.Mutex
	kvs    map[string]string
	resets int
}

func newMirror() *mirror { return &mirror{kvs: map[string]string{}} }

func (m *mirror) Reset(s *kvstore.Store) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resets++
	clear(m.kvs)
	s.Ascend(nil, nil, func(kv kvstore.KV) bool {
		m.kvs[string(kv.Key)] = string(kv.Value)
		return true
	})
}

func (m *mirror) Put(kv kvstore.KV) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kvs[string(kv.Key)] = string(kv.Value)
}

func (m *mirror) Delete(key []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.kvs, string(key))
}

// checkMirror fails unless, inside one View of n, m holds exactly the
// store's pairs.
func checkMirror(t *testing.T, n *kvraft.Node, m *mirror) {
	t.Helper()
	err := n.View(context.Background(), kvraft.ReadOptions{Consistency: kvraft.Eventual}, func(st kvraft.State) error {
		items, _ := st.Range(kvraft.RangeRequest{Start: []byte{0}})
		store := map[string]string{}
		for _, kv := range items {
			store[string(kv.Key)] = string(kv.Value)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if !maps.Equal(store, m.kvs) {
			return fmt.Errorf("member %d at %d: the watcher has %d pairs, the store %d", n.ID(), st.Index, len(m.kvs), len(store))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWatcherFollowsTheStore: a Config.Watcher sees every put, delete and
// transaction branch as it is applied, is rebuilt from the snapshot a
// lagging member installs and from the one a restart reads, and View
// shows it and the store at one state.
func TestWatcherFollowsTheStore(t *testing.T) {
	ws := map[uint64]*mirror{}
	var mu sync.Mutex
	c := newCluster(t, 3, func(cfg *kvraft.Config) {
		cfg.SnapshotCount = 50
		cfg.SnapshotCatchUpEntries = 10
		m := newMirror()
		mu.Lock()
		ws[cfg.ID] = m
		mu.Unlock()
		cfg.Watcher = m
	})
	lead := c.waitLeader()
	ln := c.node(lead)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	writeKeys(t, ln, "a", 30)
	if _, err := ln.Batch(ctx, []kvraft.Op{{Type: kvraft.OpDelete, Key: []byte("a/00003")},
		{Type: kvraft.OpDelete, Key: []byte("never-there")}, {Type: kvraft.OpPut, Key: []byte("a/00004"), Value: []byte("new")}}); err != nil {
		t.Fatal(err)
	}
	// A transaction applies one branch: the watcher sees that one only.
	if _, _, err := ln.Txns(ctx, []kvraft.Txn{
		{If: []kvraft.Compare{{Key: []byte("a/00005"), Target: kvraft.TargetExists, Op: kvraft.CmpEqual}},
			Then: []kvraft.Op{{Type: kvraft.OpDelete, Key: []byte("a/00005")}},
			Else: []kvraft.Op{{Type: kvraft.OpPut, Key: []byte("else"), Value: []byte("x")}}},
		{If: []kvraft.Compare{{Key: []byte("absent"), Target: kvraft.TargetExists, Op: kvraft.CmpEqual}},
			Then: []kvraft.Op{{Type: kvraft.OpPut, Key: []byte("then"), Value: []byte("x")}},
			Else: []kvraft.Op{{Type: kvraft.OpPut, Key: []byte("else2"), Value: []byte("y")}}},
	}); err != nil {
		t.Fatal(err)
	}
	idx := put(t, ln, "last", "1")
	c.waitApplied(idx)
	for _, n := range c.running() {
		mu.Lock()
		m := ws[n.ID()]
		mu.Unlock()
		checkMirror(t, n, m)
		if _, ok := m.kvs["a/00005"]; ok || m.kvs["else2"] != "y" || m.kvs["a/00004"] != "new" {
			t.Fatalf("member %d: watcher missed a write: %v", n.ID(), m.kvs)
		}
	}

	// A lagging member catches up by a snapshot: its watcher is reset
	// from it, then follows the entries after it.
	lag := uint64(1)
	if lag == lead {
		lag = 2
	}
	c.crash(lag)
	idx = writeKeys(t, ln, "b", 500)
	c.waitApplied(idx)
	for deadline := time.Now().Add(10 * time.Second); ln.LogFirstIndex() <= 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("leader log not compacted")
		}
	}
	n := c.start(lag)
	c.waitApplied(idx)
	idx = put(t, ln, "after", "snapshot")
	c.waitApplied(idx)
	mu.Lock()
	m := ws[lag]
	mu.Unlock()
	checkMirror(t, n, m)
	if m.resets < 2 { // at start, and at the snapshot
		t.Errorf("lagging member's watcher was reset %d times, want the snapshot's too", m.resets)
	}

	// A restart reads the last snapshot and replays the log after it.
	c.stop(lag)
	n = c.start(lag)
	c.waitApplied(idx)
	mu.Lock()
	m = ws[lag]
	mu.Unlock()
	checkMirror(t, n, m)
}
