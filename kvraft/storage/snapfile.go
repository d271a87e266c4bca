package storage

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
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

// ErrSnapshotSize reports snapshot data that wrote more or fewer bytes
// than its Size (it comes wrapped in ErrSnapshotFile).
var ErrSnapshotSize = errors.New("storage: snapshot data does not match its size")

// SnapshotData is the state machine's data of a snapshot, streamed into
// the snapshot file rather than held in memory whole.
type SnapshotData interface {
	// Size returns the exact number of bytes WriteTo writes: the file's
	// lengths are written before the data.
	Size() int64
	// WriteTo writes the data to w. It is called once.
	io.WriterTo
}

// Bytes returns b as SnapshotData.
func Bytes(b []byte) SnapshotData { return byteData(b) }

type byteData []byte

func (b byteData) Size() int64 { return int64(len(b)) }

func (b byteData) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

// writeSnap writes a snapshot with metadata md and data as etcd's
// snapshotter does (same file name and format, so Snapshotter.Load reads
// it), streaming the data into the file: no copy of it is held in memory
// besides a one-chunk buffer. The file is a snappb.Snapshot{Crc: 1,
// Data: 2} message whose Data is a raftpb.Snapshot{Data: 1, Metadata: 2};
// the outer fields are written in the order Data, Crc (protobuf decoders
// take fields in any order), so the CRC is computed while the data is
// written and appended last.
//
// The data is written a chunk at a time, starting each chunk's write-out
// at once and waiting for the previous one's before going on. Writing a
// large state in one go and syncing at the end leaves tens of megabytes
// dirty, and the WAL's next fsync waits behind their write-out: every
// commit of the cluster stalls. This way at most two chunks are ever in
// flight.
//
// The file is written under a temporary name, synced, renamed and its
// directory synced. An error before the rename, data that writes more or
// fewer bytes than its Size included (ErrSnapshotSize), leaves no file
// behind.
func writeSnap(dir string, md *raftpb.SnapshotMetadata, data SnapshotData) error {
	mdb, err := proto.Marshal(md)
	if err != nil {
		return fmt.Errorf("marshal snapshot metadata: %w", err)
	}
	size := data.Size()
	if size < 0 {
		return fmt.Errorf("%w: negative size %d", ErrSnapshotSize, size)
	}
	inner := protowire.AppendTag(nil, 1, protowire.BytesType)
	inner = protowire.AppendVarint(inner, uint64(size))
	tail := protowire.AppendTag(nil, 2, protowire.BytesType)
	tail = protowire.AppendVarint(tail, uint64(len(mdb)))
	tail = append(tail, mdb...)
	head := protowire.AppendTag(nil, 2, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(inner))+uint64(size)+uint64(len(tail)))
	head = append(head, inner...)
	name := filepath.Join(dir, fmt.Sprintf("%016x-%016x.snap", md.GetTerm(), md.GetIndex()))
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create snapshot file: %w", err)
	}
	defer os.Remove(tmp) // after the rename, a no-op
	cw := &chunkWriter{f: f, fd: int(f.Fd()), size: size, crc: crc32.Update(0, snapCRC, inner)}
	if err := cw.writeAll(head, data, tail); err != nil {
		f.Close()
		return err
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

// chunkWriter writes a snapshot's data to its file: at most size bytes,
// updating crc, starting the write-out of every chunk of snapChunk bytes
// as soon as it is written and then waiting for the previous chunk's.
type chunkWriter struct {
	f       *os.File
	fd      int
	size    int64 // bytes of data declared
	n       int64 // and written
	crc     uint32
	pos     int64 // file offset of the next write
	started int64 // write-out is started up to here
	waited  int64 // and awaited up to here
}

// writeAll writes head, then data through a one-chunk buffer, then tail
// and the CRC field (of the bytes after the head's inner field and tail).
func (w *chunkWriter) writeAll(head []byte, data SnapshotData, tail []byte) error {
	if _, err := w.f.Write(head); err != nil {
		return fmt.Errorf("write snapshot file: %w", err)
	}
	w.pos, w.started, w.waited = int64(len(head)), int64(len(head)), int64(len(head))
	bw := bufio.NewWriterSize(w, snapChunk)
	_, err := data.WriteTo(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("write snapshot data: %w", err)
	}
	if w.n != w.size {
		return fmt.Errorf("%w: %d bytes written, %d declared", ErrSnapshotSize, w.n, w.size)
	}
	crc := crc32.Update(w.crc, snapCRC, tail)
	tail = protowire.AppendTag(tail, 1, protowire.VarintType)
	tail = protowire.AppendVarint(tail, uint64(crc))
	if _, err := w.f.Write(tail); err != nil {
		return fmt.Errorf("write snapshot file: %w", err)
	}
	return nil
}

// Write implements io.Writer; it refuses to write past size.
func (w *chunkWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.size-w.n {
		return 0, fmt.Errorf("%w: more than the %d bytes declared", ErrSnapshotSize, w.size)
	}
	written := 0
	for len(p) > 0 {
		k := min(len(p), snapChunk)
		n, err := w.f.Write(p[:k])
		w.crc = crc32.Update(w.crc, snapCRC, p[:n])
		w.n += int64(n)
		w.pos += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		p = p[k:]
		if w.pos-w.started >= snapChunk {
			// Start writing this chunk out and wait for the one before.
			_ = unix.SyncFileRange(w.fd, w.started, w.pos-w.started, unix.SYNC_FILE_RANGE_WRITE)
			if w.started > w.waited {
				_ = unix.SyncFileRange(w.fd, w.waited, w.started-w.waited,
					unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			}
			w.waited, w.started = w.started, w.pos
		}
	}
	return written, nil
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
