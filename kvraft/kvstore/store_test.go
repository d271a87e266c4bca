package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/pennyhq/penny/kvraft/command"
)

func put(k, v string) command.Op {
	return command.Op{Type: command.OpPut, Key: []byte(k), Value: []byte(v)}
}

func del(k string) command.Op { return command.Op{Type: command.OpDelete, Key: []byte(k)} }

func keys(items []KV) []string {
	var out []string
	for _, kv := range items {
		out = append(out, string(kv.Key))
	}
	return out
}

func TestApplyGetRange(t *testing.T) {
	s := New()
	s.Apply([]command.Op{put("a", "1"), put("b/1", "2"), put("b/2", "3"), put("c", "4"), del("c"), put("a", "5")}, 1)
	if kv, ok := s.Get([]byte("a")); !ok || string(kv.Value) != "5" || kv.ModIndex != 1 {
		t.Fatalf("Get(a) = %+v, %v", kv, ok)
	}
	if _, ok := s.Get([]byte("c")); ok {
		t.Fatal("deleted key c still present")
	}
	tests := []struct {
		name       string
		start, end []byte
		limit      int
		want       []string
		more       bool
	}{
		{"all", nil, nil, 0, []string{"a", "b/1", "b/2"}, false},
		{"prefix", []byte("b/"), PrefixEnd([]byte("b/")), 0, []string{"b/1", "b/2"}, false},
		{"limit", nil, nil, 2, []string{"a", "b/1"}, true},
		{"exact limit", nil, nil, 3, []string{"a", "b/1", "b/2"}, false},
		{"half open", []byte("a"), []byte("b/2"), 0, []string{"a", "b/1"}, false},
		{"empty", []byte("x"), nil, 0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, more := s.Range(tt.start, tt.end, tt.limit)
			if got := keys(items); fmt.Sprint(got) != fmt.Sprint(tt.want) || more != tt.more {
				t.Fatalf("Range = %v more=%v, want %v more=%v", got, more, tt.want, tt.more)
			}
		})
	}
	if got, want := s.Bytes(), int64(len("a5b/12b/23")); got != want {
		t.Fatalf("Bytes() = %d, want %d", got, want)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte("a"), []byte("b")},
		{[]byte{'a', 0xff}, []byte("b")},
		{[]byte{0xff, 0xff}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := PrefixEnd(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("PrefixEnd(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCloneIsolation(t *testing.T) {
	s := New()
	s.Apply([]command.Op{put("a", "1")}, 1)
	c := s.Clone()
	s.Apply([]command.Op{put("a", "2"), put("b", "3")}, 2)
	if kv, _ := c.Get([]byte("a")); string(kv.Value) != "1" || kv.ModIndex != 1 {
		t.Fatalf("clone saw a later write: a=%+v", kv)
	}
	if c.Len() != 1 {
		t.Fatalf("clone has %d keys, want 1", c.Len())
	}
}

// TestEncodedSize checks EncodedSize against what WriteTo writes, across
// the uvarint boundaries of the pair count, the lengths and mod indexes.
func TestEncodedSize(t *testing.T) {
	tests := []struct {
		name   string
		keys   int
		klen   []int
		vlen   []int
		index  []uint64
		delete int // keys deleted again
	}{
		{"empty", 0, []int{1}, []int{0}, []uint64{1}, 0},
		{"all deleted", 10, []int{1}, []int{3}, []uint64{1}, 10},
		{"one", 1, []int{1}, []int{0}, []uint64{1}, 0},
		{"127 pairs", 127, []int{8}, []int{127}, []uint64{127}, 0},
		{"128 pairs", 128, []int{127, 128, command.MaxKeySize}, []int{0, 128, 16383, 16384}, []uint64{128, 1 << 14, 1<<63 + 1}, 0},
		{"16384 pairs, some deleted", 16384 + 3, []int{10}, []int{1, 2000}, []uint64{5, 1 << 21}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for i := range tt.keys {
				k := fmt.Appendf(nil, "%06d", i)
				k = append(k, bytes.Repeat([]byte("k"), max(tt.klen[i%len(tt.klen)]-len(k), 0))...)
				op := command.Op{Type: command.OpPut, Key: k, Value: make([]byte, tt.vlen[i%len(tt.vlen)])}
				s.Apply([]command.Op{op}, tt.index[i%len(tt.index)])
				if i < tt.delete {
					s.Apply([]command.Op{{Type: command.OpDelete, Key: k}}, 1)
				}
			}
			c := s.Clone()
			var buf bytes.Buffer
			n, err := c.WriteTo(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.EncodedSize(); got != int64(buf.Len()) || n != got {
				t.Fatalf("EncodedSize() = %d, WriteTo wrote %d (reported %d)", got, buf.Len(), n)
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := New()
	for i := range 1000 {
		s.Apply([]command.Op{put(fmt.Sprintf("k%04d", i), fmt.Sprint(i))}, uint64(i+1))
	}
	s.Apply([]command.Op{put("empty", "")}, 1<<40)
	var buf bytes.Buffer
	if _, err := s.Clone().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Range(nil, nil, 0)
	b, _ := got.Range(nil, nil, 0)
	if len(a) != len(b) || got.Bytes() != s.Bytes() {
		t.Fatalf("decoded %d pairs / %d bytes, want %d / %d", len(b), got.Bytes(), len(a), s.Bytes())
	}
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) || a[i].ModIndex != b[i].ModIndex {
			t.Fatalf("pair %d differs: %+v != %+v", i, b[i], a[i])
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"count too large", []byte{0xff, 0xff, 0x03}},
		{"unsorted", []byte{2, 1, 'b', 0, 1, 1, 'a', 0, 1}},
		{"duplicate", []byte{2, 1, 'a', 0, 1, 1, 'a', 0, 1}},
		{"empty key", []byte{1, 0, 1, 'x', 1}},
		{"truncated", []byte{1, 1, 'a', 5, 'x'}},
		{"no mod index", []byte{1, 1, 'a', 1, 'x'}},
		{"mod index 0", []byte{1, 1, 'a', 1, 'x', 0}},
		{"truncated mod index", []byte{1, 1, 'a', 1, 'x', 0x80}},
		{"trailing", []byte{1, 1, 'a', 0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode() error = %v, want ErrCorrupt", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	s := New()
	s.Apply([]command.Op{put("a", "1"), put("b", "")}, 3)
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if _, err := s.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		s2, err := Decode(out.Bytes())
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		a, _ := s.Range(nil, nil, 0)
		c, _ := s2.Range(nil, nil, 0)
		if len(a) != len(c) {
			t.Fatalf("round trip changed the pair count: %d != %d", len(a), len(c))
		}
		for i := range a {
			if !bytes.Equal(a[i].Key, c[i].Key) || !bytes.Equal(a[i].Value, c[i].Value) || a[i].ModIndex != c[i].ModIndex || c[i].ModIndex == 0 {
				t.Fatalf("round trip changed pair %d: %+v != %+v", i, c[i], a[i])
			}
		}
	})
}

func BenchmarkApplyPut(b *testing.B) {
	s := New()
	val := make([]byte, 256)
	i := 0
	for b.Loop() {
		i++
		s.Apply([]command.Op{{Type: command.OpPut, Key: fmt.Appendf(nil, "key/%08d", i%100000), Value: val}}, uint64(i))
	}
}

func BenchmarkGet(b *testing.B) {
	s := New()
	for i := range 100000 {
		s.Apply([]command.Op{put(fmt.Sprintf("key/%08d", i), "v")}, uint64(i+1))
	}
	key := []byte("key/00050000")
	for b.Loop() {
		if _, ok := s.Get(key); !ok {
			b.Fatal("missing")
		}
	}
}
