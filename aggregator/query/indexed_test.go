package query

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/podindex"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
)

// series returns a read of n series on two nodes, those at broken
// undecodable.
func series(t *testing.T, n int, broken ...int) *indexedRead {
	t.Helper()
	rd := &indexedRead{}
	for i := range n {
		v, err := (&model.Stored{Time: int64(i) * int64(time.Second), RSSBytes: int64(i)}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range broken {
			if b == i {
				v = []byte{0xc1}
			}
		}
		s := podindex.Series{Ref: podindex.Ref{Node: fmt.Sprintf("node-%d", 2*i/n), Path: fmt.Sprintf("/p/%05d", i)}}
		rd.series = append(rd.series, indexedSeries{Series: s, value: v})
	}
	return rd
}

// TestContainersInParts: decoded in parts on several goroutines, the
// containers are those of a decoding in order, and so is the error.
func TestContainersInParts(t *testing.T) {
	agents := map[string]*model.Agent{"node-0": {Time: int64(time.Hour)}}
	tests := []struct {
		name    string
		n       int
		broken  []int
		wantErr string
	}{
		{"one part", minPart - 1, nil, ""},
		{"parts", 3*minPart + 7, nil, ""},
		{"a broken series in a later part", 3*minPart + 7, []int{2*minPart + 5}, fmt.Sprintf("/p/%05d", 2*minPart+5)},
		{"two broken series: the first one's error", 3*minPart + 7, []int{3 * minPart, minPart + 1},
			fmt.Sprintf("/p/%05d", minPart+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := series(t, tt.n, tt.broken...)
			got, err := rd.containers(agents, 0)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one of %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := make([]model.Container, tt.n)
			if err := rd.decode(want, 0, agents, 0); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatal("containers decoded in parts differ from those decoded in order")
			}
			for i, c := range got {
				if c.Path != rd.series[i].Path || c.RSSBytes != int64(i) {
					t.Fatalf("container %d: %s with %d bytes", i, c.Path, c.RSSBytes)
				}
			}
		})
	}
}

// TestReadWalksAndLooksUp: the pairs read through the index are the
// store's, whether a node's series are looked up one by one (fewer than
// minWalk) or walked in one pass past those the read does not ask for,
// with series not stored (metadata first) and without checkpoints.
func TestReadWalksAndLooksUp(t *testing.T) {
	idx := podindex.New()
	n := kvtest.Start(t, func(c *kvraft.Config) { c.Watcher = idx })
	type want struct{ value, marks string }
	wants := map[podindex.Ref]want{}
	var ops []kvraft.Op
	put := func(key []byte, v string) {
		ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: key, Value: []byte(v)})
	}
	// n1 has 3*minWalk series, every other one shop's; n2 one of shop's.
	for i := range 3*minWalk + 1 {
		node, path, ns := "n1", fmt.Sprintf("/p/%02d", i), "shop"
		switch {
		case i == 3*minWalk:
			node = "n2"
		case i%2 == 1:
			ns = "other"
		}
		m, err := model.EncodeMeta(podmeta.Encode(&podmeta.Pod{UID: path, Namespace: ns, Name: "pod" + path}, &podmeta.Container{Name: "app"}))
		if err != nil {
			t.Fatal(err)
		}
		put(model.MetaKey(node, path), string(m))
		if i == 4 {
			continue // metadata first: no values yet
		}
		w := want{value: "v" + path}
		put(model.SeriesKey(node, path), w.value)
		if i%3 == 0 {
			w.marks = "m" + path
			put(model.MarksKey(node, path), w.marks)
		}
		if ns == "shop" {
			wants[podindex.Ref{Node: node, Path: path}] = w
		}
	}
	put(model.AgentKey("n1"), "agent")
	if _, err := n.Batch(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		node  string
		marks bool
		want  int
	}{
		{"values", "", false, len(wants)},
		{"values and checkpoints", "", true, len(wants)},
		{"one node", "n2", true, 1},
	}
	// In one part, then in parts of one node each (n1, n2).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	defer func(m int) { minReadPart = m }(minReadPart)
	for _, split := range []bool{false, true} {
		if split {
			minReadPart = 1
		}
		for _, tt := range tests {
			name := tt.name
			if split {
				name += ", in parts"
			}
			t.Run(name, func(t *testing.T) {
				var rd indexedRead
				err := n.View(context.Background(), kvraft.ReadOptions{Consistency: kvraft.Linearizable}, func(st kvraft.State) error {
					rd.read(st, idx.Series("shop", "", nil), tt.node, tt.marks)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(rd.series) != tt.want {
					t.Fatalf("%d series read, want %d", len(rd.series), tt.want)
				}
				for _, s := range rd.series {
					w := wants[s.Ref]
					if !tt.marks {
						w.marks = ""
					}
					if string(s.value) != w.value || string(s.marks) != w.marks || s.Kube == nil || s.Kube.Pod.Name != "pod"+s.Path {
						t.Errorf("%v: value %q, checkpoints %q, pod %v; want %q, %q", s.Ref, s.value, s.marks, s.Kube, w.value, w.marks)
					}
				}
				for _, a := range rd.agents {
					if (a.node == "n1") != (string(a.value) == "agent") {
						t.Errorf("agent record of %s: %q", a.node, a.value)
					}
				}
				if !slices.IsSortedFunc(rd.series, func(a, b indexedSeries) int {
					return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Path, b.Path))
				}) {
					t.Error("series not in the order of the index")
				}
			})
		}
	}
}
