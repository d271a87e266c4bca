package model

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

// Checkpoints: one every MarkEvery, enough to cover MaxWindow.
const (
	MarkEvery = 15 * time.Second
	MaxWindow = 2 * time.Minute
	maxMarks  = int(MaxWindow / MarkEvery)
)

// Every update of a node is one kvraft transaction (Txn): its condition on
// the agent record, then the writes of each series it touches and the
// agent record. A series' writes are its value; its metadata and its
// checkpoints, each under its own key, written or deleted when they
// change; and the final record of a series that ends (see gone.go). A
// keyframe touches every series it lists and every stored series it does
// not list, which it deletes: up to twice MaxSeriesPerNode series.
const (
	// MaxUpdateOps bounds the writes of one update's plan, the agent
	// record included: with the condition, they are at most
	// kvraft.MaxTxnOps.
	MaxUpdateOps = kvraft.MaxTxnOps - 1
	// opsPerSeries are the writes of a new series: its value and its
	// metadata (it has no checkpoints yet); opsPerEnded those of a series
	// that ends: its value, metadata and checkpoints deleted, and its
	// final record. A stored series that goes on writes at most three
	// (value, metadata, checkpoints), or, restarted, four (its checkpoints
	// deleted and its final record instead): never more than a new series
	// and an ended one together.
	opsPerSeries = 2
	opsPerEnded  = 4
	// MaxSeriesPerNode bounds the series of one node, and of one update,
	// so that every update of a node fits in one transaction: a keyframe
	// that replaces MaxSeriesPerNode stored series, all with metadata and
	// checkpoints, by as many others writes 6*MaxSeriesPerNode + 1 keys.
	MaxSeriesPerNode = (MaxUpdateOps - 1) / (opsPerSeries + opsPerEnded)
)

// Update is one applied agent frame, as absolute values.
type Update struct {
	Node        string
	Incarnation uint64
	Seq         uint64
	Time        time.Time
	Interval    time.Duration
	// Keyframe: Changed lists every live series of the node, and stored
	// series it does not list are gone.
	Keyframe bool
	// Changed are the series that are new or changed in this frame.
	Changed []SeriesState
	// Removed are the paths of series that are gone.
	Removed []string
	// Meta is the agent's metadata.
	Meta map[string]string
}

// NodeState is what a writer knows of one node's stored state.
type NodeState struct {
	Node string
	// AgentValue is the stored agent record, byte for byte (nil: none). It
	// is the condition of the next update.
	AgentValue []byte
	Agent      *Agent
	Series     map[string]*Stored
}

// Op is one write of a plan.
type Op struct {
	Key    []byte
	Value  []byte // nil for a delete
	Delete bool
}

// Plan is the transaction that applies an update: if the agent record
// still is Expect (absent when nil), run Ops.
type Plan struct {
	AgentKey []byte
	Expect   []byte
	Ops      []Op
	// Next is the node's state once the plan has applied.
	Next *NodeState
}

// ErrStale means an update is older than what is stored: a frame of an
// earlier incarnation or an already applied sequence number.
var ErrStale = errors.New("model: update older than the stored state")

// PlanUpdate computes the writes that apply u on top of st. It does not
// change st.
func PlanUpdate(st *NodeState, u *Update, now time.Time) (*Plan, error) {
	if err := ValidNode(u.Node); err != nil {
		return nil, err
	}
	if st.Node != u.Node {
		return nil, fmt.Errorf("%w: update of %q applied to state of %q", ErrInvalid, u.Node, st.Node)
	}
	if len(u.Changed)+len(u.Removed) > MaxSeriesPerNode {
		return nil, fmt.Errorf("%w: %d series in one update", ErrInvalid, len(u.Changed)+len(u.Removed))
	}
	sameInc := st.Agent != nil && st.Agent.Incarnation == u.Incarnation
	if sameInc && u.Seq <= st.Agent.Seq {
		return nil, fmt.Errorf("%w: seq %d, stored %d", ErrStale, u.Seq, st.Agent.Seq)
	}

	next := &NodeState{Node: st.Node, Series: make(map[string]*Stored, len(st.Series)+len(u.Changed))}
	for p, s := range st.Series {
		next.Series[p] = s
	}
	var ops []Op
	// A series that ends leaves its final record for the history.
	endOf := func(old *Stored, endMs int64) error {
		v, err := final(old, endMs, NoCap).Encode()
		if err != nil {
			return err
		}
		ops = append(ops, Op{Key: GoneKey(u.Node, u.Incarnation, u.Seq, old.Path), Value: v})
		return nil
	}
	// Series end at this frame's sample time, or, when the agent
	// restarted, at its previous incarnation's last sample held for one
	// interval.
	endMs := Ms(u.Time.UnixNano())
	if st.Agent != nil && !sameInc {
		endMs = min(endMs, Ms(st.Agent.Time)+Ms(st.Agent.Interval))
	}
	// The first frame this store sees of an incarnation that sent frames
	// before (a new or restored aggregator cluster, frames the agent
	// dropped): its counters hold more than this interval.
	unseen := !sameInc && u.Seq > 1
	seen := make(map[string]bool, len(u.Changed))
	for i := range u.Changed {
		c := &u.Changed[i]
		if err := ValidPath(c.Path); err != nil {
			return nil, err
		}
		if seen[c.Path] {
			return nil, fmt.Errorf("%w: series %s twice in one update", ErrInvalid, c.Path)
		}
		seen[c.Path] = true
		prev := st.Series[c.Path]
		if !sameInc {
			prev = nil // cumulative values restarted with the agent
		}
		s, restarted, added, err := nextStored(prev, c, u, now, unseen)
		if err != nil {
			return nil, fmt.Errorf("series %s: %w", c.Path, err)
		}
		if old := st.Series[c.Path]; old != nil && (restarted || prev == nil) {
			if err := endOf(old, endMs); err != nil {
				return nil, err
			}
		}
		if prev != nil && u.Keyframe && unchanged(prev, s) {
			continue // a keyframe restating what is stored
		}
		v, err := s.Encode()
		if err != nil {
			return nil, err
		}
		ops = append(ops, Op{Key: SeriesKey(u.Node, c.Path), Value: v})
		// The checkpoints too, written when one is added or they are
		// gone, and when a value of an earlier version held them; the
		// state keeps them packed.
		old := st.Series[c.Path]
		switch {
		case s.hasMarks() && (added || old == nil || old.marksInValue):
			if len(s.Marks) == 0 { // carried over packed from old
				ops = append(ops, Op{Key: MarksKey(u.Node, c.Path), Value: s.packed})
				break
			}
			enc := EncodeMarks(s.Marks)
			ops = append(ops, Op{Key: MarksKey(u.Node, c.Path), Value: enc})
			s.pack(enc)
		case !s.hasMarks() && old != nil && old.hasMarks():
			ops = append(ops, Op{Key: MarksKey(u.Node, c.Path), Delete: true})
		}
		s.pack(nil)
		// The metadata has a key of its own, written when it changes
		// (whatever the incarnation: it is not cumulative).
		if old := st.Series[c.Path]; old == nil || !wire.MetaEqual(old.Meta, s.Meta) {
			op := Op{Key: MetaKey(u.Node, c.Path), Delete: true}
			if len(s.Meta) > 0 {
				if op.Value, err = EncodeMeta(s.Meta); err != nil {
					return nil, err
				}
				op.Delete = false
			}
			if !op.Delete || old != nil && len(old.Meta) > 0 {
				ops = append(ops, op)
			}
		}
		next.Series[c.Path] = s
	}
	gone := slices.Clone(u.Removed)
	if u.Keyframe {
		for p := range st.Series {
			if !seen[p] {
				gone = append(gone, p)
			}
		}
	}
	slices.Sort(gone)
	for _, p := range slices.Compact(gone) {
		if seen[p] {
			return nil, fmt.Errorf("%w: series %s both changed and removed", ErrInvalid, p)
		}
		old, ok := next.Series[p]
		if !ok {
			continue
		}
		if err := endOf(old, endMs); err != nil {
			return nil, err
		}
		ops = append(ops, Op{Key: SeriesKey(u.Node, p), Delete: true})
		if len(old.Meta) > 0 {
			ops = append(ops, Op{Key: MetaKey(u.Node, p), Delete: true})
		}
		if old.hasMarks() {
			ops = append(ops, Op{Key: MarksKey(u.Node, p), Delete: true})
		}
		delete(next.Series, p)
	}
	if len(next.Series) > MaxSeriesPerNode {
		return nil, fmt.Errorf("%w: node %s would have %d series", ErrInvalid, u.Node, len(next.Series))
	}
	// Keep the plan's order stable: the transaction is replayed as is.
	slices.SortFunc(ops, func(a, b Op) int { return bytes.Compare(a.Key, b.Key) })

	next.Agent = &Agent{Incarnation: u.Incarnation, Seq: u.Seq, Time: u.Time.UnixNano(),
		Interval: int64(u.Interval), Updated: now.UnixNano(), Series: len(next.Series), Meta: u.Meta,
		Accrual: advanceNode(st.Agent, u.Time.UnixNano(), sameInc)}
	av, err := next.Agent.Encode()
	if err != nil {
		return nil, err
	}
	next.AgentValue = av
	ops = append(ops, Op{Key: AgentKey(u.Node), Value: av})
	return &Plan{AgentKey: AgentKey(u.Node), Expect: st.AgentValue, Ops: ops, Next: next}, nil
}

// nextStored returns the series value after the sample c on top of prev
// (nil: a new series, or one whose agent restarted); restarted reports
// that prev's counters went backwards, which starts a new lifetime, added
// that a checkpoint was added (otherwise prev's carry over, packed as
// they were). unseen says that the store missed the agent's earlier
// frames: a new series' counters are then a baseline, not what happened
// since it appeared.
func nextStored(prev *Stored, c *SeriesState, u *Update, now time.Time, unseen bool) (s *Stored, restarted, added bool, err error) {
	s = &Stored{
		Ref: c.Ref, Path: c.Path, CgroupID: c.CgroupID, Meta: c.Meta, Time: u.Time.UnixNano(), Interval: int64(u.Interval),
		Updated: now.UnixNano(), Processes: c.Processes, RSSBytes: c.RSSBytes, PageCache: c.PageCacheBytes,
		WorkingSet: c.WorkingSetBytes, PressureKnown: c.PressureKnown,
		Total: c.Total, SRTT: Hist{c.SRTT}, Connect: Hist{c.Connect}, RequestLatency: Hist{c.RequestLatency},
		RequestLatencyLogLinear: LogHist{c.RequestLatencyLogLinear},
	}
	all := Delta{Counters: c.Total, SRTT: Hist{c.SRTT}, Connect: Hist{c.Connect}, RequestLatency: Hist{c.RequestLatency},
		RequestLatencyLogLinear: LogHist{c.RequestLatencyLogLinear}}
	if prev == nil && unseen {
		// Counted over the agent's life so far, not this interval: nothing
		// is known of this interval, and the series accrues from now.
		s.Accrual = born(s.Time, &c.Total, countersOf(&c.Total))
		return s, false, false, nil
	}
	if prev == nil {
		// A new series: everything it counted happened since it appeared.
		s.Last = all
		s.Accrual = born(s.Time, &c.Total, counters{})
		return s, false, false, nil
	}
	d, ok := c.Total.Sub(prev.Total)
	if !ok {
		s.Last = all
		s.Accrual = born(s.Time, &c.Total, counters{})
		return s, true, false, nil // counters went backwards: start over
	}
	if c.SRTT.Count < prev.SRTT.Count || c.Connect.Count < prev.Connect.Count ||
		c.RequestLatency.Count < prev.RequestLatency.Count ||
		c.RequestLatencyLogLinear.Count < prev.RequestLatencyLogLinear.Count {
		s.Last = all
	} else {
		s.Last = Delta{Counters: d, SRTT: Hist{c.SRTT.Delta(&prev.SRTT.Hist)}, Connect: Hist{c.Connect.Delta(&prev.Connect.Hist)},
			RequestLatency:          Hist{c.RequestLatency.Delta(&prev.RequestLatency.Hist)},
			RequestLatencyLogLinear: LogHist{c.RequestLatencyLogLinear.Delta(&prev.RequestLatencyLogLinear.LogLinear)}}
		if s.Marks, added, err = nextMarks(prev, s.Time); err != nil {
			return nil, false, false, err
		}
		if !added {
			s.Marks, s.packed, s.newest = prev.Marks, prev.packed, prev.newest
		}
	}
	if prev.Accrual.Born == 0 {
		// Written before accruals: a lifetime starts now, with what the
		// counters held before this sample left out.
		s.Accrual = born(s.Time, &c.Total, countersOf(&prev.Total))
	} else {
		s.Accrual = prev.Accrual.advance(gaugesOf(prev), Ms(prev.Time), Ms(s.Time), NoCap, countersOf(&d))
	}
	return s, false, added, nil
}

// nextMarks adds a checkpoint of the previous values when the newest one
// is at least MarkEvery older, and then drops checkpoints no window can
// use. Otherwise it adds nothing (added false), and prev's stay as they
// are: checkpoints change once every MarkEvery, and so are written once
// every MarkEvery.
func nextMarks(prev *Stored, now int64) (marks Marks, added bool, err error) {
	if t, ok := prev.newestMark(); ok && prev.Time-t < int64(MarkEvery) {
		return nil, false, nil
	}
	if marks, err = prev.unpacked(); err != nil {
		return nil, false, fmt.Errorf("checkpoints: %w", err)
	}
	if len(prev.packed) == 0 {
		marks = slices.Clone(marks) // prev's own: not to be changed
	}
	marks = append(marks, Mark{Time: prev.Time, Total: prev.Total, SRTT: prev.SRTT, Connect: prev.Connect,
		RequestLatency: prev.RequestLatency, RequestLatencyLogLinear: prev.RequestLatencyLogLinear})
	// The oldest mark must stay as long as the next one is younger than
	// MaxWindow: it is what a MaxWindow read starts from.
	for len(marks) > 1 && now-marks[1].Time >= int64(MaxWindow) {
		marks = marks[1:]
	}
	if len(marks) > maxMarks+1 {
		marks = marks[len(marks)-maxMarks-1:]
	}
	return marks, true, nil
}

func unchanged(a, b *Stored) bool {
	return a.Ref == b.Ref && a.CgroupID == b.CgroupID && wire.MetaEqual(a.Meta, b.Meta) &&
		a.Processes == b.Processes && a.RSSBytes == b.RSSBytes && a.PageCache == b.PageCache &&
		a.WorkingSet == b.WorkingSet && a.PressureKnown == b.PressureKnown &&
		a.Total == b.Total && a.SRTT == b.SRTT && a.Connect == b.Connect && a.RequestLatency == b.RequestLatency &&
		a.RequestLatencyLogLinear.Equal(&b.RequestLatencyLogLinear.LogLinear)
}

// LoadNode builds a node's state from the keys of its NodePrefix, read at
// one index: its agent record, series, their metadata and checkpoints.
// Keys of other nodes or kinds are left out; a metadata or checkpoints key
// without its series is ignored.
func LoadNode(node string, items []kvraft.KV) (*NodeState, error) {
	st := &NodeState{Node: node, Series: make(map[string]*Stored, len(items)/2)}
	var metas, marks []kvraft.KV
	for _, kv := range items {
		n, kind, p, err := ParseKey(kv.Key)
		if err != nil || n != node {
			continue
		}
		switch kind {
		case KindAgent:
			a, err := DecodeAgent(kv.Value)
			if err != nil {
				return nil, err
			}
			st.Agent, st.AgentValue = a, kv.Value
		case KindSeries:
			s, err := DecodeStored(p, kv.Value)
			if err != nil {
				return nil, fmt.Errorf("series %s of %s: %w", p, node, err)
			}
			st.Series[p] = s
		case KindMeta:
			metas = append(metas, kv)
		case KindMarks:
			marks = append(marks, kv)
		}
	}
	for _, kv := range metas {
		_, _, p, _ := ParseKey(kv.Key)
		if s := st.Series[p]; s != nil {
			m, err := DecodeMeta(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("metadata of %s of %s: %w", p, node, err)
			}
			s.Meta = m
		}
	}
	for _, kv := range marks {
		_, _, p, _ := ParseKey(kv.Key)
		if s := st.Series[p]; s != nil && !s.marksInValue {
			if err := s.SetMarks(kv.Value); err != nil {
				return nil, fmt.Errorf("checkpoints of %s of %s: %w", p, node, err)
			}
			s.pack(kv.Value)
		}
	}
	return st, nil
}

// Txn returns the transaction that runs ops if the node's agent record still
// is expect (absent when expect is nil): the condition that keeps two
// writers of one node from applying a frame twice or interleaving.
func Txn(node string, expect []byte, ops []Op) kvraft.Txn {
	key := AgentKey(node)
	cmp := kvraft.CompareMissing(key)
	if expect != nil {
		cmp = kvraft.CompareValue(key, kvraft.CmpEqual, expect)
	}
	tx := kvraft.Txn{If: []kvraft.Compare{cmp}, Then: make([]kvraft.Op, 0, len(ops))}
	for _, op := range ops {
		if op.Delete {
			tx.Then = append(tx.Then, kvraft.Op{Type: kvraft.OpDelete, Key: op.Key})
		} else {
			tx.Then = append(tx.Then, kvraft.Op{Type: kvraft.OpPut, Key: op.Key, Value: op.Value})
		}
	}
	return tx
}
