package kvraft

import "errors"

var (
	// ErrStopped is returned by calls on a node that is stopped or stopping.
	ErrStopped = errors.New("kvraft: node stopped")
	// ErrTimeout is returned when a proposal or read did not complete before
	// its context ended. A write that timed out may still commit.
	ErrTimeout = errors.New("kvraft: timed out")
	// ErrNoLeader is returned when this replica knew no leader until the
	// call's deadline (an election that does not end, or a lost quorum). A
	// write that fails with it was never proposed and does not commit.
	// Retry later or on another replica.
	ErrNoLeader = errors.New("kvraft: no leader")
	// ErrInvalid is returned for a request that breaks a limit or is malformed.
	ErrInvalid = errors.New("kvraft: invalid request")
	// ErrTooLarge is returned for a key, value or batch over the size limits.
	ErrTooLarge = errors.New("kvraft: request too large")
	// ErrNoSpace is returned for a write that would take the store's
	// bytes (keys plus values) past the quota (Config.QuotaBytes). It is
	// decided when the entry is applied, alike on every replica; nothing
	// of a refused write is applied. Deletes still work.
	ErrNoSpace = errors.New("kvraft: no space")
	// ErrLostEntries stops a member whose write-ahead log lost entries it
	// had acknowledged (a torn or truncated tail of synced records): the
	// leader counts them as stored here. Start returns it from then on;
	// replace the member (remove it, wipe its data dir, add it under a new
	// id).
	ErrLostEntries = errors.New("kvraft: this member lost log entries it had acknowledged")
	// ErrRemoved is returned once this node has been removed from the cluster.
	ErrRemoved = errors.New("kvraft: member removed from cluster")
	// ErrMemberExists, ErrMemberNotFound and ErrIDRemoved reject invalid
	// membership changes.
	ErrMemberExists   = errors.New("kvraft: member already exists")
	ErrMemberNotFound = errors.New("kvraft: member not found")
	ErrIDRemoved      = errors.New("kvraft: member id was removed and cannot be reused")
	// ErrPeerURLExists rejects a member whose peer URL (normalised: case,
	// default port, trailing slash) is already an existing member's.
	ErrPeerURLExists = errors.New("kvraft: peer url already in use by another member")
	// ErrReconfig rejects a membership change that would leave fewer
	// reachable voters than a quorum of the new configuration (etcd's
	// --strict-reconfig-check); the error says which members are
	// unreachable.
	ErrReconfig = errors.New("kvraft: unsafe reconfiguration")
	// ErrMembershipChange is returned when another membership change is
	// still in progress on this node.
	ErrMembershipChange = errors.New("kvraft: another membership change is in progress")
)
