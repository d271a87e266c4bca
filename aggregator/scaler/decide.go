package scaler

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Windows of what an Evaluator remembers.
const (
	// CapacityWindow is how long an observation teaches the per-pod
	// capacity: a workload that changed (a new release) is relearned within
	// it.
	CapacityWindow = 30 * time.Minute
	// TrendWindow is the span the load's trend is fitted over.
	TrendWindow = time.Minute
	// Horizon is how far ahead a rising load is planned for: about what a
	// new pod takes to be scheduled, started and ready.
	Horizon = 30 * time.Second
	// Explore and MaxExplore bound how far past the highest per-pod load
	// that met the objective a decision may plan while no breach is known
	// (see explore): it lets the decision find a cheaper size, faster the
	// further the latency is from the objective.
	Explore    = 0.10
	MaxExplore = 2.0
	// BreachAfter is how many consecutive observations over the objective
	// make a breach: one is noise.
	BreachAfter = 2
	// NoiseSpan is how long misses at a per-pod rate below one at which
	// the objective held must last to count as a breach (at least two
	// observation windows): shorter, they are not the load.
	NoiseSpan = time.Minute
	// MinSlowRequests is how many requests over the objective a window
	// must hold for a miss to count: the 99th percentile of a few hundred
	// requests is one or two slow ones, which is no evidence of load.
	MinSlowRequests = 5
	// maxSamples bounds the memory of one workload (an evaluation every
	// 5 s fills CapacityWindow with 360).
	maxSamples = 4096
)

// The reasons of a decision, as the policy's condition shows them.
const (
	ReasonMissingData  = "MissingData"
	ReasonLearning     = "Learning"
	ReasonIdle         = "Idle"
	ReasonBreached     = "ObjectiveBreached"
	ReasonLoadRising   = "ScaleUpForLoad"
	ReasonScaleDown    = "ScaleDownCheaper"
	ReasonStabilizing  = "StabilizingScaleDown"
	ReasonSteady       = "Steady"
	ReasonUnreachable  = "ObjectiveUnreachable"
	ReasonInvalidInput = "InvalidPolicy"
)

// Where a decision's capacity comes from.
const (
	// CapacityBreach: headroom below the lowest per-pod rate at which
	// the objective broke. The capacity is known.
	CapacityBreach = "Breach"
	// CapacityExploring: past the highest per-pod rate at which the
	// objective held, no breach known yet. The next breach teaches the
	// capacity.
	CapacityExploring = "Exploring"
)

// Observation is what the leader saw of a workload at one evaluation.
type Observation struct {
	At time.Time
	// Replicas is the number of the workload's pods now.
	Replicas int
	// Pods is how many pods' rates RequestsPerSecond sums (terminating
	// pods included while they report); 0 when unknown (Replicas then).
	Pods int
	// RequestsPerSecond is the workload's request rate over its pods; NaN
	// when unknown.
	RequestsPerSecond float64
	// Latency is the objective's metric now, in seconds; NaN when unknown.
	Latency float64
	// CostPerPodHour is what one of its pods costs an hour now; NaN when
	// unknown.
	CostPerPodHour float64
	// SlowRequests is how many of the window's requests took longer than
	// the objective; NaN when unknown (an objective on another metric).
	// A miss with fewer than MinSlowRequests of them is not judged.
	SlowRequests float64
	// Window is the span the latency (and the request rate, unless
	// RateWindow says) was measured over (the pods' window); zero for
	// instantaneous values. For a
	// Window after the number of replicas changed, the latency still
	// shows the load of the size before, and the decision waits for it.
	Window time.Duration
	// RateWindow is the span RequestsPerSecond was measured over, when
	// it is not Window (a shorter one: the rate of a window after the
	// size changed misses the pods that went or came, the latency
	// does not).
	RateWindow time.Duration
}

// rateWindow is the span of the request rate: RateWindow, else Window.
func (o Observation) rateWindow() time.Duration {
	if o.RateWindow > 0 {
		return o.RateWindow
	}
	return o.Window
}

// Decision is the replica count an evaluation decided, with its inputs
// and the reason, for the policy's status.
type Decision struct {
	Replicas int
	Reason   string
	Message  string
	// CapacityPerPod is the request rate per pod planned for; 0 while it
	// is not known.
	CapacityPerPod float64
	// CapacitySource says where CapacityPerPod comes from: CapacityBreach
	// or CapacityExploring; "" while it is not known.
	CapacitySource string
	// ForecastRequestsPerSecond is the load planned for.
	ForecastRequestsPerSecond float64
	// CostPer1kRequests is the cost of 1,000 requests now, and at the
	// decided size at the current load; NaN when unknown.
	CostPer1kRequests, DecidedCostPer1kRequests float64
}

type sample struct {
	at      time.Time
	perPod  float64 // requests per second per pod
	rate    float64 // requests per second, total
	latency float64 // the objective's metric, seconds
	ok      bool    // the objective held
	breach  bool    // part of a confirmed breach
	pods    int     // how many pods the rate summed then (liveRate)
}

type proposal struct {
	at       time.Time
	replicas int
}

// Evaluator decides for one workload, one observation at a time, from
// what it has observed: the per-pod request rate at which the objective
// held and broke, the current load and its trend. It is not safe for
// concurrent use; the leader keeps one per policy.
type Evaluator struct {
	samples   []sample
	proposals []proposal
	breaches  int // consecutive observations over the objective
	// replicas is the size of the last observation, changed when it
	// last differed from the one before.
	replicas int
	changed  time.Time
	// missSince is when the current run of misses began.
	missSince time.Time
}

// Decide evaluates the policy p (completed and valid) on o.
func (e *Evaluator) Decide(p Policy, o Observation) Decision {
	n := o.Replicas
	d := Decision{CostPer1kRequests: math.NaN(), DecidedCostPer1kRequests: math.NaN()}
	if err := p.Validate(); err != nil {
		d.Replicas, d.Reason, d.Message = clamp(n, p.MinReplicas, max(p.MinReplicas, p.MaxReplicas)), ReasonInvalidInput, err.Error()
		return d
	}
	if n < 1 || math.IsNaN(o.RequestsPerSecond) || o.RequestsPerSecond < 0 || math.IsNaN(o.Latency) {
		d.Replicas = clamp(n, p.MinReplicas, p.MaxReplicas)
		d.Reason = ReasonMissingData
		d.Message = fmt.Sprintf("no request rate or %s for the workload's %d pods yet: keeping %d", p.Objective.Metric, n, d.Replicas)
		return d
	}
	ob := e.observe(p, o)
	settling, breached, rate := ob.settling, ob.breached, ob.rate
	if o.CostPerPodHour > 0 && rate > 0 {
		d.CostPer1kRequests = costPer1k(n, o.CostPerPodHour, rate)
	}
	// The window's rate is its mean: the load at its middle, half a
	// window behind now on a trend.
	d.ForecastRequestsPerSecond = max(rate, rate+e.slope(o.At)*(Horizon+o.rateWindow()/2).Seconds())
	// A rising load explores half as far past the per-pod rate the pods
	// have shown they hold: a wrong guess costs most while the load
	// climbs (the misses last until new pods serve).
	rising := d.ForecastRequestsPerSecond > rate*(1+Explore)
	var explored bool
	d.CapacityPerPod, explored = e.capacity(p, rising)
	switch {
	case d.CapacityPerPod == 0:
	case explored:
		d.CapacitySource = CapacityExploring
	default:
		d.CapacitySource = CapacityBreach
	}

	var want int
	switch {
	case rate == 0 && !breached:
		want, d.Reason = p.MinReplicas, ReasonIdle
		d.Message = "no requests: the fewest replicas"
	case d.CapacityPerPod == 0:
		want, d.Reason = n, ReasonLearning
		d.Message = "the per-pod rate at which the objective holds is not known yet"
		if breached {
			want, d.Reason = n+1, ReasonBreached
			d.Message = fmt.Sprintf("%s %.3gs over the objective %.3gs", p.Objective.Metric, o.Latency, p.Objective.Max)
			if settling {
				want = n
				d.Message += e.waiting(o)
			}
		}
	default:
		want = int(math.Ceil(d.ForecastRequestsPerSecond / d.CapacityPerPod))
		switch {
		case breached && want <= n:
			want, d.Reason = n+1, ReasonBreached
			d.Message = fmt.Sprintf("%s %.3gs over the objective %.3gs at %.3g req/s per pod", p.Objective.Metric,
				o.Latency, p.Objective.Max, rate/float64(n))
			if settling {
				// The latency still shows the size before the last change:
				// one more pod now would be one too many once it shows.
				want = n
				d.Message += e.waiting(o)
			}
		case breached:
			d.Reason = ReasonBreached
			d.Message = fmt.Sprintf("%s %.3gs over the objective %.3gs: %.4g req/s needs %d pods of %.3g req/s",
				p.Objective.Metric, o.Latency, p.Objective.Max, d.ForecastRequestsPerSecond, want, d.CapacityPerPod)
		case want > n:
			d.Reason = ReasonLoadRising
			d.Message = fmt.Sprintf("%.4g req/s expected within %s needs %d pods of %.3g req/s", d.ForecastRequestsPerSecond,
				Horizon, want, d.CapacityPerPod)
			if rising && explored {
				d.Message += " (exploring half as far while the load rises)"
			}
		case want < n:
			d.Reason = ReasonScaleDown
			d.Message = fmt.Sprintf("%.4g req/s fits %d pods of %.3g req/s with the objective met", d.ForecastRequestsPerSecond,
				want, d.CapacityPerPod)
		default:
			d.Reason = ReasonSteady
			d.Message = fmt.Sprintf("%.4g req/s on %d pods of %.3g req/s", d.ForecastRequestsPerSecond, n, d.CapacityPerPod)
		}
	}
	if ob.noise != "" {
		d.Message += "; " + ob.noise
	}
	if want < 1 {
		want = 1
	}
	if want > p.MaxReplicas && (breached || d.Reason == ReasonLoadRising) {
		d.Reason = ReasonUnreachable
		d.Message = fmt.Sprintf("needs %d replicas, maxReplicas is %d: %s", want, p.MaxReplicas, d.Message)
	}
	want = clamp(want, p.MinReplicas, p.MaxReplicas)

	// Down only when every recommendation of the stabilization window
	// allowed it, to the highest of them (as the HPA does).
	e.proposals = append(e.proposals, proposal{o.At, want})
	cut := o.At.Add(-p.Behavior.ScaleDownStabilization)
	e.proposals = slices.DeleteFunc(e.proposals, func(x proposal) bool { return x.at.Before(cut) })
	if want < n {
		hold := want
		for _, x := range e.proposals {
			hold = max(hold, x.replicas)
		}
		if hold > want {
			d.Reason = ReasonStabilizing
			d.Message = fmt.Sprintf("%s; holding %d for the stabilization window (%s)", d.Message, min(hold, n),
				p.Behavior.ScaleDownStabilization)
			want = min(hold, n)
		}
	}
	// Never faster than the behaviour allows.
	want = min(want, n+p.Behavior.ScaleUpStep)
	want = max(want, n-p.Behavior.ScaleDownStep)
	d.Replicas = want
	if o.CostPerPodHour > 0 && rate > 0 {
		d.DecidedCostPer1kRequests = costPer1k(want, o.CostPerPodHour, rate)
	}
	return d
}

// waiting says why a breach adds no replica yet.
func (e *Evaluator) waiting(o Observation) string {
	return fmt.Sprintf("; waiting for the change to %d replicas %s ago to show over the %s window", o.Replicas,
		o.At.Sub(e.changed).Round(time.Second), o.Window)
}

// observed is what observe made of an observation.
type observed struct {
	// settling: the observation's window still spans the last change of
	// the number of replicas.
	settling bool
	// breached: the objective broke, confirmed (BreachAfter observations
	// in a row, and not noise).
	breached bool
	// noise says why a miss is not counted as a breach yet; "" otherwise.
	noise string
	// rate is the request rate to decide on: the observation's,
	// corrected for the pods removed within its window (liveRate).
	rate float64
}

// observe records o.
func (e *Evaluator) observe(p Policy, o Observation) observed {
	var r observed
	ok := o.Latency <= p.Objective.Max
	// A miss of a handful of requests is not judged: it neither holds
	// the objective nor breaks it, and teaches nothing.
	judged := ok || !(o.SlowRequests < MinSlowRequests)
	switch {
	case !judged:
		r.noise = fmt.Sprintf("%s %.3gs over the objective, but only %.0f requests of the window over it, fewer than %d: not judged",
			p.Objective.Metric, o.Latency, o.SlowRequests, MinSlowRequests)
	case ok:
		e.breaches, e.missSince = 0, time.Time{}
	default:
		if e.breaches == 0 {
			e.missSince = o.At
		}
		e.breaches++
	}
	if o.Replicas != e.replicas {
		if e.replicas != 0 {
			e.changed = o.At
		}
		e.replicas = o.Replicas
	}
	r.settling = o.Window > 0 && !e.changed.IsZero() && o.At.Sub(e.changed) < o.Window
	r.rate = e.liveRate(o)
	s := sample{at: o.At, perPod: r.rate / float64(o.Replicas), rate: r.rate, latency: o.Latency, ok: ok,
		pods: o.pods()}
	if r.settling {
		// The window's latency answers the per-pod loads of the whole
		// window, before and after the change: a miss is put down to the
		// highest of them, a met objective to the lowest, so that neither
		// teaches a capacity the pods have not shown.
		cut := o.At.Add(-o.Window)
		for i := len(e.samples) - 1; i >= 0 && !e.samples[i].at.Before(cut); i-- {
			if ok {
				s.perPod = min(s.perPod, e.samples[i].perPod)
			} else {
				s.perPod = max(s.perPod, e.samples[i].perPod)
			}
		}
	}
	if judged && !ok && e.breaches >= BreachAfter {
		// A miss at a per-pod rate below one at which the objective held
		// is not the load (a slow neighbour, a pause, a burst of slow
		// requests in the window): it counts once it has lasted.
		held := e.heldMax()
		lasted := o.At.Sub(e.missSince)
		sustain := max(NoiseSpan, 2*o.Window)
		if s.perPod < held && lasted < sustain {
			r.noise = fmt.Sprintf("%s %.3gs over the objective at %.3g req/s per pod, below the %.3g at which it held: "+
				"not the load, unless it lasts %s (%s so far)", p.Objective.Metric, o.Latency, s.perPod, held, sustain,
				lasted.Round(time.Second))
		} else {
			r.breached, s.breach = true, true
			// The observations of the streak belong to the breach.
			for i := len(e.samples) - 1; i >= 0 && !e.samples[i].at.Before(e.missSince); i-- {
				if !e.samples[i].ok {
					e.samples[i].breach = true
				}
			}
		}
	}
	e.samples = append(e.samples, s)
	cut := o.At.Add(-CapacityWindow)
	i := 0
	for i < len(e.samples) && e.samples[i].at.Before(cut) {
		i++
	}
	if len(e.samples)-i > maxSamples {
		i = len(e.samples) - maxSamples
	}
	e.samples = slices.Delete(e.samples, 0, i)
	return r
}

// liveRate is o's request rate corrected for the pods removed within its
// window. A window's rate sums the pods alive now, so the share of the
// load that pods since removed served is missing from it: a third of the
// window's requests for the part of it before 3 -> 2. Taken as it is, the
// load seems to fall after each scale-down, the trend turns down and the
// next decision scales down again. With the number of pods each
// observation of the window summed (a terminating pod counts while it
// reports: the Deployment's replicas drop before its pods go), and the
// load taken as steady over it, the pods summed now served min(1,
// now/then) of each part.
func (e *Evaluator) liveRate(o Observation) float64 {
	w := o.rateWindow()
	if w <= 0 {
		return o.RequestsPerSecond
	}
	share, parts := 1.0, 1.0 // this observation's part, served whole
	for i := len(e.samples) - 1; i >= 0 && o.At.Sub(e.samples[i].at) < w; i-- {
		if n := e.samples[i].pods; n > 0 {
			share += min(1, float64(o.pods())/float64(n))
			parts++
		}
	}
	return o.RequestsPerSecond * parts / share
}

// pods is how many pods the rate sums: Pods, else Replicas.
func (o Observation) pods() int {
	if o.Pods > 0 {
		return o.Pods
	}
	return o.Replicas
}

// heldMax is the highest per-pod rate at which the objective held within
// the capacity window; 0 when it never did.
func (e *Evaluator) heldMax() float64 {
	held := 0.0
	for _, s := range e.samples {
		if s.ok {
			held = max(held, s.perPod)
		}
	}
	return held
}

// capacity is the request rate per pod to plan for: headroom times the
// lowest per-pod rate at which the objective broke; while none broke, past
// the highest at which it held (explored: see explore), by the square root
// of that factor while the load rises. Zero when neither is known.
func (e *Evaluator) capacity(p Policy, rising bool) (float64, bool) {
	breachMin, okMax, okLat := math.Inf(1), 0.0, 0.0
	for _, s := range e.samples {
		switch {
		case s.breach && s.perPod > 0:
			breachMin = min(breachMin, s.perPod)
		case s.ok && s.perPod > okMax:
			okMax, okLat = s.perPod, s.latency
		}
	}
	if !math.IsInf(breachMin, 1) {
		return breachMin * p.Behavior.Headroom, false
	}
	f := explore(okLat, p.Objective.Max)
	if rising {
		f = math.Sqrt(f)
	}
	return okMax * f, true
}

// explore is how far past the highest per-pod rate that met the objective
// a decision plans while no breach is known: the square root of the
// latency's headroom at that rate (a pod at a quarter of the objective
// may take twice the load), between 1+Explore and MaxExplore. The
// highest rate that held is a lower bound of the capacity, not an
// estimate: planning just past it keeps the pods where they are and the
// capacity is never learned.
func explore(latency, objective float64) float64 {
	f := 1 + Explore
	if latency > 0 {
		f = math.Sqrt(objective / latency)
	}
	return min(max(f, 1+Explore), MaxExplore)
}

// slope is the trend of the total request rate, in requests per second
// per second (least squares): over TrendWindow, or over its last third
// when that rises faster. At the bottom of a V the minute's fit is flat
// while the load already climbs; the shorter fit sees it a few
// evaluations in.
func (e *Evaluator) slope(now time.Time) float64 {
	return max(e.fit(now, TrendWindow), e.fit(now, TrendWindow/3))
}

// trendT is how many standard errors from zero a fitted slope must be to
// count, by the fit's degrees of freedom (observations less 2): Student's
// t at 97.5%. The rates the leader reads of a steady load vary by about
// 10% from one evaluation to the next, and the slope of a few of them
// is as often a steep climb as not; a climb as steep as the e2e
// scenario's (30 to 120 req/s in a minute) clears it within four
// evaluations.
var trendT = [...]float64{1: 12.71, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}

// tFor is trendT for df degrees of freedom (2 past the table).
func tFor(df int) float64 {
	if df < len(trendT) {
		return trendT[df]
	}
	return 2
}

// fit is the least-squares slope of the total request rate over the span
// before now; 0 with fewer than 3 observations, or when the slope is
// within tFor standard errors of zero (noise, not a trend).
func (e *Evaluator) fit(now time.Time, span time.Duration) float64 {
	cut := now.Add(-span)
	var n, sx, sy, sxx, sxy, syy float64
	for _, s := range e.samples {
		if s.at.Before(cut) {
			continue
		}
		x := s.at.Sub(cut).Seconds()
		n++
		sx, sy, sxx, sxy, syy = sx+x, sy+s.rate, sxx+x*x, sxy+x*s.rate, syy+s.rate*s.rate
	}
	if n < 3 || n*sxx-sx*sx <= 0 {
		return 0
	}
	// Centred sums, and the slope's standard error from the residuals.
	cxx, cxy, cyy := sxx-sx*sx/n, sxy-sx*sy/n, syy-sy*sy/n
	b := cxy / cxx
	resid := max(0, cyy-b*cxy) / (n - 2)
	if se := math.Sqrt(resid / cxx); math.Abs(b) <= tFor(int(n)-2)*se {
		return 0
	}
	return b
}

// costPer1k is the cost of 1,000 requests at rate on n pods of costPerPodHour.
func costPer1k(n int, costPerPodHour, rate float64) float64 {
	return float64(n) * costPerPodHour / (rate * 3600) * 1000
}

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }
