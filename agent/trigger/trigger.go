package trigger

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/pennyhq/penny/agent/sampler"
)

// Config configures change-driven sampling.
type Config struct {
	// Disabled samples at the interval only.
	Disabled bool
	// Threshold is the share of a cgroup's RSS (at the last sample) it
	// must move by, either way, to be shipped at once; 0.05 by default.
	Threshold float64
	// MinBytes is the least change that counts, whatever the cgroup's
	// size (1 MiB by default): small cgroups do not wake the agent for a
	// few pages.
	MinBytes int64
	// Floor is the least time between two samples (50 ms by default).
	Floor time.Duration
	// Settle is the longest the agent waits, after a change crossed its
	// limit, for the cgroup's RSS to stop moving before it samples
	// (50 ms by default): an allocation of a few hundred MiB takes tens of
	// milliseconds to fault in. One that takes longer is shipped as it
	// stands, and again once it stops (its watch trips again).
	Settle time.Duration
	// PerSecond is how many samples a second changes may cause on average
	// (2 by default), in bursts of up to Burst (4): what a noisy cgroup
	// can add to the agent's CPU and to the stream.
	PerSecond float64
	Burst     int
	Logger    *slog.Logger
}

// Defaults of Config.
const (
	DefaultThreshold = 0.05
	DefaultMinBytes  = 1 << 20
	DefaultFloor     = 50 * time.Millisecond
	DefaultSettle    = 50 * time.Millisecond
	DefaultPerSecond = 2
	DefaultBurst     = 4
)

// settleStep is how often a settling change is read again.
const settleStep = 5 * time.Millisecond

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.MinBytes == 0 {
		c.MinBytes = DefaultMinBytes
	}
	if c.Floor == 0 {
		c.Floor = DefaultFloor
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.PerSecond == 0 {
		c.PerSecond = DefaultPerSecond
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the bounds.
func (c *Config) Validate() error {
	switch {
	case c.Threshold < 0 || c.Threshold > 10:
		return fmt.Errorf("change threshold %g is out of range: between 0 and 10 (1000%%)", c.Threshold)
	case c.MinBytes < 0:
		return fmt.Errorf("change min bytes %d is negative", c.MinBytes)
	case c.Floor < 10*time.Millisecond || c.Floor > time.Minute:
		return fmt.Errorf("change floor %s is out of range: between 10ms and 1m", c.Floor)
	case c.Settle < 0 || c.Settle > time.Second:
		return fmt.Errorf("change settle %s is out of range: between 0 and 1s", c.Settle)
	case c.PerSecond <= 0 || c.PerSecond > 100:
		return fmt.Errorf("changes per second %g is out of range: above 0, at most 100", c.PerSecond)
	case c.Burst < 1 || c.Burst > 100:
		return fmt.Errorf("change burst %d is out of range: between 1 and 100", c.Burst)
	}
	return nil
}

// Watches are the kernel's RSS watches (probe.Probes).
type Watches interface {
	ArmRSS(limits map[uint64]int64) error
	RSSMoved(id uint64) (int64, bool, error)
	RSSChange() (uint64, error)
}

// Trigger tells the agent when to sample out of its interval.
type Trigger struct {
	cfg     Config
	w       Watches
	budget  *rate.Limiter
	limits  map[uint64]int64 // from the last sample, armed before the next
	last    time.Time        // the last sample's
	changes chan uint64
	done    chan struct{}

	woken   prometheus.Counter
	sampled prometheus.Counter
	skipped *prometheus.CounterVec
}

// New starts reading the watches' wake-ups. It registers its metrics with
// reg when not nil. The reading ends when the watches are closed
// (RSSChange fails).
func New(cfg Config, w Watches, reg prometheus.Registerer) (*Trigger, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Trigger{
		cfg: cfg, w: w, changes: make(chan uint64, 1), done: make(chan struct{}),
		budget: rate.NewLimiter(rate.Limit(cfg.PerSecond), cfg.Burst),
		woken: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_agent_change_wakeups_total",
			Help: "Times a cgroup's RSS moved past its limit between two samples."}),
		sampled: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_agent_change_samples_total",
			Help: "Samples taken and shipped out of the interval because a cgroup's RSS moved."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_agent_change_skipped_total",
			Help: "Changes left to the next interval, by reason (budget: past the samples changes may cause a second)."}, []string{"reason"}),
	}
	t.skipped.WithLabelValues("budget")
	if reg != nil {
		for _, c := range []prometheus.Collector{t.woken, t.sampled, t.skipped} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register trigger metrics: %w", err)
			}
		}
	}
	go t.read()
	return t, nil
}

// read hands the watches' wake-ups to C, one pending at most: the next
// sample re-arms every watch, so the wake-ups before it are one.
func (t *Trigger) read() {
	defer close(t.done)
	for {
		id, err := t.w.RSSChange()
		if err != nil {
			return
		}
		t.woken.Inc()
		select {
		case t.changes <- id:
		default:
		}
	}
}

// C delivers the id of a cgroup whose RSS moved past its limit.
func (t *Trigger) C() <-chan uint64 { return t.changes }

// Done is closed when the watches are closed.
func (t *Trigger) Done() <-chan struct{} { return t.done }

// Take decides whether the change of cgroup id is sampled now: false when
// the budget is spent (the next interval ships it). Otherwise it waits out
// the floor after the last sample and for the change to settle, and
// returns true once the agent should sample. It fails only when ctx ends:
// a watch it cannot read is logged and sampled at once.
func (t *Trigger) Take(ctx context.Context, id uint64) (bool, error) {
	if !t.budget.Allow() {
		t.skipped.WithLabelValues("budget").Inc()
		return false, nil
	}
	if err := sleep(ctx, time.Until(t.last.Add(t.cfg.Floor))); err != nil {
		return false, err
	}
	t.sampled.Inc()
	limit := t.limits[id]
	prev, ok, err := t.w.RSSMoved(id)
	if err != nil || !ok {
		t.unread(id, err)
		return true, nil
	}
	// Settled once it moved less than a quarter of its limit in a step.
	for deadline := time.Now().Add(t.cfg.Settle); time.Now().Before(deadline); {
		if err := sleep(ctx, min(settleStep, time.Until(deadline))); err != nil {
			return false, err
		}
		d, ok, err := t.w.RSSMoved(id)
		if err != nil || !ok {
			t.unread(id, err)
			return true, nil
		}
		if abs(d-prev) < limit/4 {
			break
		}
		prev = d
	}
	return true, nil
}

// unread logs a watch that could not be read while a change settled
// (gone with its cgroup when there is no error).
func (t *Trigger) unread(id uint64, err error) {
	if err != nil {
		t.cfg.Logger.Warn("rss watch unreadable: sampling without waiting for the change to settle", "cgroup_id", id, "err", err)
	}
}

// Arm arms the watches with the limits of the last sample; call it right
// before sampling, so that what changes after the sample read it is
// caught.
func (t *Trigger) Arm() error {
	if len(t.limits) == 0 {
		return nil
	}
	if err := t.w.ArmRSS(t.limits); err != nil {
		return fmt.Errorf("trigger: %w", err)
	}
	return nil
}

// Sampled records the sample just taken: its time, and each cgroup's
// limit for the next arming. After the agent's first sample, which has no
// limits before it, it arms the watches at once.
func (t *Trigger) Sampled(s *sampler.Sample) error {
	first := t.limits == nil
	t.last = s.Time
	if first {
		t.limits = make(map[uint64]int64, len(s.Cgroups))
	}
	clear(t.limits)
	for i := range s.Cgroups {
		c := &s.Cgroups[i]
		if c.ID == 0 || c.Idle {
			continue // idle: gone, listed for its history only
		}
		t.limits[c.ID] = max(int64(float64(max(c.RSSBytes, 0))*t.cfg.Threshold), t.cfg.MinBytes, 1)
	}
	if first {
		return t.Arm()
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
