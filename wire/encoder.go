package wire

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
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

// Validate reports whether c is usable.
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

	seq     uint64 // of the last frame encoded
	needKey bool
	nextRef uint64
	meta    map[string]string
	prev    map[uint64]*encSeries // by cgroup id, as of the last frame
	spare   map[uint64]*encSeries
	order   []int
}

// encSeries is what the receiver knows about a series.
type encSeries struct {
	ref uint64
	s   SeriesState
}

// NewEncoder returns an Encoder whose first frame will be a keyframe.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := newCodec(cfg.Limits)
	if err != nil {
		return nil, err
	}
	inc := cfg.Incarnation
	for inc == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails since Go 1.24
		inc = binary.BigEndian.Uint64(b[:])
	}
	return &Encoder{agentID: cfg.AgentID, inc: inc, codec: codec, needKey: true,
		prev: map[uint64]*encSeries{}, spare: map[uint64]*encSeries{}}, nil
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
	if err := s.Validate(e.codec.lim); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	key := keyframe || e.needKey
	f := Frame{
		Header:   Header{Keyframe: key, AgentID: e.agentID, Incarnation: e.inc, Seq: e.seq + 1},
		Time:     s.Time,
		Interval: s.Interval,
		Series:   make([]SeriesUpdate, 0, len(s.Series)),
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

	next := e.spare
	clear(next)
	nextRef := e.nextRef
	if key {
		nextRef = 0
	}
	for _, i := range e.order {
		cur := &s.Series[i]
		var p *encSeries
		if !key {
			p = e.prev[cur.ID]
		}
		if p == nil || p.s.Path != cur.Path || decreased(&p.s.Values, &cur.Values) {
			if p != nil {
				f.Removed = append(f.Removed, p.ref)
			}
			f.Series = append(f.Series, SeriesUpdate{Ref: nextRef, New: true, Path: cur.Path, ID: cur.ID,
				MetaSet: true, Meta: cur.Meta, Values: cur.Values})
			next[cur.ID] = &encSeries{ref: nextRef, s: SeriesState{Path: cur.Path, ID: cur.ID,
				Meta: cloneMeta(cur.Meta), Values: cur.Values}}
			nextRef++
			continue
		}
		u := SeriesUpdate{Ref: p.ref}
		changed := diff(&p.s.Values, &cur.Values, &u.Values)
		meta := p.s.Meta
		if !maps.Equal(p.s.Meta, cur.Meta) {
			u.MetaSet, u.Meta = true, cur.Meta
			meta = cloneMeta(cur.Meta)
			changed = true
		}
		if !changed {
			next[cur.ID] = p
			continue
		}
		f.Series = append(f.Series, u)
		next[cur.ID] = &encSeries{ref: p.ref, s: SeriesState{Path: cur.Path, ID: cur.ID, Meta: meta, Values: cur.Values}}
	}
	if !key {
		for id, p := range e.prev {
			if _, ok := next[id]; !ok {
				f.Removed = append(f.Removed, p.ref)
			}
		}
		slices.Sort(f.Removed)
	}
	b, err := e.codec.appendFrame(nil, &f)
	if err != nil {
		return nil, fmt.Errorf("encode frame %d: %w", f.Seq, err)
	}
	e.seq++
	e.needKey = false
	e.nextRef = nextRef
	e.meta = cloneMeta(s.Meta)
	e.prev, e.spare = next, e.prev
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
	return *d != Values{}
}
