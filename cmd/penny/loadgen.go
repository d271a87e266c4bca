package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/pennyhq/penny/cmd/penny/loadgen"
)

func init() {
	register("loadgen", command{
		summary: "simulate many agents streaming to an aggregator cluster and measure freshness",
		run:     runLoadgen,
	})
}

func runLoadgen(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("penny loadgen", flag.ContinueOnError)
	var cfg loadgen.Config
	fs.Var((*urlList)(&cfg.URLs), "aggregator", "aggregator replica `URLs`, comma separated (required)")
	fs.IntVar(&cfg.Agents, "agents", 500, "simulated agents (nodes)")
	fs.IntVar(&cfg.Containers, "containers", 100, "cgroups per agent")
	fs.DurationVar(&cfg.Interval, "interval", time.Second, "sampling interval of every agent")
	fs.DurationVar(&cfg.Warmup, "warmup", 10*time.Second, "time before measuring")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "measurement window")
	fs.IntVar(&cfg.ProbesPerInterval, "probes", 3, "samples per interval followed until every replica reads them")
	fs.SetOutput(os.Stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(cfg.URLs) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: --aggregator is required", errUsage)
	}
	cfg.Logger = log
	r, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	loadgen.PrintTable(stdout, []*loadgen.Result{r})
	return nil
}
