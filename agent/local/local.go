package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/export"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/report"
	"github.com/pennyhq/penny/agent/sampler"
)

// Config is the configuration of `penny local`.
type Config struct {
	// Interval between samples.
	Interval time.Duration
	// Once prints one sample, taken one interval after start, and exits.
	Once bool
	// JSON prints each sample as one JSON object per line.
	JSON bool
	// Listen, when set, is the address /metrics and /healthz are served on.
	Listen string
	// BPFStats turns on the kernel's run time accounting of the programs
	// and exports it on /metrics.
	BPFStats bool
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Interval < 100*time.Millisecond {
		return fmt.Errorf("interval %s is too short: at least 100ms", c.Interval)
	}
	if c.Interval > time.Hour {
		return fmt.Errorf("interval %s is too long: at most 1h", c.Interval)
	}
	return nil
}

// IO are the streams Run talks to.
type IO struct {
	Out io.Writer
	// In is read for the q key when both it and Out are terminals.
	In *os.File
}

// Run loads the programs and prints samples until ctx is done, or once.
func Run(ctx context.Context, cfg Config, stdio IO, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		return err
	}
	log.Debug("cgroup layout", "mode", layout.Mode, "v2", layout.V2, "memory", layout.Memory)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: stops the metrics server

	var lis net.Listener
	if cfg.Listen != "" {
		// Bind before loading anything, so a busy port fails fast.
		l, err := export.Listen(ctx, cfg.Listen)
		if err != nil {
			return err
		}
		lis = l
		defer l.Close()
	}

	probes, err := probe.Load(ctx, probe.Config{CgroupV2: layout.V2, Logger: log})
	if err != nil {
		return err
	}
	defer probes.Close()
	var stats func() ([]probe.ProgramStat, error)
	if cfg.BPFStats {
		closer, err := probe.EnableStats()
		if err != nil {
			return err
		}
		defer closer.Close()
		stats = probes.ProgramStats
	}

	smp, err := sampler.New(sampler.Config{Layout: layout, HitRatio: probes.HitRatio, Logger: log}, probes)
	if err != nil {
		return err
	}
	if err := smp.Start(ctx); err != nil {
		return err
	}
	started := time.Now()

	sampleDuration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "penny_agent_sample_duration_seconds",
		Help:    "Time to read the eBPF maps and compute one sample.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
	})
	if lis != nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(
			export.NewCollector(smp.Latest, stats, log),
			sampleDuration,
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
		healthy := func() error {
			last := smp.Latest()
			limit := 3*cfg.Interval + 2*time.Second
			if last == nil {
				if time.Since(started) > limit {
					return errors.New("no sample yet")
				}
				return nil
			}
			if age := time.Since(last.Time); age > limit {
				return fmt.Errorf("last sample is %s old", age.Round(time.Millisecond))
			}
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := export.Serve(ctx, lis, export.Handler(reg, healthy), log); err != nil {
				log.Error("metrics server stopped", "err", err)
				cancel()
			}
		}()
	}

	sample := func() (*sampler.Sample, error) {
		t := time.Now()
		s, err := smp.Sample()
		sampleDuration.Observe(time.Since(t).Seconds())
		return s, err
	}

	if cfg.Once {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.Interval):
		}
		s, err := sample()
		if err != nil {
			return err
		}
		if cfg.JSON {
			return report.WriteJSON(stdio.Out, s)
		}
		w, _ := termSize(stdio.Out)
		return report.Table(stdio.Out, s, w, 0)
	}

	var show func(*sampler.Sample) error
	switch {
	case cfg.JSON:
		show = func(s *sampler.Sample) error { return report.WriteJSON(stdio.Out, s) }
	case isTerminal(stdio.Out):
		live, err := startLive(stdio, cancel)
		if err != nil {
			return err
		}
		defer live.stop()
		show = live.render
	default:
		if err := report.PlainHeader(stdio.Out); err != nil {
			return err
		}
		show = func(s *sampler.Sample) error { return report.Plain(stdio.Out, s) }
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		s, err := sample()
		if err != nil {
			log.Warn("sample failed", "err", err)
			continue
		}
		if err := show(s); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
}
