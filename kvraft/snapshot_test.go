package kvraft

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

func sampleState() (*membership, *kvstore.Store) {
	m := newMembership()
	m.Members[1] = Member{ID: 1, PeerURL: "http://a:1", APIURL: "http://a:2"}
	m.Members[3] = Member{ID: 3, PeerURL: "http://c:1"}
	m.Removed[2] = true
	kv := kvstore.New()
	kv.Apply([]command.Op{{Type: command.OpPut, Key: []byte("k1"), Value: []byte("v1")}, {Type: command.OpPut, Key: []byte("k2")}}, 5)
	kv.Apply([]command.Op{{Type: command.OpPut, Key: []byte("k2"), Value: []byte("v2")}}, 9)
	return m, kv
}

// encodeSnapshot writes the snapshot data into memory, checking that it
// is exactly its Size.
func encodeSnapshot(m *membership, kv *kvstore.Store) ([]byte, error) {
	d, err := newSnapshotData(m, kv)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	n, err := d.WriteTo(&buf)
	if err != nil {
		return nil, err
	}
	if n != int64(buf.Len()) || n != d.Size() {
		return nil, fmt.Errorf("wrote %d bytes (reported %d), size %d", buf.Len(), n, d.Size())
	}
	return buf.Bytes(), nil
}

func TestSnapshotRoundTrip(t *testing.T) {
	m, kv := sampleState()
	b, err := encodeSnapshot(m, kv)
	if err != nil {
		t.Fatal(err)
	}
	m2, kv2, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("membership changed: %+v != %+v", m2, m)
	}
	if kv2.Len() != 2 || kv2.Bytes() != kv.Bytes() {
		t.Fatalf("store changed: %d keys, %d bytes", kv2.Len(), kv2.Bytes())
	}
	want, _ := kv.Range(nil, nil, 0)
	got, _ := kv2.Range(nil, nil, 0)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pairs changed: %+v != %+v", got, want)
	}
}

func TestDecodeSnapshotFormats(t *testing.T) {
	m, kv := sampleState()
	good, err := encodeSnapshot(m, kv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(good, []byte("PNYKV2\n")) {
		t.Fatalf("snapshot header %q, want format 2", good[:7])
	}
	tests := []struct {
		name   string
		header string
		msg    string
	}{
		{"format 1", "PNYKV1\n", "predates per-key mod indexes"},
		{"future format", "PNYKV3\n", "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(tt.header), good[len(tt.header):]...)
			_, _, err := decodeSnapshot(b)
			if !errors.Is(err, ErrSnapshotFormat) || !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("decodeSnapshot() error = %v, want ErrSnapshotFormat mentioning %q", err, tt.msg)
			}
		})
	}
}

func TestDecodeSnapshotRejects(t *testing.T) {
	m, kv := sampleState()
	good, err := encodeSnapshot(m, kv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no magic", good[1:]},
		{"header without newline", []byte("PNYKV2")},
		{"truncated meta", good[:len(snapshotMagic)+3]},
		{"bad json", append(append([]byte{}, snapshotMagic...), 2, '{', '{', 0)},
		{"mismatched member key", append(append([]byte{}, snapshotMagic...), append([]byte{byte(len(`{"members":{"1":{"id":2,"peer_url":"http://a:1"}}}`))}, []byte(`{"members":{"1":{"id":2,"peer_url":"http://a:1"}}}0`)...)...)},
		{"truncated store", good[:len(good)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := decodeSnapshot(tt.b); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("decodeSnapshot() error = %v, want ErrBadSnapshot", err)
			}
		})
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	m, kv := sampleState()
	b, err := encodeSnapshot(m, kv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("PNYKV2\n\x02{}\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, kv, err := decodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v is not ErrBadSnapshot", err)
			}
			return
		}
		out, err := encodeSnapshot(m, kv)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := decodeSnapshot(out); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
	})
}

func BenchmarkEncodeSnapshot(b *testing.B) {
	m, _ := sampleState()
	kv := kvstore.New()
	v := make([]byte, 256)
	for i := range 10000 {
		kv.Apply([]command.Op{{Type: command.OpPut, Key: []byte{byte(i >> 8), byte(i), 'k'}, Value: v}}, uint64(i+1))
	}
	for b.Loop() {
		if _, err := encodeSnapshot(m, kv.Clone()); err != nil {
			b.Fatal(err)
		}
	}
}
