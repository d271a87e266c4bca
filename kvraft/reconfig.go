package kvraft

import (
	"context"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/pennyhq/penny/kvraft/storage"
)

// reachable returns the voters of the current configuration that this
// replica can reach now: itself, and those its transport is connected to
// (or, on a leader whose transport cannot tell, those Raft heard from
// within the last election timeout).
func (n *Node) reachable(voters []uint64) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	ps, ok := n.tr.(PeerStatus)
	var progress map[uint64]bool
	if !ok {
		if n.leader.Load() != n.id {
			return nil, fmt.Errorf("%w: this replica cannot tell which members are reachable; retry on the leader", ErrReconfig)
		}
		progress = map[uint64]bool{}
		for id, pr := range n.raft.Status().Progress {
			progress[id] = pr.RecentActive
		}
	}
	for _, id := range voters {
		switch {
		case id == n.id:
			out[id] = true
		case ps != nil:
			out[id] = !ps.ActiveSince(id).IsZero()
		default:
			out[id] = progress[id]
		}
	}
	return out, nil
}

// strictCheck refuses a change that would leave fewer reachable voters
// than a quorum of the new configuration, as etcd's
// --strict-reconfig-check: an added member counts as unreachable until it
// runs. Growing a one-member cluster is allowed (as in etcd): it is how a
// cluster grows again after ForceNewCluster, and it has no quorum to lose
// that a second member would not restore.
func (n *Node) strictCheck(cc *raftpb.ConfChange) error {
	n.memMu.RLock()
	voters := slices.Clone(n.confState.GetVoters())
	n.memMu.RUnlock()
	up, err := n.reachable(voters)
	if err != nil {
		return err
	}
	var down []uint64
	for _, id := range voters {
		if !up[id] {
			down = append(down, id)
		}
	}
	slices.Sort(down)
	id := cc.GetNodeId()
	var size, live int
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode:
		if len(voters) == 1 {
			return nil
		}
		size, live = len(voters)+1, len(voters)-len(down)
	case raftpb.ConfChangeRemoveNode:
		size, live = len(voters)-1, len(voters)-len(down)
		if up[id] {
			live--
		}
	default:
		return nil
	}
	if quorum := size/2 + 1; live < quorum {
		return fmt.Errorf("%w: %v %d would leave %d reachable of %d voters, under the quorum of %d (unreachable now: %v)",
			ErrReconfig, cc.GetType(), id, live, size, quorum, down)
	}
	return nil
}

// checkChange checks a membership change before it is proposed, against
// an up-to-date view: it first waits until this replica has applied
// everything the leader committed (a linearizable barrier), so that an
// earlier change made through another replica is seen. It returns the
// change's context, which records the view it was checked against: a
// change applied in between (proposed through another replica at the same
// time) cancels it on every replica.
func (n *Node) checkChange(ctx context.Context, cc *raftpb.ConfChange, mem Member) ([]byte, error) {
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	if err := n.waitReadable(ctx, ReadOptions{Consistency: Linearizable}); err != nil {
		return nil, fmt.Errorf("membership change: %w", err)
	}
	n.memMu.RLock()
	seen := n.members.view()
	err := n.members.check(cc, mem, nil)
	n.memMu.RUnlock()
	if err != nil {
		return nil, err
	}
	if err := n.strictCheck(cc); err != nil {
		return nil, err
	}
	return encodeChangeContext(changeContext{Member: mem, Seen: &seen})
}

// forceNewCluster rewrites the recovered log so that this member is the
// only voter (Config.ForceNewCluster).
func (n *Node) forceNewCluster(rec *storage.Recovered) error {
	if rec.Fresh {
		return fmt.Errorf("%w: force new cluster needs a data dir that holds a log; %s holds none", ErrInvalid, n.cfg.DataDir)
	}
	removed, err := n.storage.ForceNewCluster(n.id)
	if err != nil {
		return fmt.Errorf("force new cluster: %w", err)
	}
	hs, _, err := n.storage.Raft().InitialState()
	if err != nil {
		return fmt.Errorf("force new cluster: %w", err)
	}
	rec.HardState = hs
	n.log.Warn("forcing a new one-member cluster from this member's data: the other members are removed; "+
		"add members back one at a time under new ids, and restart this member without --force-new-cluster",
		"removed", removed, "commit", hs.GetCommit())
	return nil
}
