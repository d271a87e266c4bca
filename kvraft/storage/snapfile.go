package storage

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// snapChunk is how much of a snapshot file is written before its write-out
// is started and the previous chunk's awaited.
const snapChunk = 1 << 20

var snapCRC = crc32.MakeTable(crc32.Castagnoli)

// writeSnap writes sn as etcd's snapshotter does (same file name and
// format, so Snapshotter.Load reads it), but a chunk at a time, starting
// each chunk's write-out at once and waiting for the previous one's before
// going on. Writing a large state in one go and syncing at the end leaves
// tens of megabytes dirty, and the WAL's next fsync waits behind their
// write-out: every commit of the cluster stalls. This way at most two chunks
// are ever in flight.
func writeSnap(dir string, sn *raftpb.Snapshot) error {
	md := sn.GetMetadata()
	mdb, err := proto.Marshal(md)
	if err != nil {
		return fmt.Errorf("marshal snapshot metadata: %w", err)
	}
	// The file is a snappb.Snapshot{Crc: 1, Data: 2} message whose Data is
	// a raftpb.Snapshot{Data: 1, Metadata: 2}. Both heads are written by
	// hand, so that the large state is written from where it is, not from
	// one more copy of it as proto.Marshal would make.
	data := sn.GetData()
	inner := protowire.AppendTag(nil, 1, protowire.BytesType)
	inner = protowire.AppendVarint(inner, uint64(len(data)))
	tail := protowire.AppendTag(nil, 2, protowire.BytesType)
	tail = protowire.AppendVarint(tail, uint64(len(mdb)))
	tail = append(tail, mdb...)
	crc := crc32.Update(0, snapCRC, inner)
	crc = crc32.Update(crc, snapCRC, data)
	crc = crc32.Update(crc, snapCRC, tail)
	head := protowire.AppendTag(nil, 1, protowire.VarintType)
	head = protowire.AppendVarint(head, uint64(crc))
	head = protowire.AppendTag(head, 2, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(inner)+len(data)+len(tail)))
	head = append(head, inner...)
	name := filepath.Join(dir, fmt.Sprintf("%016x-%016x.snap", md.GetTerm(), md.GetIndex()))
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create snapshot file: %w", err)
	}
	defer os.Remove(tmp) // after the rename, a no-op
	if _, err := f.Write(head); err != nil {
		f.Close()
		return fmt.Errorf("write snapshot file: %w", err)
	}
	fd, base := int(f.Fd()), int64(len(head))
	for off := 0; off < len(data); off += snapChunk {
		end := min(off+snapChunk, len(data))
		if _, err := f.Write(data[off:end]); err != nil {
			f.Close()
			return fmt.Errorf("write snapshot file: %w", err)
		}
		// Start writing this chunk out and wait for the one before.
		_ = unix.SyncFileRange(fd, base+int64(off), int64(end-off), unix.SYNC_FILE_RANGE_WRITE)
		if off >= snapChunk {
			_ = unix.SyncFileRange(fd, base+int64(off-snapChunk), snapChunk,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		}
	}
	if _, err := f.Write(tail); err != nil {
		f.Close()
		return fmt.Errorf("write snapshot file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync snapshot file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close snapshot file: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename snapshot file: %w", err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open snapshot dir: %w", err)
	}
	defer dirf.Close()
	if err := dirf.Sync(); err != nil {
		return fmt.Errorf("sync snapshot dir: %w", err)
	}
	return nil
}

// readSnap reads a snapshot file that writeSnap or etcd's snapshotter
// wrote. Unlike snap.Read, which holds three copies of the state at once
// (the file, the checked data, the decoded snapshot), the snapshot's data
// is a slice of the file's bytes.
func readSnap(path string) (*raftpb.Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sn, err := parseSnap(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sn, nil
}

// parseSnap decodes a snapshot file's bytes; the data aliases b.
func parseSnap(b []byte) (*raftpb.Snapshot, error) {
	var crc uint64
	var body []byte
	crcSet := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("snapshot file: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			crc, n = protowire.ConsumeVarint(b)
			crcSet = true
		case num == 2 && typ == protowire.BytesType:
			body, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, fmt.Errorf("snapshot file: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	if !crcSet || len(body) == 0 {
		return nil, errors.New("snapshot file: empty snapshot")
	}
	if got := crc32.Update(0, snapCRC, body); uint64(got) != crc {
		return nil, errors.New("snapshot file: crc mismatch")
	}
	sn := &raftpb.Snapshot{}
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return nil, fmt.Errorf("snapshot file: %w", protowire.ParseError(n))
		}
		body = body[n:]
		var v []byte
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n = protowire.ConsumeBytes(body)
			sn.Data = v
		case num == 2 && typ == protowire.BytesType:
			v, n = protowire.ConsumeBytes(body)
			if n >= 0 {
				md := &raftpb.SnapshotMetadata{}
				if err := proto.Unmarshal(v, md); err != nil {
					return nil, fmt.Errorf("snapshot file: metadata: %w", err)
				}
				sn.Metadata = md
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, body)
		}
		if n < 0 {
			return nil, fmt.Errorf("snapshot file: %w", protowire.ParseError(n))
		}
		body = body[n:]
	}
	return sn, nil
}
