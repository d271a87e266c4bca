package query_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/query/querytest"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/kvraft"
)

func TestNodes(t *testing.T) {
	r, _ := fixture(t, query.Config{})
	ctx := context.Background()
	tests := []struct {
		name  string
		req   query.Request
		nodes []string
	}{
		{"every node", query.Request{}, []string{"node-a", "node-b"}},
		{"one node", query.Request{Node: "node-b"}, []string{"node-b"}},
		{"unknown node", query.Request{Node: "node-c"}, []string{}},
		{"a node whose name is another's prefix", query.Request{Node: "node"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Read = linearizable
			res, err := r.Nodes(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, n := range res.Nodes {
				got = append(got, n.Node)
			}
			if !slices.Equal(got, tt.nodes) || res.Nodes == nil || res.Index == 0 {
				t.Errorf("nodes %q at %d, want %q", got, res.Index, tt.nodes)
			}
		})
	}

	res, err := r.Nodes(ctx, query.Request{Read: linearizable})
	if err != nil {
		t.Fatal(err)
	}
	a, b := res.Nodes[0], res.Nodes[1]
	if a.Facts != querytest.NodeAFacts || a.Series != 4 || a.InvalidFacts != nil {
		t.Errorf("node-a = %+v, want facts %+v and 4 series", a, querytest.NodeAFacts)
	}
	if b.Facts.Known() || b.Series != 2 {
		t.Errorf("node-b = %+v, want no facts and 2 series", b)
	}
	// The sample time is the node's last frame's, as in its containers.
	cs, err := r.Containers(ctx, query.Request{Node: "node-b", Read: linearizable})
	if err != nil {
		t.Fatal(err)
	}
	if !b.SampleTime.Equal(cs.Containers[0].SampleTime) || b.Updated != cs.Containers[0].Updated {
		t.Errorf("node-b updated %s, its containers %s", b.Updated, cs.Containers[0].Updated)
	}
}

// TestNodesMalformedFacts: a node whose agent sent a malformed fact shows
// the others, and says which one it left out.
func TestNodesMalformedFacts(t *testing.T) {
	n := kvtest.Start(t)
	meta := nodemeta.Encode(&nodemeta.Facts{Name: "node-x", Zone: "z1", CapacityType: nodemeta.OnDemand})
	meta[nodemeta.KeyAllocatableCPU] = "4 cores"
	meta[nodemeta.KeyInstanceType] = "a\nb"
	u := &model.Update{Node: "node-x", Incarnation: 1, Seq: 1, Time: time.Now(), Interval: time.Second, Keyframe: true,
		Meta: meta, Changed: []model.SeriesState{{Ref: 1, Path: "/", CgroupID: 1}}}
	p, err := model.PlanUpdate(&model.NodeState{Node: "node-x"}, u, u.Time)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.Txn(context.Background(), model.Txn(u.Node, p.Expect, p.Ops)); err != nil || !res.Succeeded {
		t.Fatal(res, err)
	}
	r, err := query.New(query.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Nodes(context.Background(), query.Request{Read: linearizable})
	if err != nil || len(res.Nodes) != 1 {
		t.Fatalf("Nodes = %+v, %v", res, err)
	}
	got := res.Nodes[0]
	want := nodemeta.Facts{Name: "node-x", Zone: "z1", CapacityType: nodemeta.OnDemand}
	if got.Facts != want || !slices.Equal(got.InvalidFacts, []string{nodemeta.KeyAllocatableCPU, nodemeta.KeyInstanceType}) {
		t.Errorf("node-x = %+v", got)
	}
}

func TestNodesRefused(t *testing.T) {
	r, _ := fixture(t, query.Config{MaxSeries: 2})
	for _, tt := range []struct {
		name string
		req  query.Request
		want error
	}{
		{"more series than allowed", query.Request{}, kvraft.ErrTooLarge},
		// A node's idle needs its series priced: they count too.
		{"one node of more series than allowed", query.Request{Node: "node-a"}, kvraft.ErrTooLarge},
		{"bad node name", query.Request{Node: "Bad_Name"}, kvraft.ErrInvalid},
		{"window too long", query.Request{Window: model.MaxWindow + time.Second}, kvraft.ErrInvalid},
	} {
		tt.req.Read = linearizable
		if _, err := r.Nodes(context.Background(), tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: Nodes = %v, want %v", tt.name, err, tt.want)
		}
	}
	// Within the bound, one node is fine.
	if res, err := r.Nodes(context.Background(), query.Request{Node: "node-b", Read: linearizable}); err != nil || len(res.Nodes) != 1 {
		t.Errorf("one node: %+v, %v", res, err)
	}
}
