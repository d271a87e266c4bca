package model

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/pennyhq/penny/wire"
)

// refPlanUpdate is PlanUpdate as it was before plans were built in place
// and into one buffer (commit 3814412): the reference the differential
// test holds PlanUpdate and PlanUpdateInPlace to, op for op.
func refPlanUpdate(st *NodeState, u *Update, now time.Time) (*Plan, error) {
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
		s, restarted, added, err := refNextStored(prev, c, u, now, unseen)
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
func refNextStored(prev *Stored, c *SeriesState, u *Update, now time.Time, unseen bool) (s *Stored, restarted, added bool, err error) {
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
		if s.Marks, added, err = refNextMarks(prev, s.Time); err != nil {
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
func refNextMarks(prev *Stored, now int64) (marks Marks, added bool, err error) {
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
