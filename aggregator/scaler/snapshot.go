package scaler

import (
	"math"
	"slices"
	"time"
)

// Snapshot is what an Evaluator has learned, for the next leader: the
// observations of the capacity window (those that can still decide), the
// recent decisions of the stabilization window and the breach under way.
// Encoded as JSON, about 2 KB for a 30-minute window.
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
	// Latency is the objective's metric then, seconds.
	Latency float64 `json:"l,omitempty"`
	OK      bool    `json:"o,omitempty"`
	Breach  bool    `json:"x,omitempty"`
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
	// Of the older observations, the capacity reads only the highest
	// per-pod rate that held and the lowest that broke over the window as
	// it slides: an observation with a later one that held at a rate as
	// high (or broke at one as low) never decides again and is left out.
	laterOK, laterBreach := math.Inf(-1), math.Inf(1)
	for i := len(e.samples) - 1; i >= 0; i-- {
		x := e.samples[i]
		keep := !x.at.Before(recent) || !e.missSince.IsZero() && !x.at.Before(e.missSince)
		switch {
		case x.breach:
			keep = keep || x.perPod < laterBreach
			laterBreach = min(laterBreach, x.perPod)
		case x.ok:
			keep = keep || x.perPod > laterOK
			laterOK = max(laterOK, x.perPod)
		}
		if !keep {
			continue
		}
		ss := SnapshotSample{At: x.at.UnixMilli(), PerPod: x.perPod, Rate: x.rate, OK: x.ok, Breach: x.breach}
		if x.ok {
			// Only a met objective's latency is read again (explore), to
			// the microsecond.
			ss.Latency = math.Round(x.latency*1e6) / 1e6
		}
		s.Samples = append(s.Samples, ss)
	}
	slices.Reverse(s.Samples)
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
		e.samples = append(e.samples, sample{at: time.UnixMilli(x.At), perPod: x.PerPod, rate: x.Rate, latency: x.Latency, ok: x.OK, breach: x.Breach})
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
