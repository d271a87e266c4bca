package wire

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// State is what an aggregator knows of one agent: the absolute values as of
// the last frame applied. Apply takes frames in order; it rejects a frame
// that does not follow the last one, or that would make the state
// inconsistent, without changing anything. It is not safe for concurrent
// use.
type State struct {
	lim     Limits
	agentID string // bound by the first frame applied
	inc     uint64
	applied uint64 // seq of the last frame applied, 0 before a keyframe

	time     time.Time
	interval time.Duration
	meta     map[string]string
	series   map[uint64]*SeriesState // by ref
	ids      map[uint64]uint64       // cgroup id to ref
	paths    map[string]uint64       // path to ref

	// Scratch space for Apply, reused from frame to frame.
	refs     map[uint64]struct{} // for Frame.validate
	removed  map[uint64]struct{}
	newIDs   map[uint64]uint64
	newPaths map[string]uint64
	staged   []SeriesState
}

// NewState returns an empty State that accepts frames within lim.
func NewState(lim Limits) (*State, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	return &State{lim: lim, series: map[uint64]*SeriesState{}, ids: map[uint64]uint64{},
		paths: map[string]uint64{}, refs: map[uint64]struct{}{}, removed: map[uint64]struct{}{},
		newIDs: map[uint64]uint64{}, newPaths: map[string]uint64{}}, nil
}

// AgentID returns the agent the State follows, "" before the first frame.
func (s *State) AgentID() string { return s.agentID }

// Incarnation returns the incarnation of the last frame applied.
func (s *State) Incarnation() uint64 { return s.inc }

// Applied returns the seq of the last frame applied, 0 when the State holds
// nothing.
func (s *State) Applied() uint64 { return s.applied }

// Len returns the number of live series.
func (s *State) Len() int { return len(s.series) }

// Apply applies f. It returns, wrapped:
//   - ErrAgentMismatch for a frame of another agent than the first one's;
//   - ErrNeedKeyframe for a delta of an incarnation the State holds nothing
//     for (a keyframe of a new incarnation replaces the old one's state);
//   - ErrDuplicate when f.Seq is at or below the last seq applied;
//   - ErrGap for a delta whose base is not the last seq applied;
//   - ErrCorrupt or ErrTooLarge for a frame that is malformed or over the
//     limits;
//   - ErrInconsistent for a frame that does not apply to the state.
func (s *State) Apply(f *Frame) error {
	clear(s.refs)
	if err := f.validate(&s.lim, ErrCorrupt, s.refs); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if s.agentID != "" && f.AgentID != s.agentID {
		return fmt.Errorf("%w: frame of %q, state of %q", ErrAgentMismatch, f.AgentID, s.agentID)
	}
	if f.Incarnation != s.inc || s.applied == 0 {
		if !f.Keyframe {
			return fmt.Errorf("%w: delta %d of incarnation %#x", ErrNeedKeyframe, f.Seq, f.Incarnation)
		}
	} else {
		if f.Seq <= s.applied {
			return fmt.Errorf("%w: frame %d, applied %d", ErrDuplicate, f.Seq, s.applied)
		}
		if !f.Keyframe && f.Base != s.applied {
			return fmt.Errorf("%w: delta %d on base %d, applied %d", ErrGap, f.Seq, f.Base, s.applied)
		}
	}
	var err error
	if f.Keyframe {
		err = s.applyKeyframe(f)
	} else {
		err = s.applyDelta(f)
	}
	if err != nil {
		return fmt.Errorf("apply frame %d: %w", f.Seq, err)
	}
	s.agentID = f.AgentID
	s.inc = f.Incarnation
	s.applied = f.Seq
	s.time = f.Time
	s.interval = f.Interval
	return nil
}

func (s *State) applyKeyframe(f *Frame) error {
	series := make(map[uint64]*SeriesState, len(f.Series))
	ids := make(map[uint64]uint64, len(f.Series))
	paths := make(map[string]uint64, len(f.Series))
	for i := range f.Series {
		u := &f.Series[i]
		if err := claim(ids, paths, u); err != nil {
			return err
		}
		series[u.Ref] = &SeriesState{Path: u.Path, ID: u.ID, Meta: cloneMeta(u.Meta), Values: u.Values}
	}
	s.series, s.ids, s.paths = series, ids, paths
	s.meta = cloneMeta(f.Meta)
	return nil
}

// claim records u's cgroup id and path, which no other series may hold.
func claim(ids map[uint64]uint64, paths map[string]uint64, u *SeriesUpdate) error {
	if r, ok := ids[u.ID]; ok {
		return fmt.Errorf("%w: ref %d: cgroup id %d already belongs to ref %d", ErrInconsistent, u.Ref, u.ID, r)
	}
	if r, ok := paths[u.Path]; ok {
		return fmt.Errorf("%w: ref %d: path %q already belongs to ref %d", ErrInconsistent, u.Ref, u.Path, r)
	}
	ids[u.ID] = u.Ref
	paths[u.Path] = u.Ref
	return nil
}

// applyDelta checks every change of f against the state first and commits
// them only when all apply.
func (s *State) applyDelta(f *Frame) error {
	removed, newIDs, newPaths := s.removed, s.newIDs, s.newPaths
	clear(removed)
	clear(newIDs)
	clear(newPaths)
	staged := slices.Grow(s.staged[:0], len(f.Series))[:len(f.Series)]
	defer func() {
		clear(staged) // drop the references to metadata
		s.staged = staged[:0]
	}()
	for _, r := range f.Removed {
		if _, ok := s.series[r]; !ok {
			return fmt.Errorf("%w: removal of unknown ref %d", ErrInconsistent, r)
		}
		removed[r] = struct{}{}
	}
	added := 0
	for i := range f.Series {
		u := &f.Series[i]
		cur, live := s.series[u.Ref]
		if u.New {
			if live {
				return fmt.Errorf("%w: new series with live ref %d", ErrInconsistent, u.Ref)
			}
			if r, ok := s.ids[u.ID]; ok && !isIn(removed, r) {
				return fmt.Errorf("%w: ref %d: cgroup id %d already belongs to ref %d", ErrInconsistent, u.Ref, u.ID, r)
			}
			if r, ok := s.paths[u.Path]; ok && !isIn(removed, r) {
				return fmt.Errorf("%w: ref %d: path %q already belongs to ref %d", ErrInconsistent, u.Ref, u.Path, r)
			}
			if err := claim(newIDs, newPaths, u); err != nil {
				return err
			}
			staged[i] = SeriesState{Path: u.Path, ID: u.ID, Meta: cloneMeta(u.Meta), Values: u.Values}
			added++
			continue
		}
		if !live {
			return fmt.Errorf("%w: change of unknown ref %d", ErrInconsistent, u.Ref)
		}
		staged[i] = SeriesState{Path: cur.Path, ID: cur.ID, Meta: cur.Meta}
		if u.MetaSet {
			staged[i].Meta = cloneMeta(u.Meta)
		}
		if err := addValues(&cur.Values, &u.Values, &staged[i].Values); err != nil {
			return fmt.Errorf("ref %d (%s): %w", u.Ref, cur.Path, err)
		}
	}
	if n := len(s.series) - len(removed) + added; n > s.lim.MaxSeries {
		return fmt.Errorf("%w: %d live series, limit %d", ErrInconsistent, n, s.lim.MaxSeries)
	}

	for r := range removed {
		old := s.series[r]
		delete(s.ids, old.ID)
		delete(s.paths, old.Path)
		delete(s.series, r)
	}
	for i := range f.Series {
		ref := f.Series[i].Ref
		if cur, ok := s.series[ref]; ok {
			*cur = staged[i]
			continue
		}
		st := new(SeriesState)
		*st = staged[i]
		s.series[ref] = st
		s.ids[st.ID] = ref
		s.paths[st.Path] = ref
	}
	if f.MetaSet {
		s.meta = cloneMeta(f.Meta)
	}
	return nil
}

func isIn(set map[uint64]struct{}, r uint64) bool {
	_, ok := set[r]
	return ok
}

// addValues sets out to cur + d, failing when a gauge would turn negative
// or overflow, or a counter or histogram field would overflow.
func addValues(cur, d, out *Values) error {
	for _, g := range gaugeFields {
		c, dv := *g.get(cur), *g.get(d)
		if dv > 0 && c > math.MaxInt64-dv {
			return fmt.Errorf("%w: gauge %d overflows", ErrInconsistent, g.key)
		}
		if c+dv < 0 {
			return fmt.Errorf("%w: gauge %d turns negative", ErrInconsistent, g.key)
		}
		*g.get(out) = c + dv
	}
	for _, c := range counterFields {
		v, ok := addUint(*c.get(cur), *c.get(d))
		if !ok {
			return fmt.Errorf("%w: counter %d overflows", ErrInconsistent, c.key)
		}
		*c.get(out) = v
	}
	for _, hf := range histFields {
		ch, dh, oh := hf.get(cur), hf.get(d), hf.get(out)
		var ok1, ok2 bool
		oh.Count, ok1 = addUint(ch.Count, dh.Count)
		oh.Sum, ok2 = addUint(ch.Sum, dh.Sum)
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: histogram %d overflows", ErrInconsistent, hf.key)
		}
		for i := range ch.Buckets {
			var ok bool
			if oh.Buckets[i], ok = addUint(ch.Buckets[i], dh.Buckets[i]); !ok {
				return fmt.Errorf("%w: histogram %d bucket %d overflows", ErrInconsistent, hf.key, i)
			}
		}
	}
	for _, hf := range logLinearFields {
		var ok bool
		if *hf.get(out), ok = logLinearAdd(hf.get(cur), hf.get(d)); !ok {
			return fmt.Errorf("%w: histogram %d overflows", ErrInconsistent, hf.key)
		}
	}
	return nil
}

func addUint(a, b uint64) (uint64, bool) {
	s := a + b
	return s, s >= a
}

// Snapshot returns a copy of the state as of the last frame applied, its
// series sorted by path (nil when there are none), or nil when the State
// holds nothing.
func (s *State) Snapshot() *Snapshot {
	if s.applied == 0 {
		return nil
	}
	snap := &Snapshot{Time: s.time, Interval: s.interval, Meta: cloneMeta(s.meta)}
	if len(s.series) > 0 {
		snap.Series = make([]SeriesState, 0, len(s.series))
	}
	for _, st := range s.series {
		c := *st
		c.Meta = cloneMeta(st.Meta)
		snap.Series = append(snap.Series, c)
	}
	snap.SortSeries()
	return snap
}
