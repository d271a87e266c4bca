package model

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
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
	// gen counts the plans the state comes from (0: loaded): a plan's
	// series carry its Next's (see plan).
	gen uint64
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
	return plan(st, u, now, false)
}

// PlanUpdateInPlace is PlanUpdate for a writer that replaces st with the
// plan's Next and never looks at st again, as an ingest stream does: Next
// takes over st's series map and values and is updated in place, where
// PlanUpdate copies the map and allocates every series value it changes.
// The plan is PlanUpdate's, op for op and byte for byte.
//
// st is spent once PlanUpdateInPlace is called, whether it succeeds or
// fails (a failed plan may have changed some of its series): neither st,
// nor any state st was planned from or that shares its series values (the
// Next of an earlier PlanUpdate of st), may be used again. A writer whose
// plan fails starts over from the store (LoadNode). st.Agent and
// st.AgentValue are left as they are.
func PlanUpdateInPlace(st *NodeState, u *Update, now time.Time) (*Plan, error) {
	return plan(st, u, now, true)
}

// planner builds one plan.
type planner struct {
	node string
	gen  uint64 // of the next state: the series this plan wrote carry it
	ops  []Op
	// buf holds the plan's keys and series values, each sliced from it
	// with its capacity cut and never written again: a few allocations
	// for the plan, not two for every series. When it is full, the next
	// chunk (of at least chunk bytes) takes over; the slices cut from the
	// earlier ones keep them. The plan's ops hold on to them until their
	// transaction is proposed; nothing the next state keeps is in buf
	// (the packed checkpoints it keeps are their own, so that it does not
	// hold a plan's buf for a MarkEvery).
	buf   []byte
	chunk int
	// prev holds the value of a series before it is updated in place.
	prev Stored
}

// valueRoom is the room a series value is encoded into (most take
// 300 to 600 bytes): one that needs more grows its chunk.
const valueRoom = 2 * storedHint

func newPlanner(u *Update, gen uint64) *planner {
	n := 0
	for i := range u.Changed {
		n += storedHint + len(nodesPrefix) + len(u.Node) + len(seriesPart) + len(u.Changed[i].Path)
	}
	n = max(n, valueRoom)
	return &planner{node: u.Node, gen: gen, ops: make([]Op, 0, len(u.Changed)+len(u.Removed)+8),
		buf: make([]byte, 0, n), chunk: max(n/4, 4<<10)}
}

// room makes room for n more bytes in buf.
func (pl *planner) room(n int) {
	if cap(pl.buf)-len(pl.buf) < n {
		pl.buf = make([]byte, 0, max(n, pl.chunk))
	}
}

// cut returns buf from start, its capacity cut: what was appended since.
func (pl *planner) cut(start int) []byte { return pl.buf[start:len(pl.buf):len(pl.buf)] }

func (pl *planner) key(kind KeyKind, path string) []byte {
	pl.room(len(nodesPrefix) + len(pl.node) + len(seriesPart) + len(path)) // the longest kind
	start := len(pl.buf)
	pl.buf = AppendKey(pl.buf, kind, pl.node, path)
	return pl.cut(start)
}

func (pl *planner) put(kind KeyKind, path string, v []byte) {
	pl.ops = append(pl.ops, Op{Key: pl.key(kind, path), Value: v})
}

func (pl *planner) del(kind KeyKind, path string) {
	pl.ops = append(pl.ops, Op{Key: pl.key(kind, path), Delete: true})
}

// putStored writes the value of s.
func (pl *planner) putStored(path string, s *Stored) {
	k := pl.key(KindSeries, path)
	pl.room(valueRoom)
	start := len(pl.buf)
	pl.buf = appendStored(pl.buf, s)
	pl.ops = append(pl.ops, Op{Key: k, Value: pl.cut(start)})
}

// end writes the final record of a series that ends (see gone.go).
func (pl *planner) end(u *Update, old *Stored, endMs int64) error {
	v, err := final(old, endMs, NoCap).Encode()
	if err != nil {
		return err
	}
	pl.room(len(gonePrefix) + len(u.Node) + 33 + len(old.Path))
	start := len(pl.buf)
	pl.buf = fmt.Appendf(pl.buf, "%s%s/%016x%016x%s", gonePrefix, u.Node, u.Incarnation, u.Seq, old.Path)
	pl.ops = append(pl.ops, Op{Key: pl.cut(start), Value: v})
	return nil
}

func plan(st *NodeState, u *Update, now time.Time, inPlace bool) (*Plan, error) {
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

	// The series this plan writes carry the next state's generation: a
	// series of next whose generation is not the plan's is one the update
	// did not list. Every series of st is of st's generation or an
	// earlier one.
	next := &NodeState{Node: st.Node, Series: st.Series, gen: st.gen + 1}
	switch {
	case !inPlace:
		next.Series = make(map[string]*Stored, len(st.Series)+len(u.Changed))
		maps.Copy(next.Series, st.Series)
	case next.Series == nil:
		next.Series = make(map[string]*Stored, len(u.Changed))
	}
	pl := newPlanner(u, next.gen)
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
	for i := range u.Changed {
		if err := pl.series(next, &u.Changed[i], u, now, sameInc, unseen, endMs, inPlace); err != nil {
			return nil, err
		}
	}
	gone := slices.Clone(u.Removed)
	if u.Keyframe {
		for p, s := range next.Series {
			if s.gen != pl.gen {
				gone = append(gone, p)
			}
		}
	}
	slices.Sort(gone)
	for _, p := range slices.Compact(gone) {
		old, ok := next.Series[p]
		if ok && old.gen == pl.gen {
			return nil, fmt.Errorf("%w: series %s both changed and removed", ErrInvalid, p)
		}
		if !ok {
			continue
		}
		if err := pl.end(u, old, endMs); err != nil {
			return nil, err
		}
		pl.del(KindSeries, p)
		if len(old.Meta) > 0 {
			pl.del(KindMeta, p)
		}
		if old.hasMarks() {
			pl.del(KindMarks, p)
		}
		delete(next.Series, p)
	}
	if len(next.Series) > MaxSeriesPerNode {
		return nil, fmt.Errorf("%w: node %s would have %d series", ErrInvalid, u.Node, len(next.Series))
	}
	// Keep the plan's order stable: the transaction is replayed as is.
	ops := pl.ops
	slices.SortFunc(ops, func(a, b Op) int { return bytes.Compare(a.Key, b.Key) })

	next.Agent = &Agent{Incarnation: u.Incarnation, Seq: u.Seq, Time: u.Time.UnixNano(),
		Interval: int64(u.Interval), Updated: now.UnixNano(), Series: len(next.Series), Meta: u.Meta,
		Accrual: advanceNode(st.Agent, u.Time.UnixNano(), sameInc)}
	av, err := next.Agent.Encode()
	if err != nil {
		return nil, err
	}
	next.AgentValue = av
	ak := AgentKey(u.Node)
	ops = append(ops, Op{Key: ak, Value: av})
	return &Plan{AgentKey: ak, Expect: st.AgentValue, Ops: ops, Next: next}, nil
}

// series plans the writes of the changed series c into next: its value,
// checkpoints and metadata, and the final record of the series it
// replaces when that one ends.
func (pl *planner) series(next *NodeState, c *SeriesState, u *Update, now time.Time, sameInc, unseen bool, endMs int64, inPlace bool) error {
	if err := ValidPath(c.Path); err != nil {
		return err
	}
	// old is the stored series; in place, its value is kept in pl.prev
	// and s is written over it.
	old := next.Series[c.Path]
	if old != nil && old.gen == pl.gen {
		return fmt.Errorf("%w: series %s twice in one update", ErrInvalid, c.Path)
	}
	var s *Stored
	if inPlace && old != nil {
		pl.prev, s = *old, old
		old = &pl.prev
	} else {
		s = new(Stored)
	}
	prev := old
	if !sameInc {
		prev = nil // cumulative values restarted with the agent
	}
	restarted, added, err := nextStored(s, prev, c, u, now, unseen)
	if err != nil {
		return fmt.Errorf("series %s: %w", c.Path, err)
	}
	if old != nil && (restarted || prev == nil) {
		if err := pl.end(u, old, endMs); err != nil {
			return err
		}
	}
	if prev != nil && u.Keyframe && unchanged(prev, s) {
		// A keyframe restating what is stored: the series stays as it
		// is, marked as listed.
		if !inPlace {
			s = new(Stored)
		}
		*s = *prev
		s.gen = pl.gen
		next.Series[c.Path] = s
		return nil
	}
	s.gen = pl.gen
	pl.putStored(c.Path, s)
	// The checkpoints too, written when one is added or they are
	// gone, and when a value of an earlier version held them; the
	// state keeps them packed.
	switch {
	case s.hasMarks() && (added || old == nil || old.marksInValue):
		if len(s.Marks) == 0 { // carried over packed from old
			pl.put(KindMarks, c.Path, s.packed)
			break
		}
		enc := EncodeMarks(s.Marks)
		pl.put(KindMarks, c.Path, enc)
		s.pack(enc)
		s.canon = true
	case !s.hasMarks() && old != nil && old.hasMarks():
		pl.del(KindMarks, c.Path)
	}
	s.pack(nil)
	// The metadata has a key of its own, written when it changes
	// (whatever the incarnation: it is not cumulative).
	if old == nil || !wire.MetaEqual(old.Meta, s.Meta) {
		switch {
		case len(s.Meta) > 0:
			v, err := EncodeMeta(s.Meta)
			if err != nil {
				return err
			}
			pl.put(KindMeta, c.Path, v)
		case old != nil && len(old.Meta) > 0:
			pl.del(KindMeta, c.Path)
		}
	}
	next.Series[c.Path] = s
	return nil
}

// nextStored writes into s the series value after the sample c on top of
// prev (nil: a new series, or one whose agent restarted); restarted reports
// that prev's counters went backwards, which starts a new lifetime, added
// that a checkpoint was added (otherwise prev's carry over, packed as
// they were). unseen says that the store missed the agent's earlier
// frames: a new series' counters are then a baseline, not what happened
// since it appeared.
func nextStored(s, prev *Stored, c *SeriesState, u *Update, now time.Time, unseen bool) (restarted, added bool, err error) {
	*s = Stored{
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
		return false, false, nil
	}
	if prev == nil {
		// A new series: everything it counted happened since it appeared.
		s.Last = all
		s.Accrual = born(s.Time, &c.Total, counters{})
		return false, false, nil
	}
	d, ok := c.Total.Sub(prev.Total)
	if !ok {
		s.Last = all
		s.Accrual = born(s.Time, &c.Total, counters{})
		return true, false, nil // counters went backwards: start over
	}
	if c.SRTT.Count < prev.SRTT.Count || c.Connect.Count < prev.Connect.Count ||
		c.RequestLatency.Count < prev.RequestLatency.Count ||
		c.RequestLatencyLogLinear.Count < prev.RequestLatencyLogLinear.Count {
		s.Last = all
	} else {
		s.Last = Delta{Counters: d, SRTT: Hist{c.SRTT.Delta(&prev.SRTT.Hist)}, Connect: Hist{c.Connect.Delta(&prev.Connect.Hist)},
			RequestLatency:          Hist{c.RequestLatency.Delta(&prev.RequestLatency.Hist)},
			RequestLatencyLogLinear: LogHist{c.RequestLatencyLogLinear.Delta(&prev.RequestLatencyLogLinear.LogLinear)}}
		if added, err = nextMarks(s, prev, s.Time); err != nil {
			return false, false, err
		}
	}
	if prev.Accrual.Born == 0 {
		// Written before accruals: a lifetime starts now, with what the
		// counters held before this sample left out.
		s.Accrual = born(s.Time, &c.Total, countersOf(&prev.Total))
	} else {
		s.Accrual = prev.Accrual.advance(gaugesOf(prev), Ms(prev.Time), Ms(s.Time), NoCap, countersOf(&d))
	}
	return false, added, nil
}

// nextMarks gives s prev's checkpoints with a checkpoint of prev's values
// added when the newest one is at least MarkEvery older, and then drops
// checkpoints no window can use. Otherwise it adds nothing (added false),
// and prev's stay as they are: checkpoints change once every MarkEvery,
// and so are written once every MarkEvery.
func nextMarks(s, prev *Stored, now int64) (added bool, err error) {
	if t, ok := prev.newestMark(); ok && prev.Time-t < int64(MarkEvery) {
		s.Marks, s.packed, s.newest, s.canon = prev.Marks, prev.packed, prev.newest, prev.canon
		return false, nil
	}
	if enc, ok := spliceMarks(prev, now); ok {
		s.packed, s.newest, s.canon = enc, prev.Time, true
		return true, nil
	}
	marks, err := prev.unpacked()
	if err != nil {
		return false, fmt.Errorf("checkpoints: %w", err)
	}
	if len(prev.packed) == 0 {
		marks = slices.Clone(marks) // prev's own: not to be changed
	}
	marks = append(marks, markOf(prev))
	// The oldest mark must stay as long as the next one is younger than
	// MaxWindow: it is what a MaxWindow read starts from.
	for len(marks) > 1 && now-marks[1].Time >= int64(MaxWindow) {
		marks = marks[1:]
	}
	if len(marks) > maxMarks+1 {
		marks = marks[len(marks)-maxMarks-1:]
	}
	s.Marks = marks
	return true, nil
}

// markOf is a checkpoint of s's values.
func markOf(s *Stored) Mark {
	return Mark{Time: s.Time, Total: s.Total, SRTT: s.SRTT, Connect: s.Connect,
		RequestLatency: s.RequestLatency, RequestLatencyLogLinear: s.RequestLatencyLogLinear}
}

// spliceMarks is nextMarks for checkpoints packed as appendMarks writes
// them (canon): the encoding of the checkpoints nextMarks would keep,
// made of the bytes of those it keeps and the new one's, with no
// decoding of the others: the same bytes as EncodeMarks of them, in a
// tenth of the time and with one allocation. ok is false for checkpoints
// packed otherwise (as loaded from the store: maybe an earlier version's
// encoding), or not as expected; nextMarks decodes those.
func spliceMarks(prev *Stored, now int64) (enc []byte, ok bool) {
	if !prev.canon || len(prev.packed) == 0 {
		return nil, false
	}
	d := decoder{b: prev.packed}
	n, err := d.arrayLen()
	if err != nil || n < 1 || n > maxMarks+1 {
		return nil, false
	}
	// start[i] is where mark i starts; the new one is mark n.
	var start [maxMarks + 2]int
	var times [maxMarks + 2]int64
	for i := range n {
		start[i] = d.off
		if c, err := d.code(); err != nil || c < 0x80 || c > 0x8f {
			return nil, false // appendMarks writes a fixmap
		}
		if k, err := d.str(); err != nil || string(k) != "t" {
			return nil, false
		}
		if times[i], err = d.int(); err != nil {
			return nil, false
		}
		d.off = start[i]
		if err := d.skip(1); err != nil {
			return nil, false
		}
	}
	if d.off != len(d.b) {
		return nil, false
	}
	start[n], times[n] = d.off, prev.Time
	first, total := 0, n+1
	for total-first > 1 && now-times[first+1] >= int64(MaxWindow) {
		first++
	}
	first = max(first, total-maxMarks-1)
	kept := d.b[start[first]:start[n]]
	m := markOf(prev)
	enc = make([]byte, 0, 5+len(kept)+2*markHint)
	enc = append(appendArrayLen(enc, total-first), kept...)
	return appendMark(enc, &m), true
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
