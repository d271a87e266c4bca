package storage

import (
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
	b, err := proto.Marshal(sn)
	if err != nil {
		return fmt.Errorf("marshal snapshot: %w", err)
	}
	// The file is a snappb.Snapshot{Crc: 1, Data: 2} message; its head is
	// written by hand so that the large data is not copied once more.
	crc := crc32.Update(0, snapCRC, b)
	head := protowire.AppendTag(nil, 1, protowire.VarintType)
	head = protowire.AppendVarint(head, uint64(crc))
	head = protowire.AppendTag(head, 2, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(b)))
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
	for off := 0; off < len(b); off += snapChunk {
		end := min(off+snapChunk, len(b))
		if _, err := f.Write(b[off:end]); err != nil {
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
