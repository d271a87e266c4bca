package kvraft_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
)

// waitNoLeader waits until n knows no leader.
func waitNoLeader(t *testing.T, n *kvraft.Node) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n.Status().Leader != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("member %d still follows %d after 20s", n.ID(), n.Status().Leader)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoLeaderAfterQuorumLoss stops two of three members: the survivor
// (the old leader, which steps down, or a follower) knows no leader, and
// writes and linearizable reads fail with ErrNoLeader instead of a bare
// timeout. A write that fails so was never proposed: it does not commit
// once a quorum is back.
func TestNoLeaderAfterQuorumLoss(t *testing.T) {
	for _, tc := range []struct {
		name          string
		keepTheLeader bool
	}{
		{"survivor was the leader", true},
		{"survivor was a follower", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, func(cfg *kvraft.Config) { cfg.ReadIndexTimeout = 300 * time.Millisecond })
			lead := c.waitLeader()
			// Every member applies it before two of them stop: a write
			// commits on a quorum, which need not include the survivor.
			c.waitApplied(put(t, c.node(lead), "before", "v"))
			var survivor uint64
			for _, n := range c.running() {
				if (n.ID() == lead) == tc.keepTheLeader {
					survivor = n.ID()
					break
				}
			}
			n := c.node(survivor)
			for _, m := range c.members {
				if m.ID != survivor {
					c.crash(m.ID)
				}
			}
			waitNoLeader(t, n)

			short := func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			}
			tests := []struct {
				name string
				call func() error
			}{
				{"put", func() error {
					ctx, cancel := short()
					defer cancel()
					_, err := n.Put(ctx, []byte("during"), []byte("v"))
					return err
				}},
				{"txn", func() error {
					ctx, cancel := short()
					defer cancel()
					_, err := n.Txn(ctx, kvraft.Txn{Then: []kvraft.Op{{Type: kvraft.OpPut, Key: []byte("during"), Value: []byte("t")}}})
					return err
				}},
				{"add member", func() error {
					ctx, cancel := short()
					defer cancel()
					_, err := n.AddMember(ctx, kvraft.Member{ID: 9, PeerURL: "http://node9:1"})
					return err
				}},
				{"linearizable get until the caller's deadline", func() error {
					ctx, cancel := short()
					defer cancel()
					_, err := n.Get(ctx, []byte("before"), linearizable)
					return err
				}},
				{"linearizable range until the read index timeout", func() error {
					_, err := n.Range(context.Background(), kvraft.RangeRequest{Prefix: []byte("b")}, linearizable)
					return err
				}},
				{"bounded get that cannot be served locally", func() error {
					ctx, cancel := short()
					defer cancel()
					_, err := n.Get(ctx, []byte("before"), kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: time.Nanosecond})
					return err
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					err := tt.call()
					if !errors.Is(err, kvraft.ErrNoLeader) {
						t.Fatalf("error %v, want kvraft.ErrNoLeader", err)
					}
				})
			}
			if r := get(t, n, "before", kvraft.ReadOptions{Consistency: kvraft.Eventual}); !r.Found {
				t.Fatal("an eventual read needs no leader, but the key is missing")
			}

			// A quorum again: the writes refused with ErrNoLeader never
			// happened.
			for _, m := range c.members {
				if m.ID != survivor && c.node(m.ID) == nil {
					c.start(m.ID)
					break
				}
			}
			c.waitLeader()
			if r := get(t, n, "during", linearizable); r.Found {
				t.Fatalf("a write refused with ErrNoLeader committed: %+v", r)
			}
			put(t, n, "after", "v")
		})
	}
}
