package wire

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// EncoderConfig configures an Encoder.
type EncoderConfig struct {
	// AgentID names the agent: its node name.
	AgentID string
	// Incarnation identifies this run of the agent; zero draws a random
	// one.
	Incarnation uint64
	// Limits bound the frames the Encoder produces; they should be the
	// receiver's.
	Limits Limits
}

// Complete fills in the defaults: a random incarnation when it is zero.
// Zero limits stay zero: they mean the defaults (see Limits).
func (c *EncoderConfig) Complete() {
	for c.Incarnation == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails since Go 1.24
		c.Incarnation = binary.BigEndian.Uint64(b[:])
	}
}

// Validate checks the agent id and the limits.
func (c *EncoderConfig) Validate() error {
	if err := checkAgentID(c.AgentID, ErrInvalid); err != nil {
		return fmt.Errorf("encoder: %w", err)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("encoder: %w", err)
	}
	return nil
}

// Encoder turns an agent's snapshots into frames: a keyframe first, then
// deltas against the previously encoded snapshot. Use one Encoder per
// incarnation (agent process run); it is not safe for concurrent use.
type Encoder struct {
	agentID string
	inc     uint64
	codec   *frameCodec

	// What the receiver holds once it applied the last frame.
	seq     uint64
	needKey bool
	nextRef uint64
	meta    map[string]string
	prev    map[uint64]*encSeries // by cgroup id

	// Scratch space, reused from frame to frame.
	gen     uint64 // marks the entries of prev seen in the current frame
	order   []int
	series  []SeriesUpdate
	pending []pending
	gone    []uint64
	ids     map[uint64]struct{}
	paths   map[string]struct{}
}

// encSeries is what the receiver knows about a series.
type encSeries struct {
	ref uint64
	gen uint64
	s   SeriesState
	// src is the caller's metadata map s.Meta was copied from. Callers
	// never modify a map they passed (see SeriesState.Meta), so the same
	// map again is the same, valid metadata: no comparison, no check.
	src map[string]string
}

// sameMap reports whether a and b are the same map object.
func sameMap(a, b map[string]string) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// MetaEqual reports whether two metadata maps hold the same, without
// looking inside when they are the same map: metadata maps are replaced
// when they change, never changed in place, so a series' unchanged
// metadata is the map it had.
func MetaEqual(a, b map[string]string) bool {
	return sameMap(a, b) || maps.Equal(a, b)
}

// metaUnchanged reports whether cur's metadata is what p holds.
func (p *encSeries) metaUnchanged(cur *SeriesState) bool {
	return sameMap(p.src, cur.Meta) || maps.Equal(p.s.Meta, cur.Meta)
}

// pending is a change to prev that Encode makes once the frame is encoded.
type pending struct {
	p    *encSeries // to update; nil to add a new entry
	ref  uint64
	cur  *SeriesState
	meta bool // cur's metadata differs from p's
}

// NewEncoder returns an Encoder whose first frame will be a keyframe.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := newCodec(cfg.Limits)
	if err != nil {
		return nil, err
	}
	return &Encoder{agentID: cfg.AgentID, inc: cfg.Incarnation, codec: codec, needKey: true,
		prev: map[uint64]*encSeries{}, ids: map[uint64]struct{}{}, paths: map[string]struct{}{}}, nil
}

// Incarnation returns the incarnation the Encoder's frames carry.
func (e *Encoder) Incarnation() uint64 { return e.inc }

// Seq returns the sequence number of the last frame encoded, 0 before the
// first.
func (e *Encoder) Seq() uint64 { return e.seq }

// Reset makes the next frame a keyframe: after a reconnect, after frames
// were dropped, or when the receiver asks for one.
func (e *Encoder) Reset() { e.needKey = true }

// Encode returns the next frame: a keyframe of s when keyframe is set or
// after Reset (and for the first frame), otherwise the changes from the
// previously encoded snapshot. A series whose counters went backwards (its
// cgroup's counting started again) or whose path changed is sent as a
// removal and a new series. On error nothing changes: the next frame is
// encoded as if this call had not happened.
func (e *Encoder) Encode(s *Snapshot, keyframe bool) ([]byte, error) {
	clear(e.ids)
	clear(e.paths)
	known := func(ss *SeriesState) bool {
		p := e.prev[ss.ID]
		return p != nil && sameMap(p.src, ss.Meta)
	}
	if err := s.validate(&e.codec.lim, e.ids, e.paths, known); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	key := keyframe || e.needKey
	f := Frame{
		Header:   Header{Keyframe: key, AgentID: e.agentID, Incarnation: e.inc, Seq: e.seq + 1},
		Time:     s.Time,
		Interval: s.Interval,
		Series:   e.series[:0],
	}
	if !key {
		f.Base = e.seq
	}
	if key || !maps.Equal(e.meta, s.Meta) {
		f.MetaSet, f.Meta = true, s.Meta
	}
	e.order = e.order[:0]
	for i := range s.Series {
		e.order = append(e.order, i)
	}
	slices.SortFunc(e.order, func(a, b int) int { return cmp.Compare(s.Series[a].Path, s.Series[b].Path) })

	e.gen++
	e.pending, e.gone = e.pending[:0], e.gone[:0]
	nextRef := e.nextRef
	if key && e.seq == 0 {
		nextRef = 0
	}
	for _, i := range e.order {
		cur := &s.Series[i]
		p := e.prev[cur.ID]
		if p != nil {
			p.gen = e.gen
		}
		same := p != nil && p.s.Path == cur.Path && !decreased(&p.s.Values, &cur.Values)
		if key && same {
			// A keyframe restates a known series under its ref, so that
			// a receiver that stored it by ref need not rewrite it.
			f.Series = append(f.Series, SeriesUpdate{Ref: p.ref, New: true, Path: cur.Path, ID: cur.ID,
				MetaSet: true, Meta: cur.Meta, Values: cur.Values})
			e.pending = append(e.pending, pending{p: p, ref: p.ref, cur: cur, meta: !p.metaUnchanged(cur)})
			continue
		}
		if key || !same {
			if !key && p != nil {
				f.Removed = append(f.Removed, p.ref)
			}
			if p != nil && p.s.Path != cur.Path {
				p = nil // replaced by a new entry
			}
			f.Series = append(f.Series, SeriesUpdate{Ref: nextRef, New: true, Path: cur.Path, ID: cur.ID,
				MetaSet: true, Meta: cur.Meta, Values: cur.Values})
			e.pending = append(e.pending, pending{p: p, ref: nextRef, cur: cur, meta: p == nil || !p.metaUnchanged(cur)})
			nextRef++
			continue
		}
		// Diff into the frame's next slot, taken back when nothing changed.
		f.Series = append(f.Series, SeriesUpdate{Ref: p.ref})
		u := &f.Series[len(f.Series)-1]
		changed := diff(&p.s.Values, &cur.Values, &u.Values)
		metaChanged := !p.metaUnchanged(cur)
		if metaChanged {
			u.MetaSet, u.Meta = true, cur.Meta
		}
		if !changed && !metaChanged {
			f.Series = f.Series[:len(f.Series)-1]
			p.src = cur.Meta // equal to what p holds, and checked above
			continue
		}
		e.pending = append(e.pending, pending{p: p, ref: p.ref, cur: cur, meta: metaChanged})
	}
	for id, p := range e.prev {
		if p.gen != e.gen {
			e.gone = append(e.gone, id)
			if !key {
				f.Removed = append(f.Removed, p.ref)
			}
		}
	}
	slices.Sort(f.Removed)
	b, err := e.codec.appendFrame(nil, &f)
	clear(f.Series) // drop the references to the caller's metadata
	e.series = f.Series[:0]
	if err != nil {
		return nil, fmt.Errorf("encode frame %d: %w", f.Seq, err)
	}

	for _, id := range e.gone {
		delete(e.prev, id)
	}
	for _, pd := range e.pending {
		p := pd.p
		if p == nil {
			p = &encSeries{s: SeriesState{Path: pd.cur.Path, ID: pd.cur.ID}}
			e.prev[pd.cur.ID] = p
		}
		p.ref = pd.ref
		p.gen = e.gen
		p.s.Values = pd.cur.Values
		if pd.meta {
			p.s.Meta = cloneMeta(pd.cur.Meta)
		}
		p.src = pd.cur.Meta
	}
	clear(e.pending) // drop the references to the caller's snapshot
	e.seq++
	e.needKey = false
	e.nextRef = nextRef
	if f.MetaSet {
		e.meta = cloneMeta(s.Meta)
	}
	return b, nil
}

// decreased reports whether any counter or histogram field of cur is below
// prev's: the cumulative values restarted.
func decreased(prev, cur *Values) bool {
	for _, c := range counterFields {
		if *c.get(cur) < *c.get(prev) {
			return true
		}
	}
	for _, hf := range histFields {
		p, c := hf.get(prev), hf.get(cur)
		if c.Count < p.Count || c.Sum < p.Sum {
			return true
		}
		for i := range c.Buckets {
			if c.Buckets[i] < p.Buckets[i] {
				return true
			}
		}
	}
	for _, hf := range logLinearFields {
		if logLinearDecreased(hf.get(prev), hf.get(cur)) {
			return true
		}
	}
	return false
}

// diff sets d to cur - prev, which must not have decreased, and reports
// whether anything changed.
func diff(prev, cur, d *Values) bool {
	for _, g := range gaugeFields {
		*g.get(d) = *g.get(cur) - *g.get(prev) // both >= 0: cannot overflow
	}
	for _, c := range counterFields {
		*c.get(d) = *c.get(cur) - *c.get(prev)
	}
	for _, hf := range histFields {
		p, c, dh := hf.get(prev), hf.get(cur), hf.get(d)
		dh.Count = c.Count - p.Count
		dh.Sum = c.Sum - p.Sum
		for i := range c.Buckets {
			dh.Buckets[i] = c.Buckets[i] - p.Buckets[i]
		}
	}
	for _, hf := range logLinearFields {
		*hf.get(d) = logLinearDiff(hf.get(prev), hf.get(cur))
	}
	return !d.isZero()
}
