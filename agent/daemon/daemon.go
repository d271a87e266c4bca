package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pennyhq/penny/agent/core"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/wire"
)

// Config configures the agent.
type Config struct {
	Core    core.Config
	Shipper shipper.Config
	// NodeName names this node in the aggregators; the hostname, lowercased,
	// by default.
	NodeName string
}

// Validate checks the config and fills in the node name.
func (c *Config) Validate() error {
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: %w", err)
		}
		c.NodeName = strings.ToLower(h)
	}
	if err := c.Core.Validate(); err != nil {
		return err
	}
	return c.Shipper.Validate()
}

// Run samples and ships until ctx is done. ship, when set, receives every
// sample after it was queued for shipping (penny local shows them).
func Run(ctx context.Context, cfg Config, show func(*sampler.Sample) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Core.Logger
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := core.Start(ctx, cfg.Core, func(err error) {
		log.Error("metrics server stopped", "err", err)
		cancel()
	})
	if err != nil {
		return err
	}
	defer c.Close()
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: cfg.NodeName, Limits: cfg.Shipper.Limits})
	if err != nil {
		return err
	}
	cfg.Shipper.Registerer = c.Registry
	sh, err := shipper.New(cfg.Shipper, enc)
	if err != nil {
		return err
	}
	shipErr := make(chan error, 1)
	go func() { shipErr <- sh.Run(ctx) }()
	log.Info("agent started", "node", cfg.NodeName, "aggregators", strings.Join(cfg.Shipper.URLs, ","),
		"interval", cfg.Core.Interval, "incarnation", fmt.Sprintf("%#x", enc.Incarnation()))

	t := time.NewTicker(cfg.Core.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-shipErr:
			if errors.Is(err, context.Canceled) {
				return err
			}
			return fmt.Errorf("shipper: %w", err)
		case <-t.C:
		}
		s, err := c.Sample()
		if err != nil {
			log.Warn("sample failed", "err", err)
			continue
		}
		if err := sh.Submit(Snapshot(s)); err != nil {
			log.Warn("frame not queued", "err", err)
		}
		if show != nil {
			if err := show(s); err != nil {
				return err
			}
		}
	}
}

// Snapshot converts a sample into the wire format's absolute state:
// gauges, and counters and histograms cumulative since the agent started.
func Snapshot(s *sampler.Sample) *wire.Snapshot {
	out := &wire.Snapshot{Time: s.Time, Interval: s.Interval, Series: make([]wire.SeriesState, 0, len(s.Cgroups))}
	for i := range s.Cgroups {
		c := &s.Cgroups[i]
		t := &c.Totals
		out.Series = append(out.Series, wire.SeriesState{
			Path: c.Path, ID: c.ID,
			Values: wire.Values{
				Processes: int64(c.Processes), RSSBytes: max(c.RSSBytes, 0), PageCacheBytes: max(c.PageCacheBytes, 0),
				PageCacheAddedBytes: t.PageCacheAddedBytes, PageCacheEvictedBytes: t.PageCacheEvictedBytes,
				PageCacheAccesses: t.PageCacheAccesses, PageCacheMisses: t.PageCacheMisses,
				Retransmits: t.Retransmits, RxBytes: t.RxBytes, TxBytes: t.TxBytes,
				RxPackets: t.RxPackets, TxPackets: t.TxPackets,
				SRTT: wire.Hist(t.SRTT), Connect: wire.Hist(t.Connect),
			},
		})
	}
	return out
}
