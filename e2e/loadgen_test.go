//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadPhase is a span of the scaling scenario: the request rate goes
// linearly from From to To requests per second over Dur; Measured phases
// count in the comparison (the others let the policy learn).
type loadPhase struct {
	Dur      time.Duration
	From, To float64
	Measured bool
}

// schedule is a scenario's phases, read by the load driver and the test
// at once: the test may end a phase early (the learning hold, once the
// policy has learned).
type schedule struct {
	mu     sync.Mutex
	phases []loadPhase
}

func newSchedule(phases []loadPhase) *schedule {
	return &schedule{phases: slices.Clone(phases)}
}

// at is the request rate at elapsed, whether that moment is measured,
// and its phase's index; done once every phase has passed.
func (s *schedule) at(elapsed time.Duration) (rate float64, measured bool, phase int, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.phases {
		if elapsed < p.Dur {
			f := float64(elapsed) / float64(p.Dur)
			return p.From + (p.To-p.From)*f, p.Measured, i, false
		}
		elapsed -= p.Dur
	}
	return 0, false, len(s.phases), true
}

// startOf is when phase i starts, from the start of the load.
func (s *schedule) startOf(i int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, p := range s.phases[:i] {
		d += p.Dur
	}
	return d
}

// end ends phase i at elapsed, when that is within it: the phases after
// it start then.
func (s *schedule) end(i int, elapsed time.Duration) {
	start := s.startOf(i)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := elapsed - start; d > 0 && d < s.phases[i].Dur {
		s.phases[i].Dur = d
	}
}

// loadGen sends requests to one Deployment's serving pods at the rate it
// is given, open loop (a slow answer does not slow the sender down), each
// to the next of the pods in turn, as a Service's round robin would, and
// records what the client saw while measuring.
type loadGen struct {
	name      string
	backends  func() []string
	objective time.Duration
	client    *http.Client
	next      atomic.Uint64
	inflight  chan struct{}

	mu        sync.Mutex
	measuring bool
	lat       []time.Duration // answered requests, measured
	errs      int             // failed requests, measured
	lastErr   error
	answered  int // all answered requests
	// last is when the last request was answered, measured or not: the
	// whole run's requests were all answered by then.
	last time.Time
	// byMinute counts the answered requests by the minute they were
	// answered in (Unix seconds of its start).
	byMinute map[int64]int
	// bySecond counts every request, and those that missed the
	// objective (slower, or failed), by the second they ended in.
	bySecond map[int64][2]int
}

func newLoadGen(name string, backends func() []string, objective time.Duration) *loadGen {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	return &loadGen{name: name, backends: backends, objective: objective, inflight: make(chan struct{}, 2000),
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

var errOverloaded = errors.New("load generator: too many requests in flight")

// fire sends one request in the background.
func (g *loadGen) fire(ctx context.Context, wg *sync.WaitGroup) {
	select {
	case g.inflight <- struct{}{}:
	default:
		g.record(0, errOverloaded)
		return
	}
	wg.Go(func() {
		defer func() { <-g.inflight }()
		start := time.Now()
		err := g.get(ctx)
		g.record(time.Since(start), err)
	})
}

// get sends one request; a refused connection (a pod drained between the
// choice and the send) is tried once more on the next pod.
func (g *loadGen) get(ctx context.Context) error {
	var err error
	for range 2 {
		bs := g.backends()
		if len(bs) == 0 {
			return fmt.Errorf("%s: no pod serves", g.name)
		}
		addr := bs[g.next.Add(1)%uint64(len(bs))]
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			return err
		}
		var resp *http.Response
		resp, err = g.client.Do(req)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", addr, resp.Status)
		}
		return nil
	}
	return err
}

func (g *loadGen) record(d time.Duration, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bySecond == nil {
		g.bySecond = map[int64][2]int{}
	}
	sec := time.Now().Unix()
	c := g.bySecond[sec]
	c[0]++
	if err != nil || d > g.objective {
		c[1]++
	}
	g.bySecond[sec] = c
	if err == nil {
		g.answered++
		g.last = time.Now()
		if g.byMinute == nil {
			g.byMinute = map[int64]int{}
		}
		g.byMinute[g.last.Truncate(time.Minute).Unix()]++
	}
	if !g.measuring {
		return
	}
	if err != nil {
		g.errs++
		g.lastErr = err
		return
	}
	g.lat = append(g.lat, d)
}

func (g *loadGen) setMeasuring(on bool) {
	g.mu.Lock()
	g.measuring = on
	g.mu.Unlock()
}

// total is how many requests the whole run answered, measured or not,
// and when the last was.
func (g *loadGen) total() (int, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.answered, g.last
}

// missedSince is the share of the requests that ended since t that
// missed the objective (slower, or failed), and how many ended.
func (g *loadGen) missedSince(t time.Time) (float64, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n, missed int
	for sec, c := range g.bySecond {
		if sec >= t.Unix() {
			n, missed = n+c[0], missed+c[1]
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(missed) / float64(n), n
}

// answeredIn is how many requests were answered in the minute starting at
// m.
func (g *loadGen) answeredIn(m time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byMinute[m.Unix()]
}

// loadResult is what the client saw over the measured phases.
type loadResult struct {
	Answered, Errors, Slow int
	P50, P99               time.Duration
	LastErr                error
}

// SlowShare is the share of the requests that missed the objective: slower
// than it, or failed.
func (r loadResult) SlowShare() float64 {
	if n := r.Answered + r.Errors; n > 0 {
		return float64(r.Slow+r.Errors) / float64(n)
	}
	return 0
}

func (g *loadGen) result() loadResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	lat := slices.Clone(g.lat)
	slices.Sort(lat)
	r := loadResult{Answered: len(lat), Errors: g.errs, LastErr: g.lastErr}
	for _, d := range lat {
		if d > g.objective {
			r.Slow++
		}
	}
	if len(lat) > 0 {
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		r.P50, r.P99 = q(0.5), q(0.99)
	}
	return r
}

// drive sends the schedule's load, from start, to every generator at
// once, until the phases end or ctx is done, switching their measuring
// on and off with the phases.
func drive(ctx context.Context, sched *schedule, start time.Time, gens ...*loadGen) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	credit, was := 0.0, false
	last := start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			rate, measured, _, done := sched.at(now.Sub(start))
			if done {
				for _, g := range gens {
					g.setMeasuring(false)
				}
				return
			}
			if measured != was {
				for _, g := range gens {
					g.setMeasuring(measured)
				}
				was = measured
			}
			credit += rate * now.Sub(last).Seconds()
			last = now
			for ; credit >= 1; credit-- {
				for _, g := range gens {
					g.fire(ctx, &wg)
				}
			}
		}
	}
}
