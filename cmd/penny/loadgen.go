//go:build !agentonly

package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/pennyhq/penny/cmd/penny/loadgen"
)

func init() {
	register("loadgen", command{
		summary: "simulate many agents streaming to an aggregator cluster and measure freshness",
		run:     runLoadgen,
	})
}

func parseLoadgenFlags(args []string, stdout io.Writer) (*loadgen.Config, error) {
	fs := newCmdFlags("loadgen", "Simulates many agents streaming to an aggregator cluster, then prints "+
		"how fresh the replicas' reads were: the time from a sample to when every replica can read it.",
		"--aggregator URL[,URL...] [flags]")
	var cfg loadgen.Config
	fs.Var((*urlList)(&cfg.URLs), "aggregator", "aggregator replica `URLs`, comma separated, repeatable (required)")
	fs.IntVar(&cfg.Agents, "agents", 500, "simulated agents (nodes)")
	fs.IntVar(&cfg.Containers, "containers", 100, "cgroups per agent")
	fs.DurationVar(&cfg.Interval, "interval", time.Second, "sampling interval of every agent")
	fs.DurationVar(&cfg.Warmup, "warmup", 10*time.Second, "time before measuring")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "measurement window")
	fs.IntVar(&cfg.ProbesPerInterval, "probes", loadgen.DefaultProbesPerInterval, "samples per interval followed until every replica reads them")
	if err := fs.parse(args, stdout); err != nil {
		return nil, err
	}
	if len(cfg.URLs) == 0 {
		return nil, usageErrorf("--aggregator is required")
	}
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	return &cfg, nil
}

func runLoadgen(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cfg, err := parseLoadgenFlags(args, stdout)
	if err != nil {
		return err
	}
	cfg.Logger = log
	r, err := loadgen.Run(ctx, *cfg)
	if err != nil {
		return err
	}
	loadgen.PrintTable(stdout, []*loadgen.Result{r})
	return nil
}
