package kvraft

import (
	"context"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/pennyhq/penny/kvraft/command"
)

// BatchUnchecked proposes ops without the proposer's quota check, so tests
// reach the check every replica makes when it applies the entry.
func (n *Node) BatchUnchecked(ctx context.Context, ops []Op) (uint64, error) {
	res, err := n.propose(ctx, &command.Command{Kind: command.KindBatch, Ops: ops})
	return res.index, err
}

// LogFirstIndex exposes the first index of the in-memory Raft log to tests.
func (n *Node) LogFirstIndex() uint64 {
	i, _ := n.storage.Raft().FirstIndex()
	return i
}

// Crash stops the node without a graceful leadership transfer, as close to
// a crash as an in-process node gets (every acknowledged write is already
// fsynced, so a real crash loses nothing more).
func (n *Node) Crash() {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.done
}

// FollowerProgress exposes the leader's view of follower id: the last
// index it acknowledged and the next index it will be sent.
func (n *Node) FollowerProgress(id uint64) (match, next uint64, ok bool) {
	pr, ok := n.raft.Status().Progress[id]
	if !ok {
		return 0, 0, false
	}
	return pr.Match, pr.Next, true
}

// AddMemberCheckedAt proposes adding m as if its checks had been made
// against the membership view seen, skipping them: what a change proposed
// through another replica at the same time looks like.
func (n *Node) AddMemberCheckedAt(ctx context.Context, m Member, seen uint64) (uint64, error) {
	c, err := encodeChangeContext(changeContext{Member: m, Seen: &seen})
	if err != nil {
		return 0, err
	}
	return n.changeConf(ctx, &raftpb.ConfChange{Type: new(raftpb.ConfChangeAddNode), NodeId: new(m.ID), Context: c})
}

// MembershipView returns the fingerprint changes are checked against.
func (n *Node) MembershipView() uint64 {
	n.memMu.RLock()
	defer n.memMu.RUnlock()
	return n.members.view()
}
