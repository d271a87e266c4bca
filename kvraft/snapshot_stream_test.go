package kvraft

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvstore"
	"github.com/pennyhq/penny/kvraft/storage"
)

// storeOf returns a store holding n keys with values of size vsize (or
// of sizes cycling through vsizes), the i-th written at index mods[i%len].
func storeOf(n int, vsizes []int, mods []uint64) *kvstore.Store {
	kv := kvstore.New()
	for i := range n {
		v := make([]byte, vsizes[i%len(vsizes)])
		for j := range v {
			v[j] = byte(i + j)
		}
		kv.Apply([]command.Op{{Type: command.OpPut, Key: fmt.Appendf(nil, "/k/%06d", i), Value: v}}, mods[i%len(mods)])
	}
	return kv
}

func pairs(kv *kvstore.Store) []kvstore.KV {
	items, _ := kv.Range(nil, nil, 0)
	return items
}

// snapshotStores are states whose encoding crosses the uvarint length
// boundaries of the pair count, the key and value lengths and the mod
// indexes.
func snapshotStores() []struct {
	name string
	kv   *kvstore.Store
} {
	_, sample := sampleState()
	return []struct {
		name string
		kv   *kvstore.Store
	}{
		{"empty", kvstore.New()},
		{"sample", sample},
		{"127 keys", storeOf(127, []int{0}, []uint64{1})},
		{"128 keys, varint boundaries", storeOf(128, []int{0, 1, 127, 128, 16383, 16384, 1 << 20}, []uint64{1, 127, 128, 16384, 1<<35 + 1, 1<<63 + 5})},
		{"over a few chunks", storeOf(2000, []int{1600}, []uint64{7})},
	}
}

// TestSnapshotDataSize checks that the size computed ahead is what the
// snapshot data writes, and that it decodes to the state it came from.
func TestSnapshotDataSize(t *testing.T) {
	m, _ := sampleState()
	for _, tt := range snapshotStores() {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeSnapshot(m, tt.kv.Clone()) // checks the size
			if err != nil {
				t.Fatal(err)
			}
			m2, kv2, err := decodeSnapshot(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m2, m) || !reflect.DeepEqual(pairs(kv2), pairs(tt.kv)) {
				t.Fatalf("state changed: %d keys, want %d", kv2.Len(), tt.kv.Len())
			}
		})
	}
}

// openSnapStorage opens a storage in dir holding entries 1 to 10.
func openSnapStorage(t *testing.T, dir string) *storage.Storage {
	t.Helper()
	st, _, err := storage.Open(storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 10; i++ {
		ents = append(ents, &raftpb.Entry{Index: new(i), Term: new(uint64(2)), Type: new(raftpb.EntryNormal)})
	}
	if err := st.Save(&raftpb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(10))}, ents, nil); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSnapshotStreamedToFile checks that a snapshot streamed into its file
// is read back whole by etcd's snapshotter, by recovery and by the Raft
// storage that sends it to followers.
func TestSnapshotStreamedToFile(t *testing.T) {
	m, _ := sampleState()
	cs := &raftpb.ConfState{Voters: []uint64{1, 3}}
	for _, tt := range snapshotStores() {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openSnapStorage(t, dir)
			defer st.Close()
			data, err := newSnapshotData(m, tt.kv.Clone())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CreateSnapshot(10, cs, data, 5, 0); err != nil {
				t.Fatal(err)
			}
			check := func(who string, sn *raftpb.Snapshot) {
				t.Helper()
				if int64(len(sn.GetData())) != data.Size() || sn.GetMetadata().GetIndex() != 10 || sn.GetMetadata().GetTerm() != 2 {
					t.Fatalf("%s: %d bytes at %d/%d, want %d at 2/10", who, len(sn.GetData()),
						sn.GetMetadata().GetTerm(), sn.GetMetadata().GetIndex(), data.Size())
				}
				m2, kv2, err := decodeSnapshot(sn.GetData())
				if err != nil {
					t.Fatalf("%s: %v", who, err)
				}
				if !reflect.DeepEqual(m2, m) || !reflect.DeepEqual(pairs(kv2), pairs(tt.kv)) {
					t.Fatalf("%s: state changed: %d keys, want %d", who, kv2.Len(), tt.kv.Len())
				}
			}

			sn, err := snap.New(zap.NewNop(), filepath.Join(dir, "snap")).Load()
			if err != nil {
				t.Fatalf("etcd cannot load it: %v", err)
			}
			check("etcd's Load", sn)

			// What a leader sends a follower is read back from the file.
			deadline := time.Now().Add(10 * time.Second)
			for sn, err = st.Raft().Snapshot(); errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable); sn, err = st.Raft().Snapshot() {
				if time.Now().After(deadline) {
					t.Fatal("the snapshot to send is never read back")
				}
				time.Sleep(time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			check("Raft storage", sn)

			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st, rec, err := storage.Open(storage.Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			check("recovery", rec.Snapshot)
		})
	}
}

// TestSnapshotSizeMismatch checks that snapshot data that writes other
// than its size is an error that leaves no file behind.
func TestSnapshotSizeMismatch(t *testing.T) {
	m, _ := sampleState()
	for _, tt := range []struct {
		name  string
		kv    *kvstore.Store
		delta int64
	}{
		{"empty, one byte over", kvstore.New(), 1},
		{"empty, one byte short", kvstore.New(), -1},
		{"one byte over", storeOf(2000, []int{1600}, []uint64{7}), 1},
		{"one byte short", storeOf(2000, []int{1600}, []uint64{7}), -1},
		{"a chunk short", storeOf(2000, []int{1600}, []uint64{7}), -1 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openSnapStorage(t, dir)
			defer st.Close()
			data, err := newSnapshotData(m, tt.kv.Clone())
			if err != nil {
				t.Fatal(err)
			}
			data.kvSize += tt.delta
			err = st.CreateSnapshot(10, &raftpb.ConfState{Voters: []uint64{1}}, data, 5, 0)
			if !errors.Is(err, storage.ErrSnapshotFile) || !errors.Is(err, storage.ErrSnapshotSize) {
				t.Fatalf("CreateSnapshot() error = %v, want ErrSnapshotFile and ErrSnapshotSize", err)
			}
			if names, _ := filepath.Glob(filepath.Join(dir, "snap", "*")); len(names) > 0 {
				t.Fatalf("files left behind: %v", names)
			}
		})
	}
}

// BenchmarkSnapshotToFile snapshots a store of 50,000 keys of 1.6 KB
// (80 MB) into its file, as maybeSnapshot does: it clones the store, then
// streams the clone into the file. Each op also saves one small entry to
// the WAL, for the snapshot's index.
func BenchmarkSnapshotToFile(b *testing.B) {
	m, _ := sampleState()
	kv := kvstore.New()
	v := make([]byte, 1600)
	for i := range v {
		v[i] = byte(i * 7)
	}
	const keys, batch = 50000, 500
	for i := 0; i < keys; i += batch {
		ops := make([]command.Op, 0, batch)
		for j := i; j < i+batch; j++ {
			ops = append(ops, command.Op{Type: command.OpPut, Key: fmt.Appendf(nil, "/series/%08d", j), Value: v})
		}
		kv.Apply(ops, uint64(i/batch+1))
	}
	st, _, err := storage.Open(storage.Config{Dir: b.TempDir(), PurgeInterval: 100 * time.Millisecond, MaxSnapshotFiles: 2, MaxWALFiles: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cs := &raftpb.ConfState{Voters: []uint64{1, 3}}
	var index uint64
	for b.Loop() {
		index++
		e := &raftpb.Entry{Index: new(index), Term: new(uint64(1)), Type: new(raftpb.EntryNormal)}
		if err := st.Save(&raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(index)}, []*raftpb.Entry{e}, nil); err != nil {
			b.Fatal(err)
		}
		data, err := newSnapshotData(m, kv.Clone())
		if err != nil {
			b.Fatal(err)
		}
		if err := st.CreateSnapshot(index, cs, data, 5000, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(kv.Bytes()), "state-bytes")
}
