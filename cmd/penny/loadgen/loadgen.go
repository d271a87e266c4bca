package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/simnode"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
	"github.com/pennyhq/penny/wire"
)

// Config configures a load run.
type Config struct {
	// URLs are the replicas; agent i streams to URLs[i%len] first.
	URLs       []string
	Agents     int
	Containers int
	Interval   time.Duration
	// Warmup runs before measuring; Duration measures.
	Warmup, Duration time.Duration
	// ProbesPerInterval is how many samples per interval are followed
	// until every replica can read them (3).
	ProbesPerInterval int
	// NoPodMeta sends no pod metadata, as agents outside Kubernetes.
	NoPodMeta bool
	// AgentToken, when set, gives the bearer token each simulated node's
	// agent authenticates with (its per-node identity; nodes are named
	// load-0000, load-0001, ...); ProbeToken is the one the probes read
	// with. Both empty: no authentication.
	AgentToken func(node string) string
	ProbeToken string
	Logger     *slog.Logger
}

// NodeName is the name of simulated node i.
func NodeName(i int) string { return fmt.Sprintf("load-%04d", i) }

// DefaultProbesPerInterval is ProbesPerInterval unless set.
const DefaultProbesPerInterval = 3

// Complete fills in the defaults: ProbesPerInterval and a Logger that
// discards.
func (c *Config) Complete() {
	if c.ProbesPerInterval == 0 {
		c.ProbesPerInterval = DefaultProbesPerInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if len(c.URLs) == 0 || c.Agents < 1 || c.Containers < 1 || c.Interval <= 0 || c.Duration <= 0 || c.Warmup < 0 {
		return errors.New("loadgen: need URLs, agents, containers, an interval and a duration")
	}
	return nil
}

// Result is what a run measured.
type Result struct {
	Agents, Containers int
	Interval, Measured time.Duration
	FramesSent         uint64
	// SeriesPerSecond is the series updates the agents sent per second.
	SeriesPerSecond float64
	// Freshness percentiles: sample time to readable on every replica.
	FreshP50, FreshP99, FreshMax time.Duration
	Probes, LostProbes           int
	// PendingFirst and PendingLast are the frames waiting for an
	// acknowledgement, summed over agents, averaged over the first and the
	// last third of the measurement.
	PendingFirst, PendingLast float64
	PendingMax                int
	Dropped                   float64
	// LateP50 and LateP99 are how long after its sample time a simulated
	// agent had the frame encoded and queued for sending: the generator's
	// own delay, which freshness includes (on a machine it shares with the
	// replicas, mostly waiting for a CPU).
	LateP50, LateP99 time.Duration
	// QueuedP50 and QueuedP99 are freshness from the frame being queued
	// for sending rather than from the sample: the pipeline's part alone
	// (shipping, the aggregators), without the generator's own delay.
	QueuedP50, QueuedP99 time.Duration
}

// Sustained reports whether the cluster kept up: no probe lost, no frame
// dropped, and a backlog that stays within about one frame per agent.
func (r *Result) Sustained() bool {
	return r.LostProbes == 0 && r.Dropped == 0 && r.PendingLast <= float64(r.Agents)
}

type agent struct {
	name string
	node *simnode.Node
	sh   *shipper.Shipper
}

// Run generates the load and measures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	agents := make([]*agent, cfg.Agents)
	// One line per agent connecting would drown the output.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		quiet = cfg.Logger
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range agents {
		name := NodeName(i)
		enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: name})
		if err != nil {
			return nil, err
		}
		urls := append(slices.Clone(cfg.URLs[i%len(cfg.URLs):]), cfg.URLs[:i%len(cfg.URLs)]...)
		sc := shipper.Config{URLs: urls, Logger: quiet}
		if cfg.AgentToken != nil {
			tok := cfg.AgentToken(name)
			sc.Token = func() (string, error) { return tok, nil }
		}
		sh, err := shipper.New(sc, enc)
		if err != nil {
			return nil, err
		}
		agents[i] = &agent{name: name, node: simnode.New(cfg.Containers, uint64(i)+1, 6*time.Hour, false), sh: sh}
		wg.Go(func() { _ = sh.Run(ctx) })
	}

	var sent atomic.Uint64
	var series atomic.Uint64
	var lateMu sync.Mutex
	var late []time.Duration
	probes := make(chan probe, 1024)
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	for i, a := range agents {
		// Stagger the agents over the interval.
		offset := time.Duration(i) * cfg.Interval / time.Duration(len(agents))
		wg.Go(func() {
			a.loop(ctx, cfg, offset, end, func(t time.Time, n int, lateBy time.Duration) {
				if t.Before(measureFrom) {
					return
				}
				sent.Add(1)
				series.Add(uint64(n))
				lateMu.Lock()
				late = append(late, lateBy)
				lateMu.Unlock()
				// Follow a few samples per interval until every
				// replica can read them.
				k := len(agents) / max(cfg.ProbesPerInterval, 1)
				if i%max(k, 1) == 0 {
					select {
					case probes <- probe{node: a.name, at: t, queued: t.Add(lateBy)}:
					default:
					}
				}
			})
		})
	}
	fresh := make(chan [2]time.Duration, 1024) // from the sample, from its queueing
	lost := atomic.Int64{}
	var pwg sync.WaitGroup
	pctx, pcancel := context.WithCancel(ctx)
	pc := probeClient
	if cfg.ProbeToken != "" {
		pc = &http.Client{Timeout: probeClient.Timeout, Transport: bearer{cfg.ProbeToken, http.DefaultTransport}}
	}
	pwg.Go(func() {
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for {
			select {
			case <-pctx.Done():
				return
			case p := <-probes:
				inflight.Go(func() {
					d, dq, err := follow(pctx, pc, cfg.URLs, p)
					if err != nil {
						if pctx.Err() == nil {
							lost.Add(1)
						}
						return
					}
					fresh <- [2]time.Duration{d, dq}
				})
			}
		}
	})
	var freshness, fromQueue []time.Duration
	collectDone := make(chan struct{})
	go func() {
		defer close(collectDone)
		for d := range fresh {
			freshness = append(freshness, d[0])
			fromQueue = append(fromQueue, d[1])
		}
	}()

	// Sample the backlog every interval.
	var pending []int
	ticker := time.NewTicker(cfg.Interval)
	for now := range ticker.C {
		if ctx.Err() != nil {
			break
		}
		if now.After(measureFrom) {
			n := 0
			for _, a := range agents {
				f, _ := a.sh.Pending()
				n += f
			}
			pending = append(pending, n)
		}
		if now.After(end.Add(5 * time.Second)) { // let the last probes finish
			break
		}
	}
	ticker.Stop()
	pcancel()
	pwg.Wait()
	close(fresh)
	<-collectDone
	cancel()

	r := &Result{Agents: cfg.Agents, Containers: cfg.Containers, Interval: cfg.Interval, Measured: cfg.Duration,
		FramesSent: sent.Load(), SeriesPerSecond: float64(series.Load()) / cfg.Duration.Seconds(),
		Probes: len(freshness) + int(lost.Load()), LostProbes: int(lost.Load())}
	r.FreshP50, r.FreshP99, r.FreshMax = percentiles(freshness)
	r.QueuedP50, r.QueuedP99, _ = percentiles(fromQueue)
	lateMu.Lock()
	r.LateP50, r.LateP99, _ = percentiles(late)
	lateMu.Unlock()
	third := max(len(pending)/3, 1)
	avg := func(v []int) float64 {
		if len(v) == 0 {
			return 0
		}
		s := 0
		for _, x := range v {
			s += x
		}
		return float64(s) / float64(len(v))
	}
	r.PendingFirst = avg(pending[:min(third, len(pending))])
	r.PendingLast = avg(pending[max(0, len(pending)-third):])
	if len(pending) > 0 {
		r.PendingMax = slices.Max(pending)
	}
	for _, a := range agents {
		r.Dropped += a.sh.Dropped()
	}
	return r, nil
}

// percentiles sorts ds and returns its median, 99th percentile and
// largest; zeros when empty.
func percentiles(ds []time.Duration) (p50, p99, largest time.Duration) {
	slices.Sort(ds)
	n := len(ds)
	if n == 0 {
		return 0, 0, 0
	}
	return ds[n/2], ds[min(n-1, n*99/100)], ds[n-1]
}

// loop samples at offset into every interval until end, submitting each
// sample to the agent's shipper.
func (a *agent) loop(ctx context.Context, cfg Config, offset time.Duration, end time.Time, sent func(at time.Time, series int, late time.Duration)) {
	next := time.Now().Truncate(cfg.Interval).Add(cfg.Interval + offset)
	for next.Before(end) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		s := a.node.StepAt(next, cfg.Interval)
		if rand.N(3600) == 0 {
			a.node.ReplacePod()
		}
		var resolve func(string) map[string]string
		if !cfg.NoPodMeta {
			resolve = a.node.Resolve
		}
		if err := a.sh.Submit(daemon.Snapshot(s, resolve)); err != nil {
			cfg.Logger.Warn("submit", "agent", a.name, "err", err)
		}
		sent(next, len(s.Cgroups), time.Since(next))
		next = next.Add(cfg.Interval)
	}
}

type probe struct {
	node string
	// at is the sample's time, queued when its frame was queued.
	at, queued time.Time
}

var probeClient = &http.Client{Timeout: 2 * time.Second}

// bearer sends a bearer token with every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// follow polls every replica's copy of a node's agent record until it shows
// a sample at least as new as p, and returns how long after the sample, and
// after its frame was queued, the last replica showed it.
func follow(ctx context.Context, client *http.Client, urls []string, p probe) (fromSample, fromQueued time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var last, lastQueued time.Duration
	for _, u := range urls {
		c := &kvhttp.Client{Endpoint: u, HTTP: client}
		for {
			res, err := c.Get(ctx, model.AgentKey(p.node), kvraft.ReadOptions{Consistency: kvraft.Eventual})
			if err == nil && res.Found {
				if a, err := model.DecodeAgent(res.Value); err == nil && !a.SampleTime().Before(p.at) {
					last, lastQueued = max(last, time.Since(p.at)), max(lastQueued, time.Since(p.queued))
					break
				}
			}
			select {
			case <-ctx.Done():
				return 0, 0, fmt.Errorf("sample of %s at %s never readable on %s", p.node, p.at.Format(time.StampMilli), u)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return last, lastQueued, nil
}
