package exporter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/simstore"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// memStore is a replica's state without the replica: the ingest's
// transactions applied straight to a kvstore, read as the exporter reads
// a replica.
type memStore struct {
	kv    *kvstore.Store
	index uint64
}

func newMemStore() *memStore { return &memStore{kv: kvstore.New()} }

// Range implements query.Store.
func (s *memStore) Range(_ context.Context, req kvraft.RangeRequest, _ kvraft.ReadOptions) (kvraft.RangeResult, error) {
	start, end := req.Start, req.End
	if req.Prefix != nil {
		start, end = req.Prefix, kvstore.PrefixEnd(req.Prefix)
	}
	items, more := s.kv.Range(start, end, req.Limit)
	return kvraft.RangeResult{Items: items, More: more, Index: s.index}, nil
}

// txn applies tx if its comparisons hold.
func (s *memStore) txn(tx kvraft.Txn) error {
	s.index++
	if ok := s.kv.ApplyTxns([]kvraft.Txn{tx}, s.index); !ok[0] {
		return fmt.Errorf("transaction %d did not apply", s.index)
	}
	return nil
}

// perNode is the cgroups of one simulated node, as hack/benchread's.
const perNode = 100

// fillSim writes nodes simulated nodes of perNode cgroups with pod
// metadata as hack/benchread does (the ingest's encoding): a keyframe
// and two updates 20 s apart, the last one at now.
func fillSim(tb testing.TB, s *memStore, nodes int, now time.Time) {
	tb.Helper()
	err := simstore.Fill(nodes, perNode, now, func(node string, p *model.Plan) error {
		return s.txn(model.Txn(node, p.Expect, p.Ops))
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// applyUpdate plans u over st and writes it; it returns the node's next
// state.
func applyUpdate(tb testing.TB, s *memStore, st *model.NodeState, u *model.Update, at time.Time) *model.NodeState {
	tb.Helper()
	p, err := model.PlanUpdate(st, u, at)
	if err != nil {
		tb.Fatalf("plan %s: %v", u.Node, err)
	}
	if err := s.txn(model.Txn(u.Node, p.Expect, p.Ops)); err != nil {
		tb.Fatalf("write %s: %v", u.Node, err)
	}
	return p.Next
}
