package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func entries(lo, hi, term uint64) []*raftpb.Entry {
	var ents []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		ents = append(ents, &raftpb.Entry{Index: new(i), Term: new(term), Type: new(raftpb.EntryNormal),
			Data: fmt.Appendf(nil, "PAYLOAD-%06d-%s", i, bytes.Repeat([]byte("x"), 100))})
	}
	return ents
}

func openT(t *testing.T, dir string) (*Storage, *Recovered) {
	t.Helper()
	s, rec, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s, rec
}

func fill(t *testing.T, s *Storage, n uint64) {
	t.Helper()
	for i := uint64(1); i <= n; i += 10 {
		ents := entries(i, i+9, 1)
		hs := &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(i + 9)}
		if err := s.Save(hs, ents, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, rec := openT(t, dir)
	if !rec.Fresh {
		t.Fatal("new directory not reported fresh")
	}
	fill(t, s, 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, rec = openT(t, dir)
	defer s.Close()
	if rec.Fresh || rec.LastIndex != 100 || rec.HardState.GetCommit() != 100 {
		t.Fatalf("recovered fresh=%v last=%d commit=%d, want false/100/100", rec.Fresh, rec.LastIndex, rec.HardState.GetCommit())
	}
	ents, err := s.Raft().Entries(1, 101, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range ents {
		if want := entries(uint64(i+1), uint64(i+1), 1)[0]; !bytes.Equal(e.GetData(), want.GetData()) {
			t.Fatalf("entry %d differs after reopen", i+1)
		}
	}
}

func TestSnapshotAndCompaction(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, dir)
	fill(t, s, 100)
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	if err := s.CreateSnapshot(80, cs, Bytes([]byte("state@80")), 10, 0); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.Raft().FirstIndex(); first != 71 {
		t.Fatalf("first index after compaction = %d, want 71", first)
	}
	if err := s.CreateSnapshot(70, cs, Bytes([]byte("old")), 10, 0); err == nil {
		t.Fatal("older snapshot accepted")
	}
	s.Close()

	s, rec := openT(t, dir)
	defer s.Close()
	if got := rec.Snapshot.GetMetadata().GetIndex(); got != 80 || string(rec.Snapshot.GetData()) != "state@80" {
		t.Fatalf("recovered snapshot index %d data %q", got, rec.Snapshot.GetData())
	}
	if first, _ := s.Raft().FirstIndex(); first != 81 {
		t.Fatalf("first index after recovery = %d, want 81", first)
	}
	if rec.LastIndex != 100 {
		t.Fatalf("last index = %d, want 100", rec.LastIndex)
	}
}

// lastWAL returns the newest WAL segment.
func lastWAL(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no wal files: %v", err)
	}
	sort.Strings(names)
	return names[len(names)-1]
}

func TestTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, dir)
	fill(t, s, 100)
	s.Close()

	name := lastWAL(t, dir)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	// Cut the last record short, as a crash in the middle of a write would.
	if err := os.Truncate(name, int64(end-5)); err != nil {
		t.Fatal(err)
	}
	s, rec := openT(t, dir)
	defer s.Close()
	if rec.LastIndex == 0 || rec.LastIndex > 100 {
		t.Fatalf("last index after repair = %d", rec.LastIndex)
	}
	ents, err := s.Raft().Entries(1, rec.LastIndex+1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range ents {
		if want := entries(uint64(i+1), uint64(i+1), 1)[0]; !bytes.Equal(e.GetData(), want.GetData()) {
			t.Fatalf("entry %d corrupted after repair", i+1)
		}
	}
	// The repaired log accepts new writes and survives another reopen.
	next := rec.LastIndex + 1
	if err := s.Save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(next)}, entries(next, next, 1), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, rec = openT(t, dir)
	s.Close()
	if rec.LastIndex != next {
		t.Fatalf("last index after write on repaired log = %d, want %d", rec.LastIndex, next)
	}
}

func TestCorruptRecordRefusesToOpen(t *testing.T) {
	tests := []struct {
		name   string
		target string // payload whose record gets a flipped byte
	}{
		{"middle", "PAYLOAD-000050"},
		{"last entry", "PAYLOAD-000100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := openT(t, dir)
			fill(t, s, 100)
			s.Close()
			name := lastWAL(t, dir)
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(b, []byte(tt.target))
			if i < 0 {
				t.Fatalf("payload %s not found in %s", tt.target, name)
			}
			b[i+20] ^= 0x01
			if err := os.WriteFile(name, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, _, err = Open(Config{Dir: dir})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a WAL with a corrupted record")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open() error = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if _, _, err := Open(Config{}); err == nil {
		t.Fatal("empty dir accepted")
	}
}

func BenchmarkSave(b *testing.B) {
	s, _, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	i := uint64(0)
	for b.Loop() {
		i++
		if err := s.Save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(i)}, entries(i, i, 1), nil); err != nil {
			b.Fatal(err)
		}
	}
}
