package kvraft

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// KV is a key, its value and its mod index (the index of the log entry
// that last wrote it). Returned slices must not be modified.
type KV = kvstore.KV

// GetResult is the outcome of Get.
type GetResult struct {
	Value []byte
	Found bool
	// ModIndex is the index of the log entry that last wrote the key (0
	// if it is absent).
	ModIndex uint64
	// Index is the applied index of the state that served the read.
	Index uint64
}

// RangeRequest selects keys: those with Prefix if it is set, otherwise
// Start <= key < End (a nil End means no upper bound).
type RangeRequest struct {
	Prefix     []byte
	Start, End []byte
	// Limit caps the number of pairs returned; <= 0 means no limit.
	Limit int
}

// RangeResult is the outcome of Range.
type RangeResult struct {
	Items []KV
	// More reports that pairs past Limit exist.
	More  bool
	Index uint64
}

// Get reads key with the requested consistency.
func (n *Node) Get(ctx context.Context, key []byte, opts ReadOptions) (GetResult, error) {
	if len(key) == 0 || len(key) > command.MaxKeySize {
		return GetResult{}, fmt.Errorf("%w: key must be 1..%d bytes", ErrInvalid, command.MaxKeySize)
	}
	if err := n.waitReadable(ctx, opts); err != nil {
		return GetResult{}, err
	}
	n.stateMu.RLock()
	kv, ok := n.kv.Get(key)
	idx := n.applied.Load()
	n.stateMu.RUnlock()
	return GetResult{Value: kv.Value, Found: ok, ModIndex: kv.ModIndex, Index: idx}, nil
}

// Range reads a range of keys with the requested consistency. All pairs
// come from one state, at the returned index.
func (n *Node) Range(ctx context.Context, req RangeRequest, opts ReadOptions) (RangeResult, error) {
	start, end := req.Start, req.End
	if req.Prefix != nil {
		start, end = req.Prefix, kvstore.PrefixEnd(req.Prefix)
	}
	if len(start) > command.MaxKeySize || len(end) > command.MaxKeySize+1 {
		return RangeResult{}, fmt.Errorf("%w: range bound longer than %d bytes", ErrInvalid, command.MaxKeySize)
	}
	if err := n.waitReadable(ctx, opts); err != nil {
		return RangeResult{}, err
	}
	n.stateMu.RLock()
	items, more := n.kv.Range(start, end, req.Limit)
	idx := n.applied.Load()
	n.stateMu.RUnlock()
	return RangeResult{Items: items, More: more, Index: idx}, nil
}

// State is one state of a replica's store, as View shows it.
type State struct {
	kv *kvstore.Store
	// Index is the applied index of the state.
	Index uint64
}

// Get returns key's pair.
func (s State) Get(key []byte) (KV, bool) { return s.kv.Get(key) }

// Ascend calls fn on the pairs with start <= key < end in key order (a
// nil end means no upper bound) until fn returns false: a reader of many
// keys close together walks them in one pass instead of looking each up.
// The pairs' slices must not be modified.
func (s State) Ascend(start, end []byte, fn func(KV) bool) { s.kv.Ascend(start, end, fn) }

// Range returns the pairs req selects, as Node.Range does.
func (s State) Range(req RangeRequest) (items []KV, more bool) {
	start, end := req.Start, req.End
	if req.Prefix != nil {
		start, end = req.Prefix, kvstore.PrefixEnd(req.Prefix)
	}
	return s.kv.Range(start, end, req.Limit)
}

// View calls fn with this replica's state once it satisfies opts. While fn
// runs, entries wait to be applied: fn sees one state, and with it the
// state of the Config's Watcher, so an index and the pairs it names agree.
// fn must be quick (point reads of what an index names; a scan belongs in
// Range) and must not keep the State.
func (n *Node) View(ctx context.Context, opts ReadOptions, fn func(State) error) error {
	if err := n.waitReadable(ctx, opts); err != nil {
		return err
	}
	n.stateMu.RLock()
	defer n.stateMu.RUnlock()
	return fn(State{kv: n.kv, Index: n.applied.Load()})
}

// waitReadable returns once this replica's state satisfies opts. Reads
// that are already satisfied return without allocating a timeout.
func (n *Node) waitReadable(ctx context.Context, opts ReadOptions) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	select {
	case <-n.stopc:
		return ErrStopped
	default:
	}
	var w *witness
	switch opts.Consistency {
	case Eventual:
		return nil
	case Session:
		if n.applied.Load() >= opts.MinIndex {
			return nil
		}
	case Bounded:
		now := time.Now()
		n.lastBounded.Store(now.UnixNano())
		if w = n.witness.Load(); w != nil && now.Sub(w.at) > opts.MaxStaleness {
			w = nil
		}
		if w != nil && n.applied.Load() >= w.index {
			return nil
		}
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	switch opts.Consistency {
	case Session:
		return n.waitApplied(ctx, opts.MinIndex)
	case Bounded:
		if w != nil {
			if err := n.waitApplied(ctx, w.index); err != nil {
				return err
			}
			if time.Since(w.at) <= opts.MaxStaleness {
				return nil
			}
		}
	}
	idx, err := n.linearizableIndex(ctx)
	if err != nil {
		return err
	}
	return n.waitApplied(ctx, idx)
}

func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	if n.applied.Load() >= idx {
		return nil
	}
	select {
	case <-n.applyWait.Wait(idx):
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-n.stopc:
		return ErrStopped
	}
}

// witness proves freshness: a ReadIndex sent at local time at returned
// index, so applying index covers every write acknowledged before at.
type witness struct {
	at    time.Time
	index uint64
}

// readBatch is a group of linearizable reads served by one ReadIndex.
type readBatch struct {
	done  chan struct{}
	index uint64
	err   error
}

func newReadBatch() *readBatch { return &readBatch{done: make(chan struct{})} }

// linearizableIndex returns a commit index confirmed by the leader with a
// quorum after the call started. Concurrent calls share one ReadIndex round.
func (n *Node) linearizableIndex(ctx context.Context) (uint64, error) {
	n.readMu.Lock()
	b := n.readBatch
	n.readMu.Unlock()
	select {
	case n.readWaitC <- struct{}{}:
	default: // a round is already requested
	}
	select {
	case <-b.done:
		return b.index, b.err
	case <-ctx.Done():
		if n.leader.Load() == 0 {
			return 0, noLeaderErr(ctx, "no read index")
		}
		return 0, ctxErr(ctx)
	case <-n.stopc:
		return 0, ErrStopped
	}
}

func (n *Node) readLoop() {
	for {
		select {
		case <-n.readWaitC:
		case <-n.stopc:
			n.readMu.Lock()
			b := n.readBatch
			n.readMu.Unlock()
			b.err = ErrStopped
			close(b.done)
			return
		}
		n.readMu.Lock()
		b := n.readBatch
		n.readBatch = newReadBatch()
		n.readMu.Unlock()
		sent := time.Now()
		b.index, b.err = n.requestReadIndex()
		if b.err == nil {
			if w := n.witness.Load(); w == nil || w.at.Before(sent) {
				n.witness.Store(&witness{at: sent, index: b.index})
			}
		}
		close(b.done)
	}
}

// requestReadIndex runs ReadIndex rounds until one answers. A round that
// gets no answer within an election timeout (the request or its answer was
// lost, or there was no leader) is retried with a fresh request context; an
// answer to any earlier round of the same call is still accepted, since it
// was also issued after the call started. It fails with ErrNoLeader if no
// leader is known when ReadIndexTimeout ends, else with ErrTimeout.
func (n *Node) requestReadIndex() (uint64, error) {
	retry := n.cfg.TickInterval * time.Duration(n.cfg.ElectionTicks)
	deadline := time.Now().Add(n.cfg.ReadIndexTimeout)
	issued := map[uint64]bool{}
	for time.Now().Before(deadline) {
		id := n.reqIDs.Next()
		issued[id] = true
		rctx := binary.BigEndian.AppendUint64(nil, id)
		ctx, cancel := context.WithTimeout(context.Background(), retry)
		err := n.raft.ReadIndex(ctx, rctx)
		cancel()
		if err != nil {
			select {
			case <-n.stopc:
				return 0, ErrStopped
			case <-time.After(n.cfg.TickInterval):
			}
			continue
		}
		timer := time.NewTimer(retry)
	wait:
		for {
			select {
			case rs := <-n.readStateC:
				if len(rs.RequestCtx) == 8 && issued[binary.BigEndian.Uint64(rs.RequestCtx)] {
					timer.Stop()
					return rs.Index, nil
				}
			case <-timer.C:
				break wait
			case <-n.stopc:
				timer.Stop()
				return 0, ErrStopped
			}
		}
	}
	if n.leader.Load() == 0 {
		return 0, fmt.Errorf("%w known: no read index within %v", ErrNoLeader, n.cfg.ReadIndexTimeout)
	}
	// A leader is known but did not answer (it may be partitioned away and
	// not know yet that it lost its quorum): a timeout.
	return 0, fmt.Errorf("%w: no read index from a leader within %v", ErrTimeout, n.cfg.ReadIndexTimeout)
}

// boundedRefreshLoop renews the bounded-staleness witness every
// BoundedRefresh while bounded reads arrived in the last few seconds, so
// those reads can be served locally.
func (n *Node) boundedRefreshLoop() {
	t := time.NewTicker(n.cfg.BoundedRefresh)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.stopc:
			return
		}
		if time.Since(time.Unix(0, n.lastBounded.Load())) > 5*time.Second {
			continue
		}
		select {
		case n.readWaitC <- struct{}{}:
		default:
		}
	}
}
