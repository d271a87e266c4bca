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
		c.NodeName = NodeName(h)
	}
	if err := c.Core.Validate(); err != nil {
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

// Agent is a running agent: the core sampling, the shipper streaming.
type Agent struct {
	cfg     Config
	core    *core.Core
	shipper *shipper.Shipper
	ticker  *time.Ticker
	cancel  context.CancelFunc
	shipErr chan error
	shipped chan struct{} // closed when the shipper has returned
}

// Start starts the agent. The shipper runs until Close.
func Start(ctx context.Context, cfg Config) (_ *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Core.Logger
	a := &Agent{cfg: cfg, shipErr: make(chan error, 1), shipped: make(chan struct{})}
	sctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.core, err = core.Start(ctx, cfg.Core, func(err error) {
		log.Error("metrics server stopped", "err", err)
		a.shipErr <- fmt.Errorf("metrics server: %w", err)
	}); err != nil {
		return nil, err
	}
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: cfg.NodeName, Limits: cfg.Shipper.Limits})
	if err != nil {
		return nil, err
	}
	cfg.Shipper.Registerer = a.core.Registry
	if a.shipper, err = shipper.New(cfg.Shipper, enc); err != nil {
		return nil, err
	}
	go func() {
		defer close(a.shipped)
		if err := a.shipper.Run(sctx); !errors.Is(err, context.Canceled) {
			a.shipErr <- fmt.Errorf("shipper: %w", err)
		}
	}()
	a.ticker = time.NewTicker(cfg.Core.Interval)
	log.Info("agent started", "node", cfg.NodeName, "aggregators", strings.Join(cfg.Shipper.URLs, ","),
		"interval", cfg.Core.Interval, "incarnation", fmt.Sprintf("%#x", enc.Incarnation()))
	return a, nil
}

// Next waits for the next interval, samples, queues the sample for the
// aggregators and returns it.
func (a *Agent) Next(ctx context.Context) (*sampler.Sample, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-a.shipErr:
			return nil, err
		case <-a.ticker.C:
		}
		s, err := a.core.Sample()
		if err != nil {
			a.cfg.Core.Logger.Warn("sample failed", "err", err)
			continue
		}
		if err := a.shipper.Submit(Snapshot(s)); err != nil {
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
	if a.shipper != nil {
		<-a.shipped
	}
	if a.core != nil {
		return a.core.Close()
	}
	return nil
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
func Snapshot(s *sampler.Sample) *wire.Snapshot {
	out := &wire.Snapshot{Time: s.Time.UTC(), Interval: s.Interval, Series: make([]wire.SeriesState, 0, len(s.Cgroups))}
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
