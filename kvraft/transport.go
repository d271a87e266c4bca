package kvraft

import (
	"context"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Receiver is the side of a Node that a Transport delivers to. It has the
// method set of etcd's rafthttp.Raft.
type Receiver interface {
	Process(ctx context.Context, m *raftpb.Message) error
	IsIDRemoved(id uint64) bool
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
	// ReportRemoved tells the node that its peers refuse it because it was
	// removed from the cluster: the removal may have committed without this
	// member ever receiving the entry, so it learns it from them.
	ReportRemoved()
}

// Transport carries Raft messages between replicas. Send must not block on
// the network; messages may be dropped (Raft retries).
type Transport interface {
	Send(msgs []*raftpb.Message)
	// AddPeer makes id reachable at peerURL; adding a known peer is a no-op.
	AddPeer(id uint64, peerURL string)
	RemovePeer(id uint64)
	Close() error
}

// PeerStatus is implemented by transports that know which peers are
// connected now; membership changes use it for the strict
// reconfiguration check (see AddMember).
type PeerStatus interface {
	// ActiveSince returns when the connection to peer id became active,
	// or the zero time if it is not connected.
	ActiveSince(id uint64) time.Time
}

// TransportFactory builds the transport of a node that delivers to r.
type TransportFactory func(r Receiver) (Transport, error)

// SingleMember is the TransportFactory of a store that stays a one-member
// cluster (e.g. `penny local`): such a node never sends a message. Use a
// real transport if members may be added later.
func SingleMember(Receiver) (Transport, error) { return singleMember{}, nil }

type singleMember struct{}

func (singleMember) Send(msgs []*raftpb.Message)  {}
func (singleMember) AddPeer(uint64, string)       {}
func (singleMember) RemovePeer(uint64)            {}
func (singleMember) Close() error                 { return nil }
func (singleMember) ActiveSince(uint64) time.Time { return time.Time{} }
