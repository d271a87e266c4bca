package pods_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/internal/histogram"
)

// manyContainers is n containers of about n/3 pods on 40 nodes in 5
// namespaces, sorted by node as reads give them, or shuffled (a pod's
// containers apart from each other), with random values, request
// latencies and some containers outside Kubernetes.
func manyContainers(n int, r *rand.Rand, shuffled bool) []model.Container {
	cs := make([]model.Container, 0, n)
	for i := range n {
		pod := i / 3
		ns := fmt.Sprintf("ns-%d", pod%5)
		var hit *float64
		if r.IntN(2) == 0 {
			hit = f(r.Float64())
		}
		c := ctr(fmt.Sprintf("n%d", pod%40), ns, fmt.Sprintf("pod-%05d-x", pod), fmt.Sprintf("c%d", i%3),
			r.Int64N(1<<30), r.Uint64N(1<<20), float64(1+r.IntN(30)), f(r.Float64()/100), hit,
			time.Duration(r.IntN(3))*time.Second)
		if r.IntN(4) == 0 {
			c = serving(c, r.Uint64N(1000), r.Float64()/10, r.Float64())
			var h histogram.LogLinear
			for range 1 + r.IntN(20) {
				h.Observe(uint64(r.IntN(100_000)))
			}
			c.RequestLatency = h
		}
		if r.IntN(50) == 0 {
			c.Kubernetes = nil
		}
		cs = append(cs, c)
	}
	if shuffled {
		r.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	} else {
		slices.SortStableFunc(cs, func(a, b model.Container) int { return strings.Compare(a.Node, b.Node) })
	}
	return cs
}

// TestGroupInPartsAsInOne holds Group summing in parts to the same answer
// as in one part, for every kind of query, with the containers sorted by
// node (summed in parts) and not (a pod in two parts: summed again in
// one).
func TestGroupInPartsAsInOne(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, shuffled := range []bool{false, true} {
		// 4 parts of at least 1,024
		cs := manyContainers(6000, rand.New(rand.NewPCG(1, 2)), shuffled)
		parts := 4
		if shuffled {
			parts = 1
		}
		t.Run(fmt.Sprintf("shuffled=%v", shuffled), func(t *testing.T) { checkGroupInParts(t, cs, parts) })
	}
}

func checkGroupInParts(t *testing.T, cs []model.Container, parts int) {
	t.Helper()
	tests := []struct {
		name string
		q    func(t *testing.T) pods.Query
	}{
		{"everything", func(*testing.T) pods.Query { return pods.Query{} }},
		{"namespace", func(*testing.T) pods.Query { return pods.Query{Namespace: "ns-3"} }},
		{"label selector", func(t *testing.T) pods.Query { return pods.Query{Selector: sel(t, "tier in (ns-1,ns-2)")} }},
		{"metric selector", func(t *testing.T) pods.Query { return pods.Query{MetricSelector: sel(t, "container!=c1")} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q(t)
			want := pods.GroupInOne(cs, q)
			got, n := pods.GroupInParts(cs, q)
			if n != parts {
				t.Errorf("summed in %d parts, want %d", n, parts)
			}
			if len(got) != len(want) {
				t.Fatalf("%d pods in parts, %d in one", len(got), len(want))
			}
			if len(want) < 100 {
				t.Fatalf("%d pods: too few to tell", len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("pod %d: in parts %+v\nin one %+v", i, got[i], want[i])
				}
			}
		})
	}
}
