package storage

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// memStorage is the raft.Storage a node's Raft reads: a MemoryStorage
// whose snapshot holds no data in memory. MemoryStorage clones the whole
// snapshot, data included, in CreateSnapshot, ApplySnapshot and Snapshot,
// and keeps it for good: with the state in the data, that is one more copy
// of the store for as long as the replica runs. Here only the metadata is
// kept; the data is on disk, in the snapshot file the storage wrote before
// telling Raft about it. Raft asks for it (Snapshot) only to send it to a
// follower that fell behind the log: then it is read back from its file in
// the background, and Raft is told to retry
// (raft.ErrSnapshotTemporarilyUnavailable) until it is loaded.
type memStorage struct {
	*raft.MemoryStorage
	dir string
	log *slog.Logger
	wg  *sync.WaitGroup

	mu      sync.Mutex
	loaded  *raftpb.Snapshot // the current snapshot read back, if it was
	loading bool
}

// Snapshot implements raft.Storage.
func (m *memStorage) Snapshot() (*raftpb.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sn, err := m.MemoryStorage.Snapshot()
	if err != nil || raft.IsEmptySnap(sn) {
		return sn, err
	}
	md := sn.GetMetadata()
	if l := m.loaded; l != nil && l.GetMetadata().GetIndex() == md.GetIndex() && l.GetMetadata().GetTerm() == md.GetTerm() {
		sn.Data = l.GetData()
		return sn, nil
	}
	if !m.loading {
		m.loading = true
		path := filepath.Join(m.dir, fmt.Sprintf("%016x-%016x.snap", md.GetTerm(), md.GetIndex()))
		m.wg.Go(func() { m.load(path, md.GetIndex()) })
	}
	return nil, raft.ErrSnapshotTemporarilyUnavailable
}

func (m *memStorage) load(path string, index uint64) {
	sn, err := readSnap(path)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loading = false
	if err != nil {
		m.log.Error("cannot read back the snapshot to send to a follower; retrying", "path", path, "err", err)
		return
	}
	if sn.GetMetadata().GetIndex() != index {
		m.log.Error("snapshot file holds another index", "path", path, "index", sn.GetMetadata().GetIndex(), "want", index)
		return
	}
	m.loaded = sn
}

// applySnapshot is MemoryStorage.ApplySnapshot without keeping the data.
func (m *memStorage) applySnapshot(sn *raftpb.Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.MemoryStorage.ApplySnapshot(&raftpb.Snapshot{Metadata: sn.GetMetadata()}); err != nil {
		return err
	}
	m.loaded = nil
	return nil
}

// createSnapshot is MemoryStorage.CreateSnapshot without keeping the data.
func (m *memStorage) createSnapshot(index uint64, cs *raftpb.ConfState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.MemoryStorage.CreateSnapshot(index, cs, nil); err != nil {
		return err
	}
	m.loaded = nil
	return nil
}
