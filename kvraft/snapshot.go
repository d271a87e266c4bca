package kvraft

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/pennyhq/penny/kvraft/kvstore"
	"github.com/pennyhq/penny/kvraft/storage"
)

var (
	// ErrBadSnapshot reports snapshot data that cannot be decoded.
	ErrBadSnapshot = errors.New("kvraft: bad snapshot data")
	// ErrSnapshotFormat reports a snapshot in a format this version cannot
	// read (it also matches ErrBadSnapshot).
	ErrSnapshotFormat = errors.New("kvraft: unsupported snapshot format")
)

// The snapshot header is snapshotPrefix, one format digit and a newline.
// Format 1 had no per-key mod indexes; format 2 adds them.
const (
	snapshotPrefix = "PNYKV"
	snapshotFormat = '2'
)

var snapshotMagic = []byte(snapshotPrefix + string(rune(snapshotFormat)) + "\n")

const maxSnapshotMeta = 1 << 20

// snapshotData is the serialized state machine, written into the snapshot
// file as it is encoded (it implements storage.SnapshotData): a magic
// header, the length-prefixed JSON membership, then the key-value pairs
// with their mod indexes (kvstore.Store.WriteTo). kv must not change
// until it is written: it is a clone.
type snapshotData struct {
	head   []byte // the magic header and the membership
	kv     *kvstore.Store
	kvSize int64
}

// newSnapshotData encodes the membership and sizes kv's encoding.
func newSnapshotData(m *membership, kv *kvstore.Store) (*snapshotData, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode membership: %w", err)
	}
	head := make([]byte, 0, len(snapshotMagic)+binary.MaxVarintLen64+len(meta))
	head = append(head, snapshotMagic...)
	head = binary.AppendUvarint(head, uint64(len(meta)))
	head = append(head, meta...)
	return &snapshotData{head: head, kv: kv, kvSize: kv.EncodedSize()}, nil
}

// Size returns the number of bytes WriteTo writes.
func (d *snapshotData) Size() int64 { return int64(len(d.head)) + d.kvSize }

// WriteTo writes the snapshot data to w.
func (d *snapshotData) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(d.head)
	if err != nil {
		return int64(n), fmt.Errorf("write snapshot: %w", err)
	}
	k, err := d.kv.WriteTo(w)
	return int64(n) + k, err
}

func decodeSnapshot(b []byte) (*membership, *kvstore.Store, error) {
	rest, ok := bytes.CutPrefix(b, []byte(snapshotPrefix))
	if !ok || len(rest) < 2 || rest[1] != '\n' {
		return nil, nil, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	switch f := rest[0]; f {
	case snapshotFormat:
	case '1':
		// Mod indexes cannot be reconstructed deterministically: replicas
		// snapshot at different indexes.
		return nil, nil, fmt.Errorf("%w: %w: format 1 predates per-key mod indexes; "+
			"replace this member (remove it, wipe its data dir, add it under a new id)", ErrBadSnapshot, ErrSnapshotFormat)
	default:
		return nil, nil, fmt.Errorf("%w: %w: unknown format %q (this version reads format %c)", ErrBadSnapshot, ErrSnapshotFormat, f, snapshotFormat)
	}
	rest = rest[2:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > maxSnapshotMeta || n > uint64(len(rest)-k) {
		return nil, nil, fmt.Errorf("%w: bad membership length", ErrBadSnapshot)
	}
	m := newMembership()
	if err := json.Unmarshal(rest[k:k+int(n)], m); err != nil {
		return nil, nil, fmt.Errorf("%w: membership: %w", ErrBadSnapshot, err)
	}
	if m.Members == nil {
		m.Members = map[uint64]Member{}
	}
	if m.Removed == nil {
		m.Removed = map[uint64]bool{}
	}
	for id, mem := range m.Members {
		if mem.ID != id {
			return nil, nil, fmt.Errorf("%w: member key %d holds id %d", ErrBadSnapshot, id, mem.ID)
		}
	}
	kv, err := kvstore.Decode(rest[k+int(n):])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	return m, kv, nil
}

// maybeSnapshot snapshots the state machine in the background once
// SnapshotCount entries, or SnapshotBytes of entries and at least the
// store's bytes, were applied since the last snapshot, or after a
// membership change. The store is cloned in O(1)
// so applies continue while it is serialized, straight into the snapshot
// file: no buffer holds the whole state.
func (n *Node) maybeSnapshot() {
	applied, last := n.applied.Load(), n.snapIndex.Load()
	bytes := n.appliedBytes.Load()
	// Members snapshot at staggered points: all of them serializing a
	// large state at once would stall the whole cluster at once.
	every := n.cfg.SnapshotCount + n.id%4*n.cfg.SnapshotCount/8
	// By bytes, a snapshot comes once the log since the last one weighs
	// SnapshotBytes or the store as the last one saved it, whichever is
	// more: serializing the store then costs about what writing the log
	// did, and the log held in memory grows with the store (its series),
	// not with time or the size of entries.
	everyBytes := max(n.cfg.SnapshotBytes, uint64(max(n.snapStoreBytes.Load(), 0)))
	everyBytes += n.id % 4 * everyBytes / 8
	due := applied-last >= every || bytes-n.snapBytes.Load() >= everyBytes || (n.confChanged.Load() && applied > last)
	if !due || time.Now().UnixNano() < n.snapRetryAt.Load() || !n.snapshotting.CompareAndSwap(false, true) {
		return
	}
	forced := n.confChanged.Swap(false)
	n.stateMu.RLock()
	kv := n.kv.Clone()
	index := n.applied.Load()
	n.stateMu.RUnlock()
	// Counted from now: a snapshot that fails is tried again by its
	// backoff, not at once by the bytes still due.
	n.snapBytes.Store(n.appliedBytes.Load())
	n.snapStoreBytes.Store(kv.Bytes())
	n.memMu.RLock()
	m := n.members.clone()
	cs := proto.Clone(n.confState).(*raftpb.ConfState)
	n.memMu.RUnlock()
	n.wg.Go(func() {
		defer n.snapshotting.Store(false)
		data, err := newSnapshotData(m, kv)
		if err != nil {
			n.fail(fmt.Errorf("encode snapshot: %w", err))
			return
		}
		err = n.storage.CreateSnapshot(index, cs, data, n.cfg.SnapshotCatchUpEntries, n.cfg.SnapshotCatchUpBytes)
		switch {
		case errors.Is(err, raft.ErrSnapOutOfDate), errors.Is(err, storage.ErrClosed):
			return
		case errors.Is(err, storage.ErrSnapshotFile):
			n.snapshotFailed(err, index, forced)
			return
		case err != nil:
			n.fail(fmt.Errorf("save snapshot: %w", err))
			return
		}
		if f := n.snapFailures.Swap(0); f > 0 {
			n.log.Info("snapshots work again", "index", index, "after_failures", f)
		}
		// A snapshot installed from the leader meanwhile may be newer.
		for old := n.snapIndex.Load(); old < index && !n.snapIndex.CompareAndSwap(old, index); old = n.snapIndex.Load() {
		}
		n.metrics.snapshots.Inc()
		n.metrics.snapshotBytes.Set(float64(data.Size()))
		n.log.Debug("snapshot saved", "index", index, "bytes", data.Size(), "keys", kv.Len())
	})
}

// maxSnapshotBacklog is how many SnapshotCounts of entries may pile up
// behind the last snapshot while snapshots fail, before the replica stops:
// its in-memory log is no longer compacted.
const maxSnapshotBacklog = 4

// snapshotFailed handles a snapshot file that could not be written (the fd
// limit, a full disk): nothing changed, so it is counted, logged and tried
// again after a backoff (1s doubling, at most a minute). The replica stops,
// so that its supervisor restarts it, once maxSnapshotBacklog
// SnapshotCounts of entries have piled up behind its last snapshot.
func (n *Node) snapshotFailed(err error, index uint64, forced bool) {
	f := n.snapFailures.Add(1)
	n.metrics.backgroundErrors.WithLabelValues("snapshot").Inc()
	backoff := min(time.Second<<min(f-1, 6), time.Minute)
	n.snapRetryAt.Store(time.Now().Add(backoff).UnixNano())
	if forced {
		n.confChanged.Store(true) // the snapshot a membership change forces is still due
	}
	backlog := index - n.snapIndex.Load()
	if limit := maxSnapshotBacklog * n.cfg.SnapshotCount; backlog > limit {
		n.fail(fmt.Errorf("%d entries behind the last snapshot and snapshots keep failing (%d in a row): %w", backlog, f, err))
		return
	}
	n.log.Error("writing a snapshot failed; retrying", "index", index, "err", err, "failures", f, "retry_in", backoff)
}
