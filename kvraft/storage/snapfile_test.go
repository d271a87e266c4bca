package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// TestWriteSnapIsEtcdsFormat checks that etcd's snapshotter loads what
// writeSnap writes, for a state smaller and larger than a chunk.
func TestWriteSnapIsEtcdsFormat(t *testing.T) {
	for _, size := range []int{0, 100, 3*snapChunk + 17} {
		dir := t.TempDir()
		data := bytes.Repeat([]byte{0x5a, 0x01, 0x99}, size/3+1)[:size]
		idx, term := uint64(42), uint64(3)
		sn := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: &idx, Term: &term,
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
		if err := writeSnap(dir, sn); err != nil {
			t.Fatal(err)
		}
		got, err := snap.New(zap.NewNop(), dir).Load()
		if err != nil {
			t.Fatalf("size %d: etcd cannot load it: %v", size, err)
		}
		if !bytes.Equal(got.GetData(), data) || got.GetMetadata().GetIndex() != idx || got.GetMetadata().GetTerm() != term ||
			len(got.GetMetadata().GetConfState().GetVoters()) != 3 {
			t.Fatalf("size %d: loaded %d bytes at %d/%d", size, len(got.GetData()), got.GetMetadata().GetTerm(), got.GetMetadata().GetIndex())
		}
		// readSnap reads it back, and what etcd's snapshotter writes too.
		name := filepath.Join(dir, fmt.Sprintf("%016x-%016x.snap", term, idx))
		for _, writer := range []string{"writeSnap", "etcd"} {
			if writer == "etcd" {
				os.Remove(name)
				if err := snap.New(zap.NewNop(), dir).SaveSnap(sn); err != nil {
					t.Fatal(err)
				}
			}
			back, err := readSnap(name)
			if err != nil && size > 0 {
				t.Fatalf("size %d, written by %s: readSnap: %v", size, writer, err)
			}
			if size > 0 && (!bytes.Equal(back.GetData(), data) || back.GetMetadata().GetIndex() != idx ||
				len(back.GetMetadata().GetConfState().GetVoters()) != 3) {
				t.Fatalf("size %d, written by %s: readSnap read %d bytes at %d", size, writer, len(back.GetData()), back.GetMetadata().GetIndex())
			}
		}
	}
}

// FuzzParseSnap checks that any bytes in a snapshot file give a snapshot
// or an error, never a panic, and that what parses is what was written.
func FuzzParseSnap(f *testing.F) {
	dir := f.TempDir()
	idx, term := uint64(7), uint64(2)
	sn := &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: &idx, Term: &term,
		ConfState: &raftpb.ConfState{Voters: []uint64{1}}}}
	if err := writeSnap(dir, sn); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%016x-%016x.snap", term, idx)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sn, err := parseSnap(b)
		if err == nil && sn == nil {
			t.Fatal("no snapshot and no error")
		}
	})
}
