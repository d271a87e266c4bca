package model

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
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

// withMeta returns n series under prefix, each with pod metadata.
func withMeta(prefix string, n int) []SeriesState {
	out := make([]SeriesState, n)
	for i := range out {
		out[i] = series(fmt.Sprintf("%s/c%d", prefix, i), int64(i), uint64(i))
		out[i].Ref = uint64(i)
		out[i].Meta = map[string]string{"pod": fmt.Sprintf("pod-%d", i), "namespace": "shop"}
	}
	return out
}

// TestUpdateFitsOneTransaction commits the largest updates a node can
// make, each as the one transaction PlanUpdate promises.
func TestUpdateFitsOneTransaction(t *testing.T) {
	store := startStore(t)
	ctx := context.Background()
	commit := func(t *testing.T, st *NodeState, u *Update) *NodeState {
		t.Helper()
		p, err := PlanUpdate(st, u, t0)
		if err != nil {
			t.Fatalf("plan: %v", err)
		}
		txn := Txn(u.Node, p.Expect, p.Ops)
		if n := len(txn.If) + len(txn.Then) + len(txn.Else); n > kvraft.MaxTxnOps {
			t.Errorf("update of %d series: %d compares and ops, kvraft takes %d", len(u.Changed)+len(u.Removed), n, kvraft.MaxTxnOps)
		}
		res, err := store.Txn(ctx, txn)
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		if !res.Succeeded {
			t.Fatal("condition failed")
		}
		return p.Next
	}
	update := func(node string, seq uint64, keyframe bool, changed []SeriesState, removed ...string) *Update {
		return &Update{Node: node, Incarnation: 1, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second),
			Interval: time.Second, Keyframe: keyframe, Changed: changed, Removed: removed,
			Meta: map[string]string{"zone": "a"}}
	}

	t.Run("keyframe of MaxSeriesPerNode series with metadata", func(t *testing.T) {
		st := commit(t, &NodeState{Node: "node-1"}, update("node-1", 1, true, withMeta("/a", MaxSeriesPerNode)))
		if len(st.Series) != MaxSeriesPerNode {
			t.Errorf("%d series stored, want %d", len(st.Series), MaxSeriesPerNode)
		}
	})
	t.Run("keyframe replacing MaxSeriesPerNode series with metadata", func(t *testing.T) {
		st := commit(t, &NodeState{Node: "node-2"}, update("node-2", 1, true, withMeta("/a", MaxSeriesPerNode)))
		st = commit(t, st, update("node-2", 2, true, withMeta("/b", MaxSeriesPerNode)))
		if len(st.Series) != MaxSeriesPerNode || st.Series["/b/c0"] == nil || st.Series["/a/c0"] != nil {
			t.Errorf("%d series stored, want the %d of the second keyframe", len(st.Series), MaxSeriesPerNode)
		}
	})
	// grown returns ss with every counter grown by rx and new metadata.
	grown := func(ss []SeriesState, rx uint64) []SeriesState {
		out := make([]SeriesState, len(ss))
		for i, s := range ss {
			s.Total.RxBytes += rx
			s.Meta = map[string]string{"pod": s.Meta["pod"], "namespace": "cart"}
			out[i] = s
		}
		return out
	}
	t.Run("keyframe replacing MaxSeriesPerNode series with metadata and checkpoints", func(t *testing.T) {
		a := withMeta("/a", MaxSeriesPerNode)
		st := commit(t, &NodeState{Node: "node-4"}, update("node-4", 1, true, a))
		st = commit(t, st, update("node-4", 2, false, grown(a, 10)))
		if m := marksOf(t, st.Series["/a/c0"]); len(m) != 1 {
			t.Fatalf("marks %+v", m)
		}
		st = commit(t, st, update("node-4", 3, true, withMeta("/b", MaxSeriesPerNode)))
		if len(st.Series) != MaxSeriesPerNode || st.Series["/a/c0"] != nil {
			t.Errorf("%d series stored, want the %d of the second keyframe", len(st.Series), MaxSeriesPerNode)
		}
	})
	t.Run("every series restarted with new metadata, its checkpoints deleted", func(t *testing.T) {
		a := withMeta("/a", MaxSeriesPerNode)
		st := commit(t, &NodeState{Node: "node-5"}, update("node-5", 1, true, grown(a, 100)))
		st = commit(t, st, update("node-5", 2, false, grown(a, 200)))
		st = commit(t, st, update("node-5", 3, false, a)) // counters went back: restarted
		if s := st.Series["/a/c0"]; s.hasMarks() || s.Meta["namespace"] != "shop" {
			t.Errorf("after the restart: %+v", s)
		}
	})
	t.Run("delta adding and removing MaxSeriesPerNode series with metadata", func(t *testing.T) {
		half := MaxSeriesPerNode / 2
		st := commit(t, &NodeState{Node: "node-3"}, update("node-3", 1, true, withMeta("/a", MaxSeriesPerNode)))
		var removed []string
		for _, s := range withMeta("/a", MaxSeriesPerNode-half) {
			removed = append(removed, s.Path)
		}
		st = commit(t, st, update("node-3", 2, false, withMeta("/b", half), removed...))
		if len(st.Series) != MaxSeriesPerNode-len(removed)+half {
			t.Errorf("%d series stored", len(st.Series))
		}
	})
}
