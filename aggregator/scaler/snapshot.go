package scaler

import (
	"slices"
	"time"
)

// snapshotBucket is the span within which a snapshot keeps, of the
// observations older than TrendWindow that met the objective, only the
// one with the highest rate per pod: all the capacity needs of them.
const snapshotBucket = 15 * time.Second

// Snapshot is what an Evaluator has learned, for the next leader: the
// observations of the capacity window (thinned), the recent decisions of
// the stabilization window and the breach under way. Encoded as JSON,
// about 2 KB for a 30-minute window.
type Snapshot struct {
	Samples   []SnapshotSample   `json:"s,omitempty"`
	Proposals []SnapshotProposal `json:"p,omitempty"`
	Breaches  int                `json:"b,omitempty"`
	// Replicas is the size last observed, Changed when it changed (unix
	// ms).
	Replicas int   `json:"n,omitempty"`
	Changed  int64 `json:"c,omitempty"`
	// MissSince is when the current run of misses began (unix ms).
	MissSince int64 `json:"m,omitempty"`
}

// SnapshotSample is one observation: unix ms, request rate per pod and in
// total, and whether the objective held or broke.
type SnapshotSample struct {
	At     int64   `json:"t"`
	PerPod float64 `json:"q"`
	Rate   float64 `json:"r"`
	OK     bool    `json:"o,omitempty"`
	Breach bool    `json:"x,omitempty"`
}

// SnapshotProposal is one decision of the stabilization window.
type SnapshotProposal struct {
	At       int64 `json:"t"`
	Replicas int   `json:"n"`
}

// Snapshot returns what e has learned as of now. Restored, it decides as
// e would.
func (e *Evaluator) Snapshot(now time.Time) Snapshot {
	var s Snapshot
	recent := now.Add(-TrendWindow)
	best := map[int64]int{} // bucket -> index in s.Samples of its best ok sample
	for _, x := range e.samples {
		ss := SnapshotSample{At: x.at.UnixMilli(), PerPod: x.perPod, Rate: x.rate, OK: x.ok, Breach: x.breach}
		if x.ok && !x.breach && x.at.Before(recent) {
			b := x.at.UnixMilli() / snapshotBucket.Milliseconds()
			if i, ok := best[b]; ok {
				if x.perPod > s.Samples[i].PerPod {
					s.Samples[i] = ss
				}
				continue
			}
			best[b] = len(s.Samples)
		} else if !x.ok && !x.breach && x.at.Before(recent) {
			continue // an unconfirmed miss teaches nothing once it is old
		}
		s.Samples = append(s.Samples, ss)
	}
	for _, p := range e.proposals {
		s.Proposals = append(s.Proposals, SnapshotProposal{At: p.at.UnixMilli(), Replicas: p.replicas})
	}
	s.Breaches, s.Replicas = e.breaches, e.replicas
	if !e.changed.IsZero() {
		s.Changed = e.changed.UnixMilli()
	}
	if !e.missSince.IsZero() {
		s.MissSince = e.missSince.UnixMilli()
	}
	return s
}

// Restore returns an evaluator that has learned what s holds.
func Restore(s Snapshot) *Evaluator {
	e := &Evaluator{breaches: s.Breaches, replicas: s.Replicas}
	if s.Changed != 0 {
		e.changed = time.UnixMilli(s.Changed)
	}
	if s.MissSince != 0 {
		e.missSince = time.UnixMilli(s.MissSince)
	}
	for _, x := range s.Samples {
		e.samples = append(e.samples, sample{at: time.UnixMilli(x.At), perPod: x.PerPod, rate: x.Rate, ok: x.OK, breach: x.Breach})
	}
	slices.SortStableFunc(e.samples, func(a, b sample) int { return a.at.Compare(b.at) })
	if len(e.samples) > maxSamples {
		e.samples = e.samples[len(e.samples)-maxSamples:]
	}
	for _, p := range s.Proposals {
		e.proposals = append(e.proposals, proposal{at: time.UnixMilli(p.At), replicas: p.Replicas})
	}
	return e
}
