package ingest

import (
	"fmt"
	"testing"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/wire"
)

// benchOps are the writes of one frame of a node of 100 containers: a
// value per series, a few checkpoints and the agent record.
func benchOps() []model.Op {
	ops := make([]model.Op, 0, 108)
	for i := range 100 {
		ops = append(ops, model.Op{Key: model.SeriesKey("node-a", fmt.Sprintf("/kubepods.slice/pod%d.slice/cri-containerd-%064d.scope", i, i)),
			Value: make([]byte, 330)})
	}
	for i := range 7 {
		ops = append(ops, model.Op{Key: model.MarksKey("node-a", fmt.Sprintf("/kubepods.slice/pod%d.slice/x", i)), Value: make([]byte, 1100)})
	}
	return append(ops, model.Op{Key: model.AgentKey("node-a"), Value: make([]byte, 200)})
}

// BenchmarkTxnOneFrame measures building the transaction of one frame's
// plan, as streams do (txn.merge, which takes the plan's writes as they
// are), beside the map of keys they built before (reference).
func BenchmarkTxnOneFrame(b *testing.B) {
	ops := benchOps()
	h := wire.Header{Seq: 1}
	b.Run("merge", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t := &txn{}
			t.merge(ops)
			t.frames = append(t.frames, h)
			_ = model.Txn("node-a", nil, t.ops)
		}
	})
	b.Run("map-reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writes, order := map[string]model.Op{}, []string(nil)
			for _, op := range ops {
				k := string(op.Key)
				if _, ok := writes[k]; !ok {
					order = append(order, k)
				}
				writes[k] = op
			}
			frames := append([]wire.Header(nil), h)
			_ = frames
			merged := make([]model.Op, 0, len(order))
			for _, k := range order {
				merged = append(merged, writes[k])
			}
			_ = model.Txn("node-a", nil, merged)
		}
	})
}
