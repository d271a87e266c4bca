package faultnet

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/pennyhq/penny/kvraft"
)

// Network connects the endpoints of one test cluster.
type Network struct {
	mu        sync.Mutex
	rng       *rand.Rand
	endpoints map[uint64]*endpoint
	drop      float64
	minDelay  time.Duration
	maxDelay  time.Duration
	cut       map[[2]uint64]bool // directed links that drop everything
	wg        sync.WaitGroup
}

// New returns a network with no faults; seed makes fault decisions
// reproducible (timing still varies).
func New(seed uint64) *Network {
	return &Network{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		endpoints: map[uint64]*endpoint{},
		cut:       map[[2]uint64]bool{},
	}
}

// Factory returns the transport factory of member id. Starting a member
// again under the same id replaces its endpoint, as a restarted process
// would rebind its address.
func (n *Network) Factory(id uint64) kvraft.TransportFactory {
	return func(r kvraft.Receiver) (kvraft.Transport, error) {
		ep := &endpoint{net: n, id: id, r: r, since: time.Now()}
		n.mu.Lock()
		n.endpoints[id] = ep
		n.mu.Unlock()
		return ep, nil
	}
}

// SetDrop makes every message get lost with probability p.
func (n *Network) SetDrop(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop = p
}

// SetDelay delays every message by a uniform duration in [min, max]; a wide
// range reorders messages.
func (n *Network) SetDelay(min, max time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.minDelay, n.maxDelay = min, max
}

// Partition cuts every link between members of different groups.
func (n *Network) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, a := range groups {
		for j, b := range groups {
			if i == j {
				continue
			}
			for _, x := range a {
				for _, y := range b {
					n.cut[[2]uint64{x, y}] = true
				}
			}
		}
	}
}

// Heal removes all partitions.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
}

// Wait blocks until every message in flight has been delivered or dropped.
func (n *Network) Wait() { n.wg.Wait() }

// decide returns whether a message from -> to is delivered, and its delay.
func (n *Network) decide(from, to uint64) (*endpoint, time.Duration, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst := n.endpoints[to]
	if dst == nil || n.cut[[2]uint64{from, to}] || (n.drop > 0 && n.rng.Float64() < n.drop) {
		return nil, 0, false
	}
	d := n.minDelay
	if n.maxDelay > n.minDelay {
		d += time.Duration(n.rng.Int64N(int64(n.maxDelay - n.minDelay)))
	}
	return dst, d, true
}

type endpoint struct {
	net *Network
	id  uint64
	r   kvraft.Receiver

	mu     sync.Mutex
	closed bool
	since  time.Time // when it started
}

func (e *endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func (e *endpoint) Send(msgs []*raftpb.Message) {
	if e.isClosed() {
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		snap := m.GetType() == raftpb.MsgSnap
		dst, delay, ok := e.net.decide(e.id, to)
		if !ok {
			if snap {
				e.r.ReportSnapshot(to, raft.SnapshotFailure)
			}
			continue
		}
		b, err := proto.Marshal(m)
		if err != nil {
			continue
		}
		e.net.wg.Add(1)
		time.AfterFunc(delay, func() {
			defer e.net.wg.Done()
			if dst.isClosed() {
				if snap && !e.isClosed() {
					e.r.ReportSnapshot(to, raft.SnapshotFailure)
				}
				return
			}
			msg := &raftpb.Message{}
			if err := proto.Unmarshal(b, msg); err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := dst.r.Process(ctx, msg)
			cancel()
			if snap && !e.isClosed() {
				status := raft.SnapshotFinish
				if err != nil {
					status = raft.SnapshotFailure
				}
				e.r.ReportSnapshot(to, status)
			}
		})
	}
}

// ActiveSince implements kvraft.PeerStatus: a peer is connected while it
// runs and no partition cuts it off from e, either way.
func (e *endpoint) ActiveSince(id uint64) time.Time {
	if e.isClosed() {
		return time.Time{}
	}
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	dst := e.net.endpoints[id]
	if dst == nil || e.net.cut[[2]uint64{e.id, id}] || e.net.cut[[2]uint64{id, e.id}] {
		return time.Time{}
	}
	return dst.since
}

func (e *endpoint) AddPeer(id uint64, _ string) {}
func (e *endpoint) RemovePeer(id uint64)        {}

func (e *endpoint) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.net.mu.Lock()
	if e.net.endpoints[e.id] == e {
		delete(e.net.endpoints, e.id)
	}
	e.net.mu.Unlock()
	return nil
}
