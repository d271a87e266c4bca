package kvraft

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// Op is one write of a Batch.
type Op = command.Op

// Operation types for Op.
const (
	OpPut    = command.OpPut
	OpDelete = command.OpDelete
)

// Put sets key to value and returns the index at which the write committed
// (and was applied on this replica).
func (n *Node) Put(ctx context.Context, key, value []byte) (uint64, error) {
	return n.Batch(ctx, []Op{{Type: OpPut, Key: key, Value: value}})
}

// Delete removes key (a no-op if absent) and returns the commit index.
func (n *Node) Delete(ctx context.Context, key []byte) (uint64, error) {
	return n.Batch(ctx, []Op{{Type: OpDelete, Key: key}})
}

// Batch applies ops atomically as one Raft proposal and returns its commit
// index. Either every op is applied or, on error, possibly none; a timed-out
// batch may still commit later (all of it).
func (n *Node) Batch(ctx context.Context, ops []Op) (uint64, error) {
	if err := command.ValidateOps(ops); err != nil {
		return 0, wrapCommandErr(err)
	}
	if err := n.checkQuota(kvstore.MaxGrowth(ops), func() int64 { return n.kv.Delta(ops) }); err != nil {
		return 0, err
	}
	res, err := n.propose(ctx, &command.Command{Kind: command.KindBatch, Ops: ops})
	return res.index, err
}

func wrapCommandErr(err error) error {
	if errors.Is(err, command.ErrTooLarge) {
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// withDefaultTimeout applies Config.RequestTimeout to a context without a
// deadline.
func (n *Node) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.RequestTimeout)
}

// ctxErr turns an ended context into ErrTimeout (deadline) or its own error.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return ctx.Err()
}

// propose replicates cmd and returns the result of applying it on this
// replica.
func (n *Node) propose(ctx context.Context, cmd *command.Command) (applyResult, error) {
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	cmd.ID = n.reqIDs.Next()
	data, err := command.Encode(cmd)
	if err != nil {
		return applyResult{}, wrapCommandErr(err)
	}
	start := time.Now()
	ch := n.waits.Register(cmd.ID)
	if err := n.proposeRetry(ctx, func() error { return n.raft.Propose(ctx, data) }); err != nil {
		n.waits.Trigger(cmd.ID, nil)
		return applyResult{}, err
	}
	select {
	case x := <-ch:
		res, ok := x.(applyResult)
		if !ok {
			return applyResult{}, ErrStopped
		}
		n.metrics.proposalSeconds.Observe(time.Since(start).Seconds())
		return res, res.err
	case <-ctx.Done():
		// Raft took the proposal: it may still commit, with this leader or
		// the next, so this stays a timeout even if no leader is known now.
		n.waits.Trigger(cmd.ID, nil)
		return applyResult{}, ctxErr(ctx)
	case <-n.stopc:
		n.waits.Trigger(cmd.ID, nil)
		return applyResult{}, ErrStopped
	}
}

// proposeRetry hands a proposal to Raft, retrying while Raft drops it
// locally because no leader is known (during an election). A proposal Raft
// dropped was never appended anywhere, so retrying cannot duplicate it.
// While this replica knows no leader it does not call Raft at all (Raft
// would block the call until its context ends, and its outcome would be
// unknown); if no leader is known until the deadline it fails with
// ErrNoLeader: the proposal was never handed to Raft and cannot commit.
func (n *Node) proposeRetry(ctx context.Context, propose func() error) error {
	for {
		changed := n.leaderChanged()
		noLeader := n.leader.Load() == 0
		var err error
		if !noLeader {
			err = propose()
		}
		switch {
		case noLeader:
		case err == nil:
			return nil
		case errors.Is(err, raft.ErrStopped):
			return ErrStopped
		case errors.Is(err, raft.ErrProposalDropped):
			noLeader = n.leader.Load() == 0
		case ctx.Err() != nil:
			// Raft may have taken the proposal before the context ended,
			// so it may still commit: a timeout, not ErrNoLeader.
			return ctxErr(ctx)
		default:
			return fmt.Errorf("propose: %w", err)
		}
		select {
		case <-changed:
		case <-time.After(n.cfg.TickInterval * time.Duration(n.cfg.HeartbeatTicks)):
		case <-ctx.Done():
			if noLeader {
				return noLeaderErr(ctx, "not proposed")
			}
			return ctxErr(ctx)
		case <-n.stopc:
			return ErrStopped
		}
	}
}

// noLeaderErr is the error of a call that found no leader until ctx ended:
// ErrNoLeader when its deadline passed, the context's own error when it was
// canceled.
func noLeaderErr(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w known until the deadline (%s): %w", ErrNoLeader, what, ctx.Err())
	}
	return ctx.Err()
}

// AddMember adds a voting member and returns the index of the change. Start
// the new replica with Config.Join afterwards. Only one change may be in
// flight; Raft also refuses a change while an earlier one is unapplied.
//
// A member whose ID is in use or was removed (ErrMemberExists,
// ErrIDRemoved) or whose peer URL is another member's (ErrPeerURLExists)
// is refused, and so is a change that would leave fewer reachable voters
// than a quorum of the new configuration (ErrReconfig, etcd's
// --strict-reconfig-check; the new member counts as unreachable).
func (n *Node) AddMember(ctx context.Context, m Member) (uint64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	if m.ID > maxMemberID {
		return 0, fmt.Errorf("%w: member id must be <= %d", ErrInvalid, maxMemberID)
	}
	c, err := n.checkChange(ctx, &raftpb.ConfChange{Type: new(raftpb.ConfChangeAddNode), NodeId: new(m.ID)}, m)
	if err != nil {
		return 0, err
	}
	return n.changeConf(ctx, &raftpb.ConfChange{Type: new(raftpb.ConfChangeAddNode), NodeId: new(m.ID), Context: c})
}

// RemoveMember removes a member and returns the index of the change. A
// replica that is removed stops with ErrRemoved. A removal that would leave
// fewer reachable voters than a quorum of the rest fails with ErrReconfig.
func (n *Node) RemoveMember(ctx context.Context, id uint64) (uint64, error) {
	c, err := n.checkChange(ctx, &raftpb.ConfChange{Type: new(raftpb.ConfChangeRemoveNode), NodeId: new(id)}, Member{})
	if err != nil {
		return 0, err
	}
	return n.changeConf(ctx, &raftpb.ConfChange{Type: new(raftpb.ConfChangeRemoveNode), NodeId: new(id), Context: c})
}

func (n *Node) changeConf(ctx context.Context, cc *raftpb.ConfChange) (uint64, error) {
	if !n.confMu.TryLock() {
		return 0, ErrMembershipChange
	}
	defer n.confMu.Unlock()
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	id := n.reqIDs.Next()
	cc.Id = new(id)
	ch := n.waits.Register(id)
	if err := n.proposeRetry(ctx, func() error { return n.raft.ProposeConfChange(ctx, proto.Clone(cc).(*raftpb.ConfChange)) }); err != nil {
		n.waits.Trigger(id, nil)
		return 0, err
	}
	select {
	case x := <-ch:
		res, ok := x.(applyResult)
		if !ok {
			return 0, ErrStopped
		}
		return res.index, res.err
	case <-ctx.Done():
		// As in propose: the change was handed to Raft and may still apply.
		n.waits.Trigger(id, nil)
		return 0, fmt.Errorf("membership change (another may be pending): %w", ctxErr(ctx))
	case <-n.stopc:
		n.waits.Trigger(id, nil)
		return 0, ErrStopped
	}
}
