package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/pennyhq/penny/agent/core"
	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/report"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/agent/trigger"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/kvraft"
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
	// SkipRequests turns request counting off.
	SkipRequests bool
	// ShipOnChange samples out of the interval when a cgroup's RSS moves
	// (package trigger); off by default here, where each sample is a
	// line of the display and its counters count one interval.
	ShipOnChange bool
	// APIListen is the address of the in-process aggregator's API
	// (GET /v1/containers, the KV API); port 0 picks a free one.
	APIListen string
	// DataDir keeps the in-process aggregator's store; a temporary
	// directory, removed at exit, when empty.
	DataDir string
	// NodeName names this host in the store; the hostname by default.
	NodeName string
	// PricingFile is the in-process aggregator's pricing file
	// (docs/pricing.md); empty means OpenCost's default prices.
	PricingFile string
	// PriceCPUCoreHour and PriceMemoryGiBHour, when set, replace the
	// on-demand prices of a CPU core-hour and a GiB-hour of memory, the
	// pricing file's or OpenCost's.
	PriceCPUCoreHour   *float64
	PriceMemoryGiBHour *float64
	// Facts are what the command line says of this host (instance type,
	// region, zone, capacity type), shipped to the in-process aggregator
	// with its capacity.
	Facts nodemeta.Facts
	// CostMemory, HistoryMinuteRetention and HistoryHourRetention set the
	// in-process aggregator's history of costs (package history): what
	// counts as memory usage, and how long minutes and hours are kept;
	// zero values take the defaults.
	CostMemory             cost.MemoryMeasure
	HistoryMinuteRetention time.Duration
	HistoryHourRetention   time.Duration
}

// DefaultAPIListen is the in-process aggregator's API address unless
// Config.APIListen says otherwise: loopback, a free port.
const DefaultAPIListen = "127.0.0.1:0"

// Complete fills in the defaults: APIListen.
func (c *Config) Complete() {
	if c.APIListen == "" {
		c.APIListen = DefaultAPIListen
	}
}

// Validate checks the config: the interval's bounds are the agent's, and
// prices are zero or more, and the facts.
func (c *Config) Validate() error {
	cc := core.Config{Interval: c.Interval}
	var errs []error
	if err := cc.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range []struct {
		flag string
		v    *float64
	}{{"--price-cpu-core-hour", c.PriceCPUCoreHour}, {"--price-memory-gib-hour", c.PriceMemoryGiBHour}} {
		if p.v != nil && !(*p.v >= 0 && *p.v <= math.MaxFloat64) {
			errs = append(errs, fmt.Errorf("%s %v: a price is zero or more", p.flag, *p.v))
		}
	}
	if err := c.Facts.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("node facts: %w", err))
	}
	hc := c.history()
	hc.Complete()
	if err := hc.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// history is the in-process aggregator's history settings.
func (c *Config) history() history.Config {
	return history.Config{Memory: c.CostMemory, MinuteRetention: c.HistoryMinuteRetention, HourRetention: c.HistoryHourRetention}
}

// pricing is the in-process aggregator's pricing.
func (c *Config) pricing() pricing.Config {
	return pricing.Config{Path: c.PricingFile,
		Overrides: pricing.Overrides{CPUCoreHour: c.PriceCPUCoreHour, RAMGiBHour: c.PriceMemoryGiBHour}}
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(a), min: h.min}
}

func (h minLevel) WithGroup(g string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(g), min: h.min}
}

// IO are the streams Run talks to.
type IO struct {
	Out io.Writer
	// In is read for the q key when both it and Out are terminals.
	In *os.File
}

// Run loads the programs, starts a single-member aggregator in the process
// and ships every sample to it over loopback (the same path as a cluster's
// agents), and prints samples until ctx is done, or once.
func Run(ctx context.Context, cfg Config, stdio IO, log *slog.Logger) error {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Below the command itself, log what matters only: the agent's, the
	// store's and the shipper's chatter would scroll the live table away.
	quiet := slog.New(minLevel{Handler: log.Handler(), min: slog.LevelWarn})

	dir := cfg.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "penny-local-")
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	srv, err := server.Start(ctx, server.Config{
		Store: kvraft.Config{ID: 1, DataDir: dir, TickInterval: 20 * time.Millisecond,
			InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}}},
		SingleMember: true, Listen: cfg.APIListen, RequestTimeout: 5 * time.Second, ShutdownGrace: time.Second,
		Pricing: cfg.pricing(), History: cfg.history(), Logger: quiet,
	})
	if err != nil {
		return fmt.Errorf("start the local aggregator: %w", err)
	}
	defer srv.Stop()
	log.Debug("local aggregator", "api", "http://"+srv.Addr.String(), "data_dir", dir)
	price := newPricer(srv.Pricing(), cfg.Facts, cfg.CostMemory, log)

	agent, err := daemon.Start(ctx, daemon.Config{
		Core: core.Config{Interval: cfg.Interval, Listen: cfg.Listen, BPFStats: cfg.BPFStats,
			SkipRequests: cfg.SkipRequests, Logger: quiet},
		Shipper: shipper.Config{URLs: []string{"http://" + srv.Addr.String()}, Logger: quiet,
			BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second},
		NodeName: cfg.NodeName,
		Facts:    cfg.Facts,
		Trigger:  trigger.Config{Disabled: !cfg.ShipOnChange},
	})
	if err != nil {
		return err
	}
	defer agent.Close()

	if cfg.Once {
		s, err := agent.Next(ctx)
		if err != nil {
			return err
		}
		if cfg.JSON {
			return report.WriteJSON(stdio.Out, s, price)
		}
		w, _ := termSize(stdio.Out)
		return report.Table(stdio.Out, s, w, 0, price)
	}

	var show func(*sampler.Sample) error
	switch {
	case cfg.JSON:
		show = func(s *sampler.Sample) error { return report.WriteJSON(stdio.Out, s, price) }
	case isTerminal(stdio.Out):
		live, err := startLive(stdio, cancel, price)
		if err != nil {
			return err
		}
		defer live.stop()
		show = live.render
	default:
		if err := report.PlainHeader(stdio.Out); err != nil {
			return err
		}
		show = func(s *sampler.Sample) error { return report.Plain(stdio.Out, s, price) }
	}
	for {
		s, err := agent.Next(ctx)
		if err != nil {
			return err
		}
		if err := show(s); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
}
