package podindex_test

import (
	"slices"
	"testing"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/podindex"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

func meta(t testing.TB, ns, name string) []byte {
	t.Helper()
	var m map[string]string
	if name != "" {
		m = podmeta.Encode(&podmeta.Pod{UID: ns + "-" + name, Namespace: ns, Name: name}, &podmeta.Container{Name: "app"})
	} else {
		m = map[string]string{"unit": "sshd.service"}
	}
	b, err := model.EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(key, value []byte) command.Op {
	return command.Op{Type: command.OpPut, Key: key, Value: value}
}
func del(key []byte) command.Op          { return command.Op{Type: command.OpDelete, Key: key} }
func ref(node, path string) podindex.Ref { return podindex.Ref{Node: node, Path: path} }

func TestIndex(t *testing.T) {
	s := kvstore.New()
	x := podindex.New()
	s.Watch(x)
	i := uint64(0)
	apply := func(ops ...command.Op) {
		i++
		s.Apply(ops, i)
	}
	apply(put(model.MetaKey("n1", "/p/a"), meta(t, "shop", "web-1")),
		put(model.MetaKey("n1", "/p/b"), meta(t, "shop", "web-1")),
		put(model.MetaKey("n2", "/p/c"), meta(t, "shop", "web-2")),
		put(model.MetaKey("n2", "/p/d"), meta(t, "batch", "job")),
		put(model.MetaKey("n2", "/sshd"), meta(t, "", "")),              // not a pod's
		put(model.MetaKey("n2", "/bad"), []byte{0xc1}),                  // does not decode
		put(model.SeriesKey("n1", "/p/a"), []byte("values")),            // not metadata
		put([]byte("penny/v1/nodes/n1/meta"), meta(t, "shop", "web-9")), // not a series' metadata
		put([]byte("other/n1/meta/x"), meta(t, "shop", "web-9")))
	tests := []struct {
		name      string
		ns, pod   string
		want      []podindex.Ref
		afterOps  []command.Op
		wantAfter []podindex.Ref
	}{
		{"namespace", "shop", "", []podindex.Ref{ref("n1", "/p/a"), ref("n1", "/p/b"), ref("n2", "/p/c")}, nil, nil},
		{"pod", "shop", "web-1", []podindex.Ref{ref("n1", "/p/a"), ref("n1", "/p/b")}, nil, nil},
		{"other namespace", "batch", "", []podindex.Ref{ref("n2", "/p/d")}, nil, nil},
		{"no such namespace", "none", "", []podindex.Ref{}, nil, nil},
		{"container deleted", "shop", "web-1", []podindex.Ref{ref("n1", "/p/a"), ref("n1", "/p/b")},
			[]command.Op{del(model.MetaKey("n1", "/p/a"))}, []podindex.Ref{ref("n1", "/p/b")}},
		{"metadata rewritten to another pod", "shop", "web-2", []podindex.Ref{ref("n2", "/p/c")},
			[]command.Op{put(model.MetaKey("n1", "/p/b"), meta(t, "shop", "web-2"))}, []podindex.Ref{ref("n1", "/p/b"), ref("n2", "/p/c")}},
		{"metadata rewritten to no pod", "batch", "", []podindex.Ref{ref("n2", "/p/d")},
			[]command.Op{put(model.MetaKey("n2", "/p/d"), meta(t, "", ""))}, []podindex.Ref{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := x.Namespace(tt.ns, tt.pod, nil); !slices.Equal(got, tt.want) {
				t.Fatalf("Namespace(%q, %q) = %v, want %v", tt.ns, tt.pod, got, tt.want)
			}
			if tt.afterOps == nil {
				return
			}
			apply(tt.afterOps...)
			if got := x.Namespace(tt.ns, tt.pod, nil); !slices.Equal(got, tt.wantAfter) {
				t.Fatalf("after the writes, Namespace(%q, %q) = %v, want %v", tt.ns, tt.pod, got, tt.wantAfter)
			}
		})
	}
	// A reset rebuilds the same index from the store.
	y := podindex.New()
	y.Reset(s)
	if x.Len() != 2 || y.Len() != x.Len() {
		t.Fatalf("index of %d series, rebuilt %d; want 2", x.Len(), y.Len())
	}
	for _, ns := range []string{"shop", "batch"} {
		if a, b := x.Namespace(ns, "", nil), y.Namespace(ns, "", nil); !slices.Equal(a, b) {
			t.Errorf("%s: followed %v, rebuilt %v", ns, a, b)
		}
	}
}

// TestSeries: a namespace's series come sorted with the pod of their
// metadata, and follow the writes that change the namespace after a read
// kept them sorted.
func TestSeries(t *testing.T) {
	s := kvstore.New()
	x := podindex.New()
	s.Watch(x)
	i := uint64(0)
	apply := func(ops ...command.Op) {
		i++
		s.Apply(ops, i)
	}
	apply(put(model.MetaKey("n2", "/p/c"), meta(t, "shop", "web-2")),
		put(model.MetaKey("n1", "/p/b"), meta(t, "shop", "web-1")),
		put(model.MetaKey("n1", "/p/a"), meta(t, "shop", "web-1")))
	tests := []struct {
		name string
		ops  []command.Op
		want []string // node, path and pod of each series
	}{
		{"first read", nil, []string{"n1 /p/a web-1", "n1 /p/b web-1", "n2 /p/c web-2"}},
		{"read again", nil, []string{"n1 /p/a web-1", "n1 /p/b web-1", "n2 /p/c web-2"}},
		{"a series added", []command.Op{put(model.MetaKey("n1", "/p/0"), meta(t, "shop", "web-3"))},
			[]string{"n1 /p/0 web-3", "n1 /p/a web-1", "n1 /p/b web-1", "n2 /p/c web-2"}},
		{"a series moved to another pod", []command.Op{put(model.MetaKey("n1", "/p/b"), meta(t, "shop", "web-9"))},
			[]string{"n1 /p/0 web-3", "n1 /p/a web-1", "n1 /p/b web-9", "n2 /p/c web-2"}},
		{"a series deleted", []command.Op{del(model.MetaKey("n1", "/p/a"))},
			[]string{"n1 /p/0 web-3", "n1 /p/b web-9", "n2 /p/c web-2"}},
		{"a series moved out", []command.Op{put(model.MetaKey("n1", "/p/0"), meta(t, "batch", "job"))},
			[]string{"n1 /p/b web-9", "n2 /p/c web-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ops != nil {
				apply(tt.ops...)
			}
			var got []string
			for _, se := range x.Series("shop", "", nil) {
				got = append(got, se.Node+" "+se.Path+" "+se.Kube.Pod.Name)
				stored, _ := s.Get(model.MetaKey(se.Node, se.Path))
				if k, ok := x.Kube(se.Ref, stored.ModIndex); !ok || k != se.Kube {
					t.Errorf("%v: Kube at the stored metadata's mod index = %v, %v; Series gave %v", se.Ref, k, ok, se.Kube)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Series(shop) = %q, want %q", got, tt.want)
			}
		})
	}
}

// BenchmarkPutSeries is what the index adds to the applying of a write
// that is not metadata: every sample's.
func BenchmarkPutSeries(b *testing.B) {
	x := podindex.New()
	kv := kvstore.KV{Key: model.SeriesKey("ip-10-0-1-17.ec2.internal", "/kubepods.slice/kubepods-burstable.slice/pod1234/cri-abcdef"),
		Value: []byte("values")}
	for b.Loop() {
		x.Put(kv)
	}
}

// BenchmarkPutMeta is the cost of filing a new container's metadata.
func BenchmarkPutMeta(b *testing.B) {
	x := podindex.New()
	kv := kvstore.KV{Key: model.MetaKey("ip-10-0-1-17.ec2.internal", "/kubepods.slice/pod1234/cri-abcdef"), Value: meta(b, "shop", "web-1")}
	for b.Loop() {
		x.Put(kv)
	}
}
