package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/core"
	"github.com/pennyhq/penny/agent/kube"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/agent/trigger"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/wire"
)

// Config configures the agent.
type Config struct {
	Core    core.Config
	Shipper shipper.Config
	// NodeName names this node in the aggregators, and in Kubernetes; the
	// hostname, lowercased, by default.
	NodeName string
	// Kube, when set, attributes cgroups to the pods of this node: their
	// series carry the pod's metadata (package podmeta). Its NodeName and
	// Logger default to the agent's.
	Kube *kube.Config
	// KubeClient, when set with Kube, is the client the pod and node
	// watchers use instead of one built from Kube (for embedders and
	// tests).
	KubeClient kubernetes.Interface
	// Trigger configures the samples taken out of the interval when a
	// cgroup's RSS moves (package trigger); on unless Disabled.
	Trigger trigger.Config
	// Facts are node facts given on the command line (--instance-type,
	// --region, --zone, --capacity-type); each one set overrides what the
	// Node object says. Their Name and Source are the agent's to set.
	Facts nodemeta.Facts
}

// kubeSyncTimeout bounds the wait for the first list of the node's pods
// at start; after it the agent runs, and the watcher keeps trying.
const kubeSyncTimeout = 30 * time.Second

// Complete fills in the defaults: the node name (an error if the
// hostname cannot be read), the Kubernetes config's node name and logger
// (on a copy: the caller's Kube is not modified), and the defaults of the
// core, the Kubernetes and the shipper configs.
func (c *Config) Complete() error {
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: %w", err)
		}
		c.NodeName = NodeName(h)
	}
	c.Core.Complete()
	if c.Kube != nil {
		k := *c.Kube
		if k.NodeName == "" {
			k.NodeName = c.NodeName
		}
		if k.Logger == nil {
			k.Logger = c.Core.Logger
		}
		k.Complete()
		c.Kube = &k
	}
	c.Shipper.Complete()
	if c.Trigger.Logger == nil {
		c.Trigger.Logger = c.Core.Logger
	}
	c.Trigger.Complete()
	return nil
}

// Validate checks the core, Kubernetes and shipper configs and the facts.
func (c *Config) Validate() error {
	if err := c.Core.Validate(); err != nil {
		return err
	}
	f := c.Facts
	f.Name, f.Source = "", ""
	if err := f.Validate(); err != nil {
		return fmt.Errorf("node facts: %w", err)
	}
	if c.Kube != nil {
		if err := c.Kube.Validate(); err != nil {
			return err
		}
	}
	if err := c.Trigger.Validate(); err != nil {
		return err
	}
	return c.Shipper.Validate()
}

// NodeName turns a hostname into a node name the aggregators accept: a
// lowercase DNS name, other characters replaced by '-'.
func NodeName(host string) string {
	b := []byte(strings.ToLower(host))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-.")
}

// Agent is a running agent: the core sampling, the shipper streaming,
// and, with Kubernetes, the pod watcher attributing.
type Agent struct {
	cfg     Config
	core    *core.Core
	shipper *shipper.Shipper
	kube    *kube.Watcher
	resolve func(path string) map[string]string // nil without Kubernetes
	nodes   *kube.NodeWatcher                   // nil without Kubernetes
	host    nodemeta.Facts                      // the host's capacity
	// facts and meta are the node facts last shipped and their encoding,
	// which stays the same map while they do not change.
	facts   nodemeta.Facts
	meta    map[string]string
	ticker  *time.Ticker
	trigger *trigger.Trigger // nil when changes do not trigger samples
	cancel  context.CancelFunc
	errc    chan error    // the error that stops the agent, for Next
	shipped chan struct{} // closed when the shipper has returned; nil before it runs
}

func newAgent(cfg Config) *Agent {
	return &Agent{cfg: cfg, errc: make(chan error, 1), cancel: func() {}}
}

// fail hands err to Next if it is the first error that stops the agent,
// and only logs it otherwise. It never blocks: the metrics server and the
// shipper call it from goroutines Close waits for, whether or not anyone
// calls Next, and errc has room for one error only.
func (a *Agent) fail(err error) {
	select {
	case a.errc <- err:
	default:
		a.cfg.Core.Logger.Error("agent error after an earlier one", "err", err)
	}
}

// ship runs the shipper's loop, run, until ctx is done.
func (a *Agent) ship(ctx context.Context, run func(context.Context) error) {
	a.shipped = make(chan struct{})
	go func() {
		defer close(a.shipped)
		if err := run(ctx); !errors.Is(err, context.Canceled) {
			a.fail(fmt.Errorf("shipper: %w", err))
		}
	}()
}

// Start starts the agent. The shipper runs until Close.
func Start(ctx context.Context, cfg Config) (_ *Agent, err error) {
	if err := cfg.Complete(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Core.Logger
	a := newAgent(cfg)
	sctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.core, err = core.Start(ctx, cfg.Core, func(err error) {
		log.Error("metrics server stopped", "err", err)
		a.fail(fmt.Errorf("metrics server: %w", err))
	}); err != nil {
		return nil, err
	}
	if a.host, err = HostFacts("/proc", "/sys"); err != nil {
		log.Warn("node capacity unknown: cannot read the host's", "err", err)
	}
	if cfg.Kube != nil {
		if err := a.startKube(ctx, sctx); err != nil {
			return nil, err
		}
	}
	if cfg.Facts.Known() {
		log.Info("node facts from the command line (over any the Node object gives)", "instance_type", cfg.Facts.InstanceType,
			"region", cfg.Facts.Region, "zone", cfg.Facts.Zone, "capacity_type", cfg.Facts.CapacityType)
	}
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: cfg.NodeName, Limits: cfg.Shipper.Limits})
	if err != nil {
		return nil, err
	}
	cfg.Shipper.Registerer = a.core.Registry
	if a.shipper, err = shipper.New(cfg.Shipper, enc); err != nil {
		return nil, err
	}
	a.ship(sctx, a.shipper.Run)
	if !cfg.Trigger.Disabled {
		if a.trigger, err = trigger.New(cfg.Trigger, a.core.Probes(), a.core.Registry); err != nil {
			return nil, err
		}
	}
	a.ticker = time.NewTicker(cfg.Core.Interval)
	log.Info("agent started", "node", cfg.NodeName, "aggregators", strings.Join(cfg.Shipper.URLs, ","),
		"interval", cfg.Core.Interval, "incarnation", fmt.Sprintf("%#x", enc.Incarnation()),
		"kubernetes", cfg.Kube != nil, "ship_on_change", a.trigger != nil)
	return a, nil
}

// startKube starts the pod watcher, which runs until run ends, and waits
// for its first list up to kubeSyncTimeout: past it the agent runs without
// attribution until the API server answers. Only ctx ending fails.
func (a *Agent) startKube(ctx, run context.Context) error {
	kc := *a.cfg.Kube
	kc.Registerer = a.core.Registry
	client := a.cfg.KubeClient
	if client == nil {
		var err error
		if client, err = kube.NewClient(kc); err != nil {
			return fmt.Errorf("kubernetes: %w", err)
		}
	}
	var err error
	if a.kube, err = kube.New(kc, client); err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	a.kube.Start(run)
	a.resolve = a.kube.Resolve
	if a.nodes, err = kube.NewNodeWatcher(kc, client); err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	a.nodes.Start(run)
	wctx, cancel := context.WithTimeout(ctx, kubeSyncTimeout)
	defer cancel()
	if err := a.kube.WaitForSync(wctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		kc.Logger.Warn("pods of this node not listed yet: cgroups stay unattributed until the API server answers",
			"node", kc.NodeName, "waited", kubeSyncTimeout, "err", err)
		return nil
	}
	kc.Logger.Info("pods of this node listed", "node", kc.NodeName, "pods", a.kube.Pods())
	return nil
}

// Next waits for the next interval, or for a change the trigger takes,
// samples, queues the sample for the aggregators and returns it.
func (a *Agent) Next(ctx context.Context) (*sampler.Sample, error) {
	var changes <-chan uint64 // nil without a trigger: never ready
	if a.trigger != nil {
		changes = a.trigger.C()
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-a.errc:
			return nil, err
		case <-a.ticker.C:
		case id := <-changes:
			take, err := a.trigger.Take(ctx, id)
			if err != nil {
				return nil, err
			}
			if !take {
				continue
			}
		}
		if a.trigger != nil {
			if err := a.trigger.Arm(); err != nil {
				a.cfg.Core.Logger.Warn("rss watches not armed: changes wait for the interval", "err", err)
			}
		}
		s, err := a.core.Sample()
		if errors.Is(err, probe.ErrClosed) {
			return nil, err // Close ran
		}
		if err != nil {
			a.cfg.Core.Logger.Warn("sample failed", "err", err)
			continue
		}
		if a.trigger != nil {
			if err := a.trigger.Sampled(s); err != nil {
				a.cfg.Core.Logger.Warn("rss watches not armed: changes wait for the interval", "err", err)
			}
		}
		snap := Snapshot(s, a.resolve)
		snap.Meta = a.nodeMeta()
		if err := a.shipper.Submit(snap); err != nil {
			a.cfg.Core.Logger.Warn("frame not queued", "err", err)
		}
		return s, nil
	}
}

// Close stops the agent and waits for the shipper to hang up.
func (a *Agent) Close() error {
	if a.ticker != nil {
		a.ticker.Stop()
	}
	a.cancel()
	if a.kube != nil {
		a.kube.Close()
	}
	if a.nodes != nil {
		a.nodes.Close()
	}
	if a.shipped != nil {
		<-a.shipped
	}
	if a.core != nil {
		return a.core.Close()
	}
	return nil
}

// nodeMeta returns the agent metadata of the node's current facts: the
// same map as long as they do not change, so that the encoder sends them
// in keyframes and when they change only.
func (a *Agent) nodeMeta() map[string]string {
	var kf *nodemeta.Facts
	if a.nodes != nil {
		if f, ok := a.nodes.Facts(); ok {
			kf = &f
		}
	}
	f := NodeFacts(a.cfg.NodeName, a.cfg.Facts, kf, a.host)
	if a.meta == nil || f != a.facts {
		a.facts, a.meta = f, nil
		if f.Known() {
			a.meta = nodemeta.Encode(&f)
		}
	}
	return a.meta
}

// Run samples and ships until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	a, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	for {
		if _, err := a.Next(ctx); err != nil {
			return err
		}
	}
}

// Snapshot converts a sample into the wire format's absolute state:
// gauges, and counters and histograms cumulative since the agent started.
// resolve, when not nil, gives each series' metadata from its cgroup path
// (kube.Watcher.Resolve); the maps it returns are shared, not copied.
func Snapshot(s *sampler.Sample, resolve func(path string) map[string]string) *wire.Snapshot {
	out := &wire.Snapshot{Time: s.Time.UTC(), Interval: s.Interval, Series: make([]wire.SeriesState, 0, len(s.Cgroups))}
	for i := range s.Cgroups {
		c := &s.Cgroups[i]
		t := &c.Totals
		var meta map[string]string
		if resolve != nil {
			meta = resolve(c.Path)
		}
		out.Series = append(out.Series, wire.SeriesState{
			Path: c.Path, ID: c.ID, Meta: meta,
			Values: wire.Values{
				Processes: int64(c.Processes), RSSBytes: max(c.RSSBytes, 0), PageCacheBytes: max(c.PageCacheBytes, 0),
				PageCacheAddedBytes: t.PageCacheAddedBytes, PageCacheEvictedBytes: t.PageCacheEvictedBytes,
				PageCacheAccesses: t.PageCacheAccesses, PageCacheMisses: t.PageCacheMisses,
				Retransmits: t.Retransmits, RxBytes: t.RxBytes, TxBytes: t.TxBytes,
				RxPackets: t.RxPackets, TxPackets: t.TxPackets,
				SRTT: wire.Hist(t.SRTT), Connect: wire.Hist(t.Connect),
				CPUUsageUsec: t.CPUUsageUsec, CPUPeriods: t.CPUPeriods, CPUThrottledPeriods: t.CPUThrottledPeriods,
				CPUThrottledUsec: t.CPUThrottledUsec, PressureKnown: known(c.PressureKnown),
				CPUPressureSomeUsec: t.Pressure[cgroupfs.PressureCPU].Some, CPUPressureFullUsec: t.Pressure[cgroupfs.PressureCPU].Full,
				MemoryPressureSomeUsec: t.Pressure[cgroupfs.PressureMemory].Some, MemoryPressureFullUsec: t.Pressure[cgroupfs.PressureMemory].Full,
				IOPressureSomeUsec: t.Pressure[cgroupfs.PressureIO].Some, IOPressureFullUsec: t.Pressure[cgroupfs.PressureIO].Full,
				MemoryWorkingSetBytes: max(c.MemoryWorkingSetBytes, 0),
				TxLoopbackBytes:       t.TxClassBytes[probe.TxLoopback], TxClusterBytes: t.TxClassBytes[probe.TxCluster],
				TxInternetBytes: t.TxClassBytes[probe.TxInternet],
				// Both latency histograms: the log-linear one, and its log2
				// buckets for aggregators older than key 35 (docs/wire.md).
				Requests: t.Requests, RequestLatency: wire.Hist(t.RequestLatency.Log2()),
				RequestLatencyLogLinear: t.RequestLatency.Wire(),
			},
		})
	}
	return out
}

// known is the wire's pressure flag.
func known(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
