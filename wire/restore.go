package wire

import (
	"fmt"
	"time"
)

// Restore is what an aggregator stored of an agent's stream: enough to
// rebuild the State, so that deltas the agent resends apply on any replica
// after the stream moved or the aggregator restarted.
type Restore struct {
	AgentID     string
	Incarnation uint64
	// Applied is the seq of the last frame the stored state reflects.
	Applied  uint64
	Time     time.Time
	Interval time.Duration
	Meta     map[string]string
	// Series are the live series by ref.
	Series map[uint64]SeriesState
}

// RestoreState returns the State r describes, checked as a keyframe would
// be: within lim, unique paths and cgroup ids, no negative gauge.
func RestoreState(lim Limits, r Restore) (*State, error) {
	s, err := NewState(lim)
	if err != nil {
		return nil, err
	}
	if err := checkAgentID(r.AgentID, ErrInvalid); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if r.Incarnation == 0 || r.Applied == 0 {
		return nil, fmt.Errorf("%w: restore needs an incarnation and an applied seq", ErrInvalid)
	}
	snap := Snapshot{Time: r.Time, Interval: r.Interval, Meta: r.Meta, Series: make([]SeriesState, 0, len(r.Series))}
	for _, st := range r.Series {
		snap.Series = append(snap.Series, st)
	}
	if err := snap.Validate(s.lim); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	for ref, st := range r.Series {
		st.Meta = cloneMeta(st.Meta)
		s.series[ref] = &st
		s.ids[st.ID] = ref
		s.paths[st.Path] = ref
	}
	s.agentID, s.inc, s.applied = r.AgentID, r.Incarnation, r.Applied
	s.time, s.interval, s.meta = r.Time, r.Interval, cloneMeta(r.Meta)
	return s, nil
}

// Series returns a copy of the live series with ref. Its Meta map is the
// State's own, shared to spare a copy per series and frame: the State
// replaces a series' metadata map when it changes and never modifies one,
// and callers must not either.
func (s *State) Series(ref uint64) (SeriesState, bool) {
	st, ok := s.series[ref]
	if !ok {
		return SeriesState{}, false
	}
	return *st, true
}

// Ref returns the ref of the live series at path.
func (s *State) Ref(path string) (uint64, bool) {
	r, ok := s.paths[path]
	return r, ok
}

// Meta returns a copy of the agent's metadata.
func (s *State) Meta() map[string]string { return cloneMeta(s.meta) }
