package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/pennyhq/penny/kvraft/internal/zapslog"
)

var (
	// ErrCorrupt reports a data directory that cannot be recovered safely.
	ErrCorrupt = errors.New("storage: corrupt data directory")
	// ErrClosed reports use of a closed Storage.
	ErrClosed = errors.New("storage: closed")
	// ErrCommitBeyondLog reports a log whose hard state commits entries it
	// does not hold: acknowledged entries were lost (it also matches
	// ErrCorrupt).
	ErrCommitBeyondLog = errors.New("storage: commit index beyond the last entry of the log")
	// ErrSnapshotFile reports a snapshot file that could not be written;
	// the storage is unchanged and the snapshot may be retried.
	ErrSnapshotFile = errors.New("storage: cannot write snapshot file")
)

// Config configures a Storage.
type Config struct {
	// Dir is the data directory; it holds wal/ and snap/.
	Dir string
	// MaxSnapshotFiles and MaxWALFiles bound how many old files are kept
	// (0 means 5).
	MaxSnapshotFiles uint
	MaxWALFiles      uint
	// PurgeInterval is how often old files are removed (0 means 30s).
	PurgeInterval time.Duration
	// Logger receives the storage's logs (discarded if nil).
	Logger *slog.Logger
	// OnBackgroundError, if set, is called with every error of a
	// background loop ("purge"); the loop retries.
	OnBackgroundError func(loop string, err error)

	// writeSnap and readDir replace the file operations in tests.
	writeSnap func(dir string, md *raftpb.SnapshotMetadata, data SnapshotData) error
	readDir   func(dir string) ([]string, error)
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.MaxSnapshotFiles == 0 {
		c.MaxSnapshotFiles = 5
	}
	if c.MaxWALFiles == 0 {
		c.MaxWALFiles = 5
	}
	if c.PurgeInterval == 0 {
		c.PurgeInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnBackgroundError == nil {
		c.OnBackgroundError = func(string, error) {}
	}
	if c.writeSnap == nil {
		c.writeSnap = writeSnap
	}
	if c.readDir == nil {
		c.readDir = func(dir string) ([]string, error) { return fileutil.ReadDir(dir) }
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("storage: empty data directory")
	}
	return nil
}

// Storage is a replica's durable Raft log. Save and the snapshot methods may
// be called from different goroutines.
type Storage struct {
	cfg  Config
	log  *slog.Logger
	zlog *zap.Logger

	mem         *memStorage
	snapshotter *snap.Snapshotter

	mu     sync.Mutex // guards w and snapshot operations
	w      *wal.WAL
	closed bool
	// snapIndex is the index of mem's snapshot (reading it from mem
	// would copy the whole snapshot).
	snapIndex uint64

	stopPurge chan struct{}
	purgeWG   sync.WaitGroup
}

// Recovered is what Open found on disk.
type Recovered struct {
	// Fresh is true when the directory held no WAL.
	Fresh     bool
	Snapshot  *raftpb.Snapshot // empty if none
	HardState *raftpb.HardState
	// LastIndex is the index of the last entry in the log.
	LastIndex uint64
	// Repaired names the WAL file whose torn tail was cut at this open
	// ("" if none); the cut-off bytes are kept in Repaired + ".broken".
	Repaired string
}

func (s *Storage) walDir() string  { return filepath.Join(s.cfg.Dir, "wal") }
func (s *Storage) snapDir() string { return filepath.Join(s.cfg.Dir, "snap") }

// Open opens or creates the data directory and loads it into memory. It
// completes cfg with the defaults first.
func Open(cfg Config) (*Storage, *Recovered, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	log := cfg.Logger
	s := &Storage{cfg: cfg, log: log, zlog: zapslog.New(log), stopPurge: make(chan struct{})}
	s.mem = &memStorage{MemoryStorage: raft.NewMemoryStorage(), dir: s.snapDir(), log: log, wg: &s.purgeWG}
	if err := os.MkdirAll(s.snapDir(), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create snapshot dir: %w", err)
	}
	s.snapshotter = snap.New(s.zlog, s.snapDir())

	rec := &Recovered{Snapshot: &raftpb.Snapshot{}, HardState: &raftpb.HardState{}}
	if !wal.Exist(s.walDir()) {
		w, err := wal.Create(s.zlog, s.walDir(), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("create wal: %w", err)
		}
		s.w = w
		rec.Fresh = true
		s.startPurge()
		return s, rec, nil
	}
	if err := s.recover(rec); err != nil {
		if s.w != nil {
			s.w.Close()
		}
		if errors.Is(err, ErrCorrupt) {
			s.log.Error("refusing to start: the data directory is damaged beyond a torn tail; replace this replica "+
				"(remove it from the cluster, wipe its data dir, add it again)", "dir", cfg.Dir, "err", err)
		}
		return nil, nil, err
	}
	s.startPurge()
	return s, rec, nil
}

func (s *Storage) recover(rec *Recovered) error {
	walSnaps, err := wal.ValidSnapshotEntries(s.zlog, s.walDir())
	if err != nil {
		return fmt.Errorf("%w: read wal snapshot markers: %w", ErrCorrupt, err)
	}
	sn, err := s.snapshotter.LoadNewestAvailable(walSnaps)
	switch {
	case errors.Is(err, snap.ErrNoSnapshot):
		sn = &raftpb.Snapshot{}
	case err != nil:
		return fmt.Errorf("%w: load snapshot: %w", ErrCorrupt, err)
	}
	walsnap := &walpb.Snapshot{Index: new(uint64), Term: new(uint64)}
	if !raft.IsEmptySnap(sn) {
		md := sn.GetMetadata()
		walsnap = &walpb.Snapshot{Index: new(md.GetIndex()), Term: new(md.GetTerm()), ConfState: md.GetConfState()}
	}

	var (
		hs   *raftpb.HardState
		ents []*raftpb.Entry
	)
	for attempt := 0; ; attempt++ {
		w, err := wal.Open(s.zlog, s.walDir(), walsnap)
		if err != nil {
			return fmt.Errorf("%w: open wal: %w", ErrCorrupt, err)
		}
		_, hs, ents, err = w.ReadAll()
		if err == nil {
			s.w = w
			break
		}
		w.Close()
		if attempt > 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: read wal: %w", ErrCorrupt, err)
		}
		s.log.Warn("torn write at the end of the write-ahead log; truncating the unsynced tail", "dir", s.walDir(), "err", err)
		if !wal.Repair(s.zlog, s.walDir()) {
			return fmt.Errorf("%w: wal repair failed: %w", ErrCorrupt, err)
		}
		rec.Repaired = lastFile(s.walDir(), ".wal")
	}

	if !raft.IsEmptySnap(sn) {
		if err := s.mem.applySnapshot(sn); err != nil {
			return fmt.Errorf("%w: apply snapshot: %w", ErrCorrupt, err)
		}
		s.snapIndex = sn.GetMetadata().GetIndex()
	}
	if err := s.mem.SetHardState(hs); err != nil {
		return fmt.Errorf("set hard state: %w", err)
	}
	if err := s.mem.Append(ents); err != nil {
		return fmt.Errorf("%w: append entries: %w", ErrCorrupt, err)
	}
	last, _ := s.mem.LastIndex()
	if hs.GetCommit() > last {
		return fmt.Errorf("%w: %w: commit index %d, last entry %d", ErrCorrupt, ErrCommitBeyondLog, hs.GetCommit(), last)
	}
	rec.Snapshot, rec.HardState, rec.LastIndex = sn, hs, last
	s.log.Info("recovered raft log", "snapshot_index", sn.GetMetadata().GetIndex(), "commit", hs.GetCommit(),
		"term", hs.GetTerm(), "last_index", last, "entries", len(ents))
	return nil
}

// lastFile returns the path of the last file of dir with suffix, in name
// order ("" if none).
func lastFile(dir, suffix string) string {
	names, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil || len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return names[len(names)-1]
}

// WALDir returns the directory of the write-ahead log.
func (s *Storage) WALDir() string { return s.walDir() }

// LastWAL returns the path of the newest WAL file.
func (s *Storage) LastWAL() string { return lastFile(s.walDir(), ".wal") }

func (s *Storage) startPurge() {
	s.purgeWG.Go(func() { s.purgeLoop(s.snapDir(), ".snap", s.cfg.MaxSnapshotFiles) })
	s.purgeWG.Go(func() { s.purgeLoop(s.walDir(), ".wal", s.cfg.MaxWALFiles) })
}

// purgeLoop removes old files every PurgeInterval until Close. An error
// (the fd limit, a read-only disk) never stops it: it is reported, logged,
// and the pass is retried with backoff (1s doubling, at most the
// interval).
func (s *Storage) purgeLoop(dir, suffix string, max uint) {
	failures := 0
	for {
		wait := s.cfg.PurgeInterval
		if err := s.purgeOnce(dir, suffix, max); err != nil {
			failures++
			wait = min(wait, time.Second<<min(failures-1, 10))
			s.cfg.OnBackgroundError("purge", err)
			s.log.Error("purging old files failed; retrying", "dir", dir, "err", err, "failures", failures, "retry_in", wait)
		} else if failures > 0 {
			s.log.Info("purging old files works again", "dir", dir, "after_failures", failures)
			failures = 0
		}
		select {
		case <-time.After(wait):
		case <-s.stopPurge:
			return
		}
	}
}

// purgeOnce removes the oldest files of dir with suffix beyond the newest
// max, as etcd's fileutil.PurgeFile does in one pass: a WAL file still
// locked (in use) and every newer one are kept.
func (s *Storage) purgeOnce(dir, suffix string, max uint) error {
	all, err := s.cfg.readDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	var names []string
	for _, n := range all {
		if strings.HasSuffix(n, suffix) {
			names = append(names, n)
		}
	}
	for i := 0; i < len(names)-int(max); i++ {
		f := filepath.Join(dir, names[i])
		l, err := fileutil.TryLockFile(f, os.O_WRONLY, fileutil.PrivateFileMode)
		if errors.Is(err, fileutil.ErrLocked) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock %s: %w", f, err)
		}
		rerr := os.Remove(f)
		cerr := l.Close()
		if rerr != nil {
			return fmt.Errorf("remove %s: %w", f, rerr)
		}
		if cerr != nil {
			return fmt.Errorf("unlock %s: %w", f, cerr)
		}
		s.log.Info("purged", "path", f)
	}
	return nil
}

// Raft returns the in-memory view of the log that the Raft node reads.
func (s *Storage) Raft() raft.Storage { return s.mem }

// Save persists one Ready's snapshot, hard state and entries, in that order,
// then makes them visible to Raft. Entries and hard state share one fsync.
func (s *Storage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, sn *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !raft.IsEmptySnap(sn) {
		if err := s.saveSnapLocked(sn); err != nil {
			return err
		}
	}
	if err := s.w.Save(hs, ents); err != nil {
		return fmt.Errorf("save wal: %w", err)
	}
	if !raft.IsEmptySnap(sn) {
		switch err := s.mem.applySnapshot(sn); {
		case err == nil:
			s.snapIndex = sn.GetMetadata().GetIndex()
		case !errors.Is(err, raft.ErrSnapOutOfDate):
			return fmt.Errorf("apply snapshot: %w", err)
		}
		if err := s.w.ReleaseLockTo(sn.GetMetadata().GetIndex()); err != nil {
			return fmt.Errorf("release wal locks: %w", err)
		}
	}
	if len(ents) > 0 {
		if err := s.mem.Append(ents); err != nil {
			return fmt.Errorf("append entries: %w", err)
		}
	}
	return nil
}

// saveSnapLocked writes the snapshot file, then its WAL marker (which syncs).
func (s *Storage) saveSnapLocked(sn *raftpb.Snapshot) error {
	md := sn.GetMetadata()
	if err := s.snapshotter.SaveSnap(sn); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	ws := &walpb.Snapshot{Index: new(md.GetIndex()), Term: new(md.GetTerm()), ConfState: md.GetConfState()}
	if err := s.w.SaveSnapshot(ws); err != nil {
		return fmt.Errorf("save wal snapshot marker: %w", err)
	}
	return nil
}

// compactTo is the index the in-memory log is compacted to after a
// snapshot at index: keep entries stay behind it for slow followers, fewer
// when they hold more than keepBytes of data (0: no bound). Callers hold
// s.mu.
func (s *Storage) compactTo(index, keep, keepBytes uint64) uint64 {
	var to uint64
	if index > keep {
		to = index - keep
	}
	first, err := s.mem.FirstIndex()
	if keepBytes == 0 || err != nil || max(to+1, first) > index {
		return to
	}
	ents, err := s.mem.Entries(max(to+1, first), index+1, math.MaxUint64)
	if err != nil {
		return to
	}
	var sum uint64
	for i := len(ents) - 1; i >= 0; i-- {
		if sum += uint64(len(ents[i].GetData())); sum > keepBytes {
			return ents[i].GetIndex()
		}
	}
	return to
}

// CreateSnapshot records a snapshot of the state machine at index (which
// must be applied), persists it and compacts the in-memory log, keeping
// keep entries before index (fewer when they hold more than keepBytes of
// data; 0: no bound) so slow followers can catch up without a snapshot.
// The data is streamed into the snapshot file (data.WriteTo is called
// once, without the storage's lock held): it is never held in memory
// whole, so data should write from an immutable view of the state, such
// as a clone. It returns raft.ErrSnapOutOfDate if a newer snapshot
// exists, and an error matching ErrSnapshotFile if the snapshot file
// could not be written (e.g. at the fd limit, with the disk full, or
// data writing other than data.Size() bytes, which also matches
// ErrSnapshotSize): nothing changed then, and a later call may succeed.
func (s *Storage) CreateSnapshot(index uint64, cs *raftpb.ConfState, data SnapshotData, keep, keepBytes uint64) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if index <= s.snapIndex {
		s.mu.Unlock()
		return raft.ErrSnapOutOfDate
	}
	term, err := s.mem.Term(index)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("term of %d: %w", index, err)
	}
	md := &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: cs}
	// Writing and syncing the snapshot file takes long for a large state;
	// it does not touch the WAL, so the Raft loop keeps persisting
	// meanwhile. Until the WAL's snapshot record below, a crash recovers
	// from the previous snapshot and the WAL, which still holds every
	// entry; so does a failed write.
	if err := s.cfg.writeSnap(s.snapDir(), md, data); err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshotFile, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.mem.createSnapshot(index, cs); err != nil {
		return err
	}
	s.snapIndex = index
	ws := &walpb.Snapshot{Index: new(index), Term: new(term), ConfState: cs}
	if err := s.w.SaveSnapshot(ws); err != nil {
		return fmt.Errorf("save wal snapshot marker: %w", err)
	}
	if to := s.compactTo(index, keep, keepBytes); to > 0 {
		if err := s.mem.Compact(to); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("compact: %w", err)
		}
	}
	if err := s.w.ReleaseLockTo(index); err != nil {
		return fmt.Errorf("release wal locks: %w", err)
	}
	return nil
}

// Close stops purging and closes the WAL.
func (s *Storage) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stopPurge)
	err := s.w.Close()
	s.mu.Unlock()
	s.purgeWG.Wait()
	if err != nil {
		return fmt.Errorf("close wal: %w", err)
	}
	return nil
}

// ForceNewCluster rewrites the recovered log so that self is the only
// voter, as etcd's --force-new-cluster does: one committed ConfChange
// removing each other member of the configuration (the snapshot's, updated
// by the changes in the log after it) is appended and persisted, and the
// commit index moves to the last of them. The node applies them as it
// restarts. Unlike etcd, the entries past the persisted commit index are
// kept and committed too, as they would be had this member won an
// election: a follower persists its commit index lazily (the WAL syncs a
// hard state only with entries or a vote), so they may hold acknowledged
// writes. It returns the members removed. Call it right after Open, before
// Raft runs.
func (s *Storage) ForceNewCluster(self uint64) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	hs, cs, err := s.mem.InitialState()
	if err != nil {
		return nil, fmt.Errorf("read hard state: %w", err)
	}
	first, err := s.mem.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("first index: %w", err)
	}
	last, err := s.mem.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("last index: %w", err)
	}
	ids := map[uint64]bool{}
	for _, id := range append(cs.GetVoters(), cs.GetLearners()...) {
		ids[id] = true
	}
	if last >= first {
		ents, err := s.mem.Entries(first, last+1, math.MaxUint64)
		if err != nil {
			return nil, fmt.Errorf("read entries: %w", err)
		}
		for _, e := range ents {
			if e.GetType() != raftpb.EntryConfChange {
				continue
			}
			cc := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return nil, fmt.Errorf("%w: conf change at %d: %w", ErrCorrupt, e.GetIndex(), err)
			}
			switch cc.GetType() {
			case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
				if cc.GetNodeId() != 0 {
					ids[cc.GetNodeId()] = true
				}
			case raftpb.ConfChangeRemoveNode:
				delete(ids, cc.GetNodeId())
			}
		}
	}
	if !ids[self] {
		return nil, fmt.Errorf("%w: member %d is not in the configuration this data dir holds", ErrCorrupt, self)
	}
	var removed []uint64
	for id := range ids {
		if id != self {
			removed = append(removed, id)
		}
	}
	slices.Sort(removed)
	if len(removed) == 0 {
		return nil, nil
	}
	commit := last
	ents := make([]*raftpb.Entry, 0, len(removed))
	for i, id := range removed {
		data, err := proto.Marshal(&raftpb.ConfChange{Type: new(raftpb.ConfChangeRemoveNode), NodeId: new(id), Id: new(uint64(0))})
		if err != nil {
			return nil, fmt.Errorf("encode conf change: %w", err)
		}
		ents = append(ents, &raftpb.Entry{Type: new(raftpb.EntryConfChange), Term: new(hs.GetTerm()),
			Index: new(commit + 1 + uint64(i)), Data: data})
	}
	nhs := &raftpb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(commit + uint64(len(ents)))}
	if err := s.w.Save(nhs, ents); err != nil {
		return nil, fmt.Errorf("save wal: %w", err)
	}
	if err := s.mem.Append(ents); err != nil {
		return nil, fmt.Errorf("append entries: %w", err)
	}
	if err := s.mem.SetHardState(nhs); err != nil {
		return nil, fmt.Errorf("set hard state: %w", err)
	}
	return removed, nil
}
