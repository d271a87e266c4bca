package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/pennyhq/penny/agent/core"
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
	cc := core.Config{Interval: c.Interval}
	return cc.Validate()
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := core.Start(ctx, core.Config{Interval: cfg.Interval, Listen: cfg.Listen, BPFStats: cfg.BPFStats, Logger: log},
		func(err error) {
			log.Error("metrics server stopped", "err", err)
			cancel()
		})
	if err != nil {
		return err
	}
	defer c.Close()
	sample := c.Sample

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
