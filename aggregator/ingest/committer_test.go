package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
)

// startStore starts a one-member store.
func startStore(t *testing.T) *kvraft.Node {
	t.Helper()
	n, err := kvraft.Start(context.Background(), kvraft.Config{ID: 1, DataDir: filepath.Join(t.TempDir(), "kv"),
		InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}}, NewTransport: kvraft.SingleMember,
		TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func put(key string, n int) kvraft.Txn {
	tx := kvraft.Txn{If: []kvraft.Compare{kvraft.CompareMissing([]byte(key))}}
	for i := range n {
		tx.Then = append(tx.Then, kvraft.Op{Type: kvraft.OpPut, Key: fmt.Appendf(nil, "%s/%d", key, i), Value: []byte("v")})
	}
	return tx
}

// TestBatchWithABadTxnCommitsTheOthers submits transactions that kvraft
// would take in one proposal, but for one that breaks its limits: that one
// fails alone, when submitted, and the others commit.
func TestBatchWithABadTxnCommitsTheOthers(t *testing.T) {
	tests := []struct {
		name string
		bad  kvraft.Txn
	}{
		{"more ops than a transaction takes", put("big", kvraft.MaxTxnOps)},
		{"a key over the limit", put(string(bytes.Repeat([]byte("k"), command.MaxKeySize)), 1)},
		{"an empty transaction", kvraft.Txn{}},
	}
	node := startStore(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Node: node}
			cfg.Complete()
			c := newCommitter(&cfg, newMetrics(nil))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first, err := c.submit(ctx, put(fmt.Sprintf("first-%d", i), 2))
			if err != nil {
				t.Fatal(err)
			}
			bad, err := c.submit(ctx, tt.bad)
			if !errors.Is(err, errTxnLimits) || bad != nil {
				t.Errorf("submit of the bad transaction: %v, want errTxnLimits", err)
			}
			last, err := c.submit(ctx, put(fmt.Sprintf("last-%d", i), 2))
			if err != nil {
				t.Fatal(err)
			}
			// Only now does the committer run: everything queued would
			// be one proposal.
			go c.run(ctx)
			for _, done := range []<-chan result{first, last} {
				select {
				case res := <-done:
					if res.err != nil || !res.succeeded {
						t.Errorf("a good transaction of the batch: succeeded %v, %v", res.succeeded, res.err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no result")
				}
			}
		})
	}
}
