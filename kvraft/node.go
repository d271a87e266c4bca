package kvraft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/pkg/v3/idutil"
	"go.etcd.io/etcd/pkg/v3/wait"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvstore"
	"github.com/pennyhq/penny/kvraft/storage"
)

// Node is one replica of a kvraft cluster. Its methods are safe for
// concurrent use.
type Node struct {
	cfg     Config
	id      uint64
	log     *slog.Logger
	metrics *metrics

	raft    raft.Node
	storage *storage.Storage
	tr      Transport

	// stateMu orders applies against reads so a read reports exactly the
	// applied index whose state it saw.
	stateMu sync.RWMutex
	kv      *kvstore.Store
	applied atomic.Uint64
	// quota is the replicated store quota in bytes (0: none); alarm is
	// raised while writes are refused for lack of space.
	quota atomic.Int64
	alarm atomic.Bool

	memMu     sync.RWMutex
	members   *membership
	confState *raftpb.ConfState

	leader      atomic.Uint64
	term        atomic.Uint64
	commit      atomic.Uint64
	leaderMu    sync.Mutex
	leaderEvent chan struct{} // closed and replaced when the leader changes

	snapIndex    atomic.Uint64
	snapshotting atomic.Bool
	// appliedBytes counts the bytes of the entries applied since start;
	// snapBytes is what it was at the last snapshot (SnapshotBytes).
	appliedBytes, snapBytes atomic.Uint64
	// snapStoreBytes is the store's size at the last snapshot.
	snapStoreBytes atomic.Int64
	// snapFailures counts the snapshots that failed in a row; none is
	// tried again before snapRetryAt (unix nanos).
	snapFailures atomic.Int64
	snapRetryAt  atomic.Int64
	// confChanged forces the next snapshot: a member that joins can only
	// install a snapshot whose configuration already includes it.
	confChanged atomic.Bool

	reqIDs    *idutil.Generator
	waits     wait.Wait     // proposal ID -> applyResult
	applyWait wait.WaitTime // applied index

	readStateC  chan raft.ReadState
	readWaitC   chan struct{}
	readMu      sync.Mutex
	readBatch   *readBatch
	witness     atomic.Pointer[witness]
	lastBounded atomic.Int64 // unix nanos of the last bounded read

	confMu sync.Mutex // one membership change at a time from this node

	// repaired names the WAL file whose torn tail was cut at start.
	repaired string
	lostOnce sync.Once

	stopOnce sync.Once
	stopc    chan struct{} // closed by Stop
	done     chan struct{} // closed when the node has stopped
	errMu    sync.Mutex
	err      error
	wg       sync.WaitGroup
}

type applyResult struct {
	index uint64
	err   error
	// succeeded reports, for a KindTxn command, which txns took their Then
	// branch.
	succeeded []bool
}

// Start opens (or creates) the replica's data directory, recovers its state
// and starts the Raft node. It completes cfg with the defaults first. Call
// Stop to release it.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	log := cfg.Logger.With("member", cfg.ID)
	if err := checkRefused(cfg.DataDir); err != nil {
		return nil, err
	}
	st, rec, err := storage.Open(storage.Config{Dir: cfg.DataDir, Logger: log,
		MaxSnapshotFiles: cfg.MaxSnapshotFiles, MaxWALFiles: cfg.MaxWALFiles,
		OnBackgroundError: func(loop string, _ error) { m.backgroundErrors.WithLabelValues(loop).Inc() }})
	if errors.Is(err, storage.ErrCommitBeyondLog) {
		return nil, fmt.Errorf("%w: %w; replace this member (remove it from the cluster, wipe %s, add it again under a new id)",
			ErrLostEntries, err, cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, id: cfg.ID, log: log, metrics: m, storage: st,
		kv: kvstore.New(), members: newMembership(), confState: &raftpb.ConfState{},
		leaderEvent: make(chan struct{}),
		reqIDs:      idutil.NewGenerator(uint16(cfg.ID), time.Now()),
		waits:       wait.New(), applyWait: wait.NewTimeList(),
		readStateC: make(chan raft.ReadState, 16), readWaitC: make(chan struct{}, 1),
		readBatch: newReadBatch(),
		stopc:     make(chan struct{}), done: make(chan struct{}),
		repaired: rec.Repaired,
	}
	if cfg.Watcher != nil {
		n.kv.Watch(cfg.Watcher)
	}
	if !raft.IsEmptySnap(rec.Snapshot) {
		if err := n.restoreSnapshot(rec.Snapshot); err != nil {
			st.Close()
			if errors.Is(err, ErrSnapshotFormat) {
				return nil, fmt.Errorf("restore snapshot: %w", err)
			}
			return nil, fmt.Errorf("%w: restore snapshot: %w", storage.ErrCorrupt, err)
		}
	}
	if cfg.ForceNewCluster {
		if err := n.forceNewCluster(rec); err != nil {
			st.Close()
			return nil, err
		}
	}
	n.term.Store(rec.HardState.GetTerm())
	n.metrics.term.Set(float64(rec.HardState.GetTerm()))
	n.commit.Store(rec.HardState.GetCommit())

	rc := &raft.Config{
		ID:               n.id,
		ElectionTick:     cfg.ElectionTicks,
		HeartbeatTick:    cfg.HeartbeatTicks,
		Storage:          st.Raft(),
		Applied:          n.applied.Load(),
		MaxSizePerMsg:    cfg.MaxSizePerMsg,
		MaxInflightMsgs:  cfg.MaxInflightMsgs,
		MaxInflightBytes: cfg.MaxInflightBytes,
		// Bound the proposals a leader accepts but has not committed, so a
		// partitioned leader cannot grow memory without end.
		MaxUncommittedEntriesSize: 256 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{l: log},
	}
	switch {
	case !rec.Fresh:
		log.Info("restarting member from its data dir", "dir", cfg.DataDir, "applied", n.applied.Load())
		n.raft = raft.RestartNode(rc)
	case cfg.Join:
		// A joining member starts with an empty log and no configuration;
		// the leader sends it the log (or a snapshot) including its own
		// addition. Raft starts such a node with RestartNode.
		log.Info("joining an existing cluster", "dir", cfg.DataDir)
		n.raft = raft.RestartNode(rc)
	default:
		peers := make([]raft.Peer, 0, len(cfg.InitialCluster))
		for _, mem := range cfg.InitialCluster {
			c, err := encodeChangeContext(changeContext{Member: mem})
			if err != nil {
				st.Close()
				return nil, err
			}
			peers = append(peers, raft.Peer{ID: mem.ID, Context: c})
		}
		log.Info("bootstrapping a new cluster", "dir", cfg.DataDir, "members", len(peers))
		n.raft = raft.StartNode(rc, peers)
	}

	// The transport starts after the Raft node exists: peers may deliver
	// messages as soon as it listens.
	tr, err := cfg.NewTransport(n)
	if err != nil {
		n.raft.Stop()
		st.Close()
		return nil, fmt.Errorf("start transport: %w", err)
	}
	n.tr = tr
	for _, mem := range cfg.InitialCluster {
		if mem.ID != n.id {
			tr.AddPeer(mem.ID, mem.PeerURL)
		}
	}
	for _, mem := range n.members.list() {
		if mem.ID != n.id {
			tr.AddPeer(mem.ID, mem.PeerURL)
		}
	}

	n.wg.Go(n.readLoop)
	n.wg.Go(n.boundedRefreshLoop)
	n.wg.Go(n.quotaLoop)
	if cfg.APIURL != "" {
		n.wg.Go(n.publishLoop)
	}
	go n.run()
	return n, nil
}

// Done is closed once the node has stopped, by Stop or by a fatal error.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns why the node stopped (nil after a clean Stop or while running).
func (n *Node) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// Stop stops the node and waits until its loop, transport and storage are
// closed. A leader first hands leadership to its most up-to-date follower,
// so the cluster does not wait an election timeout. It is safe to call more
// than once.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.transferLeadership()
		close(n.stopc)
	})
	<-n.done
}

// transferLeadership moves leadership away from this node, waiting up to two
// election timeouts for another member to take over.
func (n *Node) transferLeadership() {
	if n.leader.Load() != n.id {
		return
	}
	st := n.raft.Status()
	var target, best uint64
	for id, pr := range st.Progress {
		if id != n.id && pr.Match >= best {
			target, best = id, pr.Match
		}
	}
	if target == 0 {
		return // a single-member cluster
	}
	timeout := 2 * n.cfg.TickInterval * time.Duration(n.cfg.ElectionTicks)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n.log.Info("transferring leadership before stopping", "to", target)
	n.raft.TransferLeadership(ctx, n.id, target)
	for l := n.leader.Load(); l == n.id || l == 0; l = n.leader.Load() {
		select {
		case <-n.leaderChanged():
		case <-ctx.Done():
			n.log.Warn("leadership transfer timed out", "to", target)
			return
		case <-n.done:
			return
		}
	}
}

func (n *Node) fail(err error) {
	n.errMu.Lock()
	if n.err == nil {
		n.err = err
	}
	n.errMu.Unlock()
	n.stopOnce.Do(func() { close(n.stopc) })
}

func (n *Node) run() {
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer func() {
		ticker.Stop()
		n.stopOnce.Do(func() { close(n.stopc) })
		if err := n.tr.Close(); err != nil {
			n.log.Warn("closing transport", "err", err)
		}
		n.raft.Stop()
		n.wg.Wait()
		if err := n.storage.Close(); err != nil {
			n.log.Warn("closing storage", "err", err)
		}
		switch err := n.Err(); {
		case errors.Is(err, ErrRemoved):
			n.log.Info("node stopped: removed from the cluster")
		case err != nil:
			n.log.Error("node stopped", "err", err)
		default:
			n.log.Info("node stopped")
		}
		close(n.done)
	}()
	for {
		select {
		case <-ticker.C:
			n.raft.Tick()
		case rd := <-n.raft.Ready():
			if err := n.handleReady(rd); err != nil {
				n.fail(err)
				return
			}
		case <-n.stopc:
			return
		}
	}
}

// handleReady processes one Ready: persist (one fsync), send, apply, Advance.
// The leader sends before persisting, since its followers' acks, not its own
// disk, decide commitment (Raft thesis 10.2.1); followers persist first.
func (n *Node) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		n.setLeader(rd.SoftState.Lead, rd.SoftState.RaftState == raft.StateLeader)
	}
	if hs := rd.HardState; !raft.IsEmptyHardState(hs) {
		n.term.Store(hs.GetTerm())
		n.metrics.term.Set(float64(hs.GetTerm()))
		n.commit.Store(hs.GetCommit())
	}
	for _, rs := range rd.ReadStates {
		select {
		case n.readStateC <- rs:
		default: // the read loop retries
		}
	}
	leader := n.leader.Load() == n.id
	if leader {
		n.tr.Send(n.outgoing(rd.Messages))
	}
	start := time.Now()
	if err := n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return fmt.Errorf("persist raft state: %w", err)
	}
	n.metrics.fsyncSeconds.Observe(time.Since(start).Seconds())
	if !leader {
		n.tr.Send(n.outgoing(rd.Messages))
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	removed, err := n.applyEntries(rd.CommittedEntries)
	if err != nil {
		return err
	}
	n.raft.Advance()
	n.metrics.applyLag.Set(float64(n.commit.Load()) - float64(n.applied.Load()))
	if removed {
		return ErrRemoved
	}
	n.maybeSnapshot()
	return nil
}

func (n *Node) outgoing(msgs []*raftpb.Message) []*raftpb.Message {
	n.memMu.RLock()
	defer n.memMu.RUnlock()
	out := msgs[:0:0]
	for _, m := range msgs {
		if n.members.Removed[m.GetTo()] {
			continue
		}
		out = append(out, m)
	}
	return out
}

func (n *Node) setLeader(lead uint64, isLeader bool) {
	old := n.leader.Swap(lead)
	if isLeader {
		n.metrics.isLeader.Set(1)
	} else {
		n.metrics.isLeader.Set(0)
	}
	if old != lead {
		n.log.Info("leader changed", "leader", lead, "term", n.term.Load())
		n.leaderMu.Lock()
		close(n.leaderEvent)
		n.leaderEvent = make(chan struct{})
		n.leaderMu.Unlock()
	}
}

// leaderChanged returns a channel closed at the next leader change.
func (n *Node) leaderChanged() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderEvent
}

// applyEntries applies committed entries in order and reports whether this
// node was removed from the cluster.
func (n *Node) applyEntries(ents []*raftpb.Entry) (removed bool, err error) {
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= n.applied.Load() {
			continue
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			n.applyNormal(e)
		case raftpb.EntryConfChange:
			cc := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return false, fmt.Errorf("decode committed conf change %d: %w", idx, err)
			}
			removed = n.applyConfChange(cc, idx) || removed
		case raftpb.EntryConfChangeV2:
			cc := &raftpb.ConfChangeV2{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return false, fmt.Errorf("decode committed conf change %d: %w", idx, err)
			}
			// kvraft never proposes V2 changes; apply to keep Raft consistent.
			cs := n.raft.ApplyConfChange(cc)
			n.memMu.Lock()
			n.confState = cs
			n.memMu.Unlock()
			n.log.Warn("applied an unexpected joint configuration change", "index", idx)
		}
		n.stateMu.Lock()
		n.applied.Store(idx)
		n.stateMu.Unlock()
		n.appliedBytes.Add(uint64(len(e.GetData())))
	}
	if len(ents) > 0 {
		a := n.applied.Load()
		n.metrics.appliedIndex.Set(float64(a))
		n.applyWait.Trigger(a)
	}
	return removed, nil
}

func (n *Node) applyNormal(e *raftpb.Entry) {
	if len(e.GetData()) == 0 {
		return // a new leader's empty entry
	}
	cmd, err := command.Decode(e.GetData())
	if err != nil {
		// Every replica decodes the same bytes the same way, so skipping is
		// deterministic; it means a bug or a newer proposer, never disk
		// corruption (the WAL checks CRCs).
		n.log.Error("skipping undecodable committed entry", "index", e.GetIndex(), "err", err)
		return
	}
	var res applyResult
	res.index = e.GetIndex()
	switch cmd.Kind {
	case command.KindBatch:
		n.stateMu.Lock()
		n.applyWrite(cmd, e.GetIndex(), &res)
		n.applied.Store(e.GetIndex())
		n.stateMu.Unlock()
	case command.KindTxn:
		n.stateMu.Lock()
		n.applyWrite(cmd, e.GetIndex(), &res)
		n.applied.Store(e.GetIndex())
		n.stateMu.Unlock()
		for _, ok := range res.succeeded {
			if ok {
				n.metrics.txnsThen.Inc()
			} else {
				n.metrics.txnsElse.Inc()
			}
		}
	case command.KindMemberAttr:
		n.memMu.Lock()
		if m, ok := n.members.Members[cmd.MemberID]; ok {
			m.APIURL = cmd.APIURL
			n.members.Members[cmd.MemberID] = m
		} else {
			res.err = fmt.Errorf("%w: %d", ErrMemberNotFound, cmd.MemberID)
		}
		n.memMu.Unlock()
	case command.KindQuota:
		n.applyQuota(cmd.QuotaBytes, e.GetIndex())
	}
	n.waits.Trigger(cmd.ID, res)
}

// applyConfChange validates a committed change against the state machine,
// cancels it if invalid (as the raft README prescribes) and applies it.
func (n *Node) applyConfChange(cc *raftpb.ConfChange, index uint64) (removedSelf bool) {
	c, err := decodeChangeContext(cc.GetContext())
	mem := c.Member
	n.memMu.Lock()
	if err == nil {
		err = n.members.check(cc, mem, c.Seen)
	}
	if err != nil {
		n.log.Warn("rejecting configuration change", "index", index, "type", cc.GetType(), "node", cc.GetNodeId(), "err", err)
		cc.NodeId = new(uint64(0))
	}
	n.confState = n.raft.ApplyConfChange(cc)
	id := cc.GetNodeId()
	if err == nil {
		n.confChanged.Store(true)
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode:
			n.members.Members[id] = mem
			if id != n.id {
				n.tr.AddPeer(id, mem.PeerURL)
			}
			n.log.Info("member added", "id", id, "peer_url", mem.PeerURL, "index", index)
		case raftpb.ConfChangeRemoveNode:
			delete(n.members.Members, id)
			n.members.Removed[id] = true
			if id == n.id {
				removedSelf = true
			} else {
				n.tr.RemovePeer(id)
			}
			n.log.Info("member removed", "id", id, "index", index)
		}
	}
	n.memMu.Unlock()
	n.waits.Trigger(cc.GetId(), applyResult{index: index, err: err})
	return removedSelf
}

func (n *Node) restoreSnapshot(sn *raftpb.Snapshot) error {
	m, kv, err := decodeSnapshot(sn.GetData())
	if err != nil {
		return err
	}
	md := sn.GetMetadata()
	n.memMu.Lock()
	n.members = m
	n.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
	n.memMu.Unlock()
	n.stateMu.Lock()
	n.kv = kv
	if n.cfg.Watcher != nil {
		kv.Watch(n.cfg.Watcher)
	}
	n.applied.Store(md.GetIndex())
	n.stateMu.Unlock()
	n.setQuota(m.QuotaBytes)
	n.metrics.storeBytes.Set(float64(kv.Bytes()))
	n.snapIndex.Store(md.GetIndex())
	n.snapBytes.Store(n.appliedBytes.Load())
	n.snapStoreBytes.Store(kv.Bytes())
	return nil
}

// installSnapshot replaces the state machine with a snapshot the leader sent.
func (n *Node) installSnapshot(sn *raftpb.Snapshot) error {
	idx := sn.GetMetadata().GetIndex()
	if idx <= n.applied.Load() {
		return nil
	}
	if err := n.restoreSnapshot(sn); err != nil {
		return fmt.Errorf("install snapshot at %d: %w", idx, err)
	}
	n.metrics.snapshots.Inc()
	n.metrics.snapshotBytes.Set(float64(len(sn.GetData())))
	n.memMu.RLock()
	for _, mem := range n.members.list() {
		if mem.ID != n.id {
			n.tr.AddPeer(mem.ID, mem.PeerURL)
		}
	}
	for id := range n.members.Removed {
		n.tr.RemovePeer(id)
	}
	n.memMu.RUnlock()
	n.applyWait.Trigger(idx)
	n.log.Info("installed snapshot from leader", "index", idx)
	return nil
}

// publishLoop records this replica's API URL in the membership once.
func (n *Node) publishLoop() {
	for {
		n.memMu.RLock()
		m, ok := n.members.Members[n.id]
		n.memMu.RUnlock()
		if ok && m.APIURL == n.cfg.APIURL {
			return
		}
		if ok && n.leader.Load() != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
			_, err := n.propose(ctx, &command.Command{Kind: command.KindMemberAttr, MemberID: n.id, APIURL: n.cfg.APIURL})
			cancel()
			if err == nil {
				n.log.Info("published api url", "url", n.cfg.APIURL)
				return
			}
			n.log.Debug("publishing api url failed; retrying", "err", err)
		}
		select {
		case <-n.stopc:
			return
		case <-time.After(n.cfg.TickInterval * time.Duration(n.cfg.ElectionTicks)):
		}
	}
}

// Process implements Receiver: it steps a message from a peer.
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	if n.IsIDRemoved(m.GetFrom()) {
		return nil
	}
	select {
	case <-n.stopc:
		return nil
	default:
	}
	if !n.checkCommit(m) {
		return nil
	}
	if err := n.raft.Step(ctx, m); err != nil && !errors.Is(err, raft.ErrStopped) {
		return fmt.Errorf("step: %w", err)
	}
	return nil
}

// IsIDRemoved implements Receiver.
func (n *Node) IsIDRemoved(id uint64) bool {
	n.memMu.RLock()
	defer n.memMu.RUnlock()
	return n.members.Removed[id]
}

// ReportRemoved implements Receiver: the node stops with ErrRemoved.
func (n *Node) ReportRemoved() {
	n.log.Warn("peers report this member was removed from the cluster")
	n.fail(ErrRemoved)
}

// ReportUnreachable implements Receiver.
func (n *Node) ReportUnreachable(id uint64) { n.raft.ReportUnreachable(id) }

// ReportSnapshot implements Receiver.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.raft.ReportSnapshot(id, status)
}

// Status is a replica's view of the cluster.
type Status struct {
	ID           uint64   `json:"id"`
	Leader       uint64   `json:"leader"`
	Term         uint64   `json:"term"`
	AppliedIndex uint64   `json:"applied_index"`
	CommitIndex  uint64   `json:"commit_index"`
	Members      []Member `json:"members"`
	// QuotaBytes is the store quota the cluster enforces (0: none),
	// StoreBytes this replica's bytes of keys and values, and
	// NoSpaceAlarm whether it refuses writes that grow the store.
	QuotaBytes   uint64 `json:"quota_bytes"`
	StoreBytes   int64  `json:"store_bytes"`
	NoSpaceAlarm bool   `json:"nospace_alarm"`
}

// Status returns the replica's current view.
func (n *Node) Status() Status {
	n.memMu.RLock()
	members := n.members.list()
	quota := n.members.QuotaBytes
	n.memMu.RUnlock()
	n.stateMu.RLock()
	storeBytes := n.kv.Bytes()
	n.stateMu.RUnlock()
	return Status{ID: n.id, Leader: n.leader.Load(), Term: n.term.Load(),
		AppliedIndex: n.applied.Load(), CommitIndex: n.commit.Load(), Members: members,
		QuotaBytes: quota, StoreBytes: storeBytes, NoSpaceAlarm: n.alarm.Load()}
}

// ID returns this replica's member ID.
func (n *Node) ID() uint64 { return n.id }
