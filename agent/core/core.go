package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/nodemetrics"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
)

// Config configures the agent core.
type Config struct {
	// Interval between samples.
	Interval time.Duration
	// Listen, when set, is the address /metrics and /healthz are served on.
	Listen string
	// BPFStats turns on the kernel's run time accounting of the programs
	// and exports it on /metrics.
	BPFStats bool
	// SkipRequests turns request counting off (probe.Config).
	SkipRequests bool
	Logger       *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the interval.
func (c *Config) Validate() error {
	if c.Interval < 100*time.Millisecond {
		return fmt.Errorf("interval %s is too short: at least 100ms", c.Interval)
	}
	if c.Interval > time.Hour {
		return fmt.Errorf("interval %s is too long: at most 1h", c.Interval)
	}
	return nil
}

// Core is a running agent core.
type Core struct {
	// Registry holds the agent's metrics; modes add their own.
	Registry *prometheus.Registry

	cfg      Config
	smp      *sampler.Sampler
	probes   *probe.Probes
	closers  []io.Closer
	duration prometheus.Histogram
	started  time.Time
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Start loads the programs, starts the sampler and, with Listen, serves
// the metrics. onServeError is called if the metrics server fails.
func Start(ctx context.Context, cfg Config, onServeError func(error)) (_ *Core, err error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	c := &Core{cfg: cfg, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	var lis net.Listener
	if cfg.Listen != "" {
		// Bind before loading anything, so a busy port fails fast.
		if lis, err = nodemetrics.Listen(ctx, cfg.Listen); err != nil {
			return nil, err
		}
		c.closers = append(c.closers, lis)
	}
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		return nil, err
	}
	log.Debug("cgroup layout", "mode", layout.Mode, "v2", layout.V2, "memory", layout.Memory)
	if c.probes, err = probe.Load(ctx, probe.Config{CgroupV2: layout.V2, SkipRequests: cfg.SkipRequests, Logger: log}); err != nil {
		return nil, err
	}
	var stats func() ([]probe.ProgramStat, error)
	if cfg.BPFStats {
		closer, err := probe.EnableStats()
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, closer)
		stats = c.probes.ProgramStats
	}
	if c.smp, err = sampler.New(sampler.Config{Layout: layout, HitRatio: c.probes.HitRatio, Logger: log}, c.probes); err != nil {
		return nil, err
	}
	if err := c.smp.Start(ctx); err != nil {
		return nil, err
	}
	c.started = time.Now()
	c.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "penny_agent_sample_duration_seconds",
		Help:    "Time to read the eBPF maps and compute one sample.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
	})
	c.Registry.MustRegister(nodemetrics.NewCollector(c.smp.Latest, stats, log), c.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if lis != nil {
		sctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := nodemetrics.Serve(sctx, lis, nodemetrics.Handler(c.Registry, c.healthy), log); err != nil && onServeError != nil {
				onServeError(err)
			}
		}()
	}
	return c, nil
}

// Probes are the loaded programs and their maps.
func (c *Core) Probes() *probe.Probes { return c.probes }

// healthy fails when no sample was taken for three intervals.
func (c *Core) healthy() error {
	limit := 3*c.cfg.Interval + 2*time.Second
	last := c.smp.Latest()
	if last == nil {
		if time.Since(c.started) > limit {
			return errors.New("no sample yet")
		}
		return nil
	}
	if age := time.Since(last.Time); age > limit {
		return fmt.Errorf("last sample is %s old", age.Round(time.Millisecond))
	}
	return nil
}

// Sample takes a sample.
func (c *Core) Sample() (*sampler.Sample, error) {
	t := time.Now()
	s, err := c.smp.Sample()
	c.duration.Observe(time.Since(t).Seconds())
	return s, err
}

// Close stops serving and unloads the programs.
func (c *Core) Close() error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		if err := c.closers[i].Close(); !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if c.smp != nil {
		c.smp.Close()
	}
	if c.probes != nil {
		errs = append(errs, c.probes.Close())
	}
	return errors.Join(errs...)
}
