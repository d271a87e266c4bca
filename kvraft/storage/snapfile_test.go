package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"
)

// pieceData writes b in pieces of the given sizes (cycling), declaring
// size; nil pieces write b in one call.
type pieceData struct {
	b      []byte
	pieces []int
	size   int64
	err    error // returned after b was written
}

func (d pieceData) Size() int64 { return d.size }

func (d pieceData) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for i, b := 0, d.b; len(b) > 0; i++ {
		k := len(b)
		if len(d.pieces) > 0 {
			k = min(k, d.pieces[i%len(d.pieces)])
		}
		m, err := w.Write(b[:k])
		n += int64(m)
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, d.err
}

func pattern(size int) []byte {
	return bytes.Repeat([]byte{0x5a, 0x01, 0x99}, size/3+1)[:size]
}

func snapMeta(idx, term uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{Index: new(idx), Term: new(term), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}
}

// TestWriteSnapIsEtcdsFormat checks that a streamed snapshot file holds
// Data then Crc, and that etcd's snapshotter and readSnap load it, for
// states smaller and larger than a chunk, written in pieces smaller and
// larger than a chunk.
func TestWriteSnapIsEtcdsFormat(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		pieces []int
	}{
		{"empty", 0, nil},
		{"small", 100, nil},
		{"one byte at a time", 300, []int{1}},
		{"chunk less one", snapChunk - 1, nil},
		{"one chunk", snapChunk, nil},
		{"chunks in odd pieces", 3*snapChunk + 17, []int{7, 65536, snapChunk + 3, 1}},
		{"pieces over two chunks", 5*snapChunk + 1, []int{2*snapChunk + 5}},
	}
	idx, term := uint64(42), uint64(3)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data := pattern(tt.size)
			if err := writeSnap(dir, snapMeta(idx, term), pieceData{b: data, pieces: tt.pieces, size: int64(len(data))}); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, fmt.Sprintf("%016x-%016x.snap", term, idx))
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			// The outer message: Data (2), then Crc (1), nothing else.
			var fields []protowire.Number
			for rest := b; len(rest) > 0; {
				num, typ, n := protowire.ConsumeTag(rest)
				if n < 0 {
					t.Fatalf("bad tag: %v", protowire.ParseError(n))
				}
				rest = rest[n:]
				n = protowire.ConsumeFieldValue(num, typ, rest)
				if n < 0 {
					t.Fatalf("bad field %d: %v", num, protowire.ParseError(n))
				}
				rest = rest[n:]
				fields = append(fields, num)
			}
			if fmt.Sprint(fields) != "[2 1]" {
				t.Fatalf("outer fields %v, want [2 1]", fields)
			}

			check := func(who string, got *raftpb.Snapshot) {
				t.Helper()
				if !bytes.Equal(got.GetData(), data) || got.GetMetadata().GetIndex() != idx || got.GetMetadata().GetTerm() != term ||
					len(got.GetMetadata().GetConfState().GetVoters()) != 3 {
					t.Fatalf("%s loaded %d bytes at %d/%d", who, len(got.GetData()), got.GetMetadata().GetTerm(), got.GetMetadata().GetIndex())
				}
			}
			got, err := snap.New(zap.NewNop(), dir).Load()
			if err != nil {
				t.Fatalf("etcd cannot load it: %v", err)
			}
			check("etcd's Load", got)
			got, err = snap.Read(zap.NewNop(), name)
			if err != nil {
				t.Fatalf("etcd cannot read it: %v", err)
			}
			check("etcd's Read", got)
			got, err = readSnap(name)
			if err != nil {
				t.Fatalf("readSnap: %v", err)
			}
			check("readSnap", got)

			// readSnap reads what etcd's snapshotter writes too.
			os.Remove(name)
			sn := &raftpb.Snapshot{Data: data, Metadata: snapMeta(idx, term)}
			if err := snap.New(zap.NewNop(), dir).SaveSnap(sn); err != nil {
				t.Fatal(err)
			}
			if got, err = readSnap(name); err != nil {
				t.Fatalf("readSnap of etcd's file: %v", err)
			}
			check("readSnap of etcd's file", got)
		})
	}
}

// TestCreateSnapshotFailureLeavesNothing checks that a snapshot whose file
// cannot be written, or whose data writes another size than it declared,
// is an error matching ErrSnapshotFile that leaves no file and no
// snapshot behind, and that the next snapshot works.
func TestCreateSnapshotFailureLeavesNothing(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		data SnapshotData
		hook func(dir string, md *raftpb.SnapshotMetadata, data SnapshotData) error
		want error
	}{
		{"one byte short", pieceData{b: pattern(99), size: 100}, nil, ErrSnapshotSize},
		{"nothing of a declared size", pieceData{size: 10}, nil, ErrSnapshotSize},
		{"one byte over", pieceData{b: pattern(101), size: 100}, nil, ErrSnapshotSize},
		{"over by chunks", pieceData{b: pattern(3*snapChunk + 5), size: snapChunk, pieces: []int{4096}}, nil, ErrSnapshotSize},
		{"data declared empty", pieceData{b: pattern(1)}, nil, ErrSnapshotSize},
		{"negative size", pieceData{size: -1}, nil, ErrSnapshotSize},
		{"data fails", pieceData{b: pattern(snapChunk + 9), size: 2 * snapChunk, err: boom}, nil, boom},
		{"fd limit", Bytes([]byte("state")), func(string, *raftpb.SnapshotMetadata, SnapshotData) error {
			return fmt.Errorf("create snapshot file: %w", syscall.EMFILE)
		}, syscall.EMFILE},
		{"disk full midway", Bytes(pattern(2*snapChunk + 3)), func(dir string, md *raftpb.SnapshotMetadata, data SnapshotData) error {
			return writeSnap(dir, md, failingData{data, snapChunk + 5})
		}, syscall.ENOSPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var calls atomic.Int32
			cfg := Config{Dir: dir}
			if tt.hook != nil {
				cfg.writeSnap = func(dir string, md *raftpb.SnapshotMetadata, data SnapshotData) error {
					if calls.Add(1) == 1 {
						return tt.hook(dir, md, data)
					}
					return writeSnap(dir, md, data)
				}
			}
			s, _, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fill(t, s, 100)
			cs := &raftpb.ConfState{Voters: []uint64{1}}
			err = s.CreateSnapshot(80, cs, tt.data, 10, 0)
			if !errors.Is(err, ErrSnapshotFile) || !errors.Is(err, tt.want) {
				t.Fatalf("CreateSnapshot() error = %v, want ErrSnapshotFile and %v", err, tt.want)
			}
			if names, _ := filepath.Glob(filepath.Join(dir, "snap", "*")); len(names) > 0 {
				t.Fatalf("files left behind: %v", names)
			}
			if sn, _ := s.Raft().Snapshot(); sn.GetMetadata().GetIndex() != 0 {
				t.Fatalf("snapshot at %d recorded", sn.GetMetadata().GetIndex())
			}
			if first, _ := s.Raft().FirstIndex(); first != 1 {
				t.Fatalf("log compacted to %d", first)
			}
			if err := s.CreateSnapshot(80, cs, Bytes([]byte("state@80")), 10, 0); err != nil {
				t.Fatalf("the next snapshot: %v", err)
			}
			s.Close()
			s, rec := openT(t, dir)
			defer s.Close()
			if got := rec.Snapshot.GetMetadata().GetIndex(); got != 80 || string(rec.Snapshot.GetData()) != "state@80" {
				t.Fatalf("recovered snapshot index %d data %q", got, rec.Snapshot.GetData())
			}
		})
	}
}

// failingData writes data until after bytes, then fails as a full disk.
type failingData struct {
	SnapshotData
	after int
}

func (d failingData) WriteTo(w io.Writer) (int64, error) {
	return d.SnapshotData.WriteTo(&failingWriter{w: w, left: d.after})
}

type failingWriter struct {
	w    io.Writer
	left int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n, _ := w.w.Write(p[:w.left])
		w.left = 0
		return n, fmt.Errorf("write: %w", syscall.ENOSPC)
	}
	w.left -= len(p)
	return w.w.Write(p)
}

// FuzzParseSnap checks that any bytes in a snapshot file give a snapshot
// or an error, never a panic, and that what parses is what was written.
func FuzzParseSnap(f *testing.F) {
	dir := f.TempDir()
	idx, term := uint64(7), uint64(2)
	md := &raftpb.SnapshotMetadata{Index: &idx, Term: &term, ConfState: &raftpb.ConfState{Voters: []uint64{1}}}
	if err := writeSnap(dir, md, Bytes([]byte("state"))); err != nil {
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
