//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/cmd/penny/local"
)

func init() {
	register("local", command{
		summary: "watch every cgroup on this host: RSS, page cache, TCP latency (needs root)",
		run:     runLocal,
	})
}

func parseLocalFlags(args []string, stdout io.Writer) (*local.Config, error) {
	fs := newCmdFlags("local", "Shows live per-cgroup resource use measured by eBPF: RSS, page cache and TCP latency. Run as root.",
		"[flags]")
	var cfg local.Config
	fs.DurationVar(&cfg.Interval, "interval", time.Second, "time between samples")
	fs.BoolVar(&cfg.Once, "once", false, "print one sample, taken one interval after start, and exit")
	fs.BoolVar(&cfg.JSON, "json", false, "print each sample as one JSON object per line")
	fs.StringVar(&cfg.Listen, "listen", "", "serve /metrics and /healthz on this address (e.g. :9464)")
	fs.BoolVar(&cfg.BPFStats, "bpf-stats", false, "account eBPF program run time in the kernel and export it on /metrics")
	requests := fs.Bool("requests", true, requestsUsage)
	fs.BoolVar(&cfg.ShipOnChange, "ship-on-change", false, "also sample (and print) at once when a cgroup's RSS moves by 5% (at least 1 MiB), as penny agent does by default")
	fs.StringVar(&cfg.APIListen, "api-listen", local.DefaultAPIListen, "address of the in-process aggregator's API (GET /v1/containers)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "keep the in-process aggregator's store here (default a temporary directory)")
	fs.StringVar(&cfg.NodeName, "node-name", "", "this host's name in the store (default the hostname)")
	fs.StringVar(&cfg.PricingFile, "pricing-file", "", "prices of CPU, memory and egress (YAML, docs/pricing.md), reloaded when it changes; "+
		"without it OpenCost's default prices apply")
	var cpuPrice, memPrice float64
	fs.Float64Var(&cpuPrice, "price-cpu-core-hour", 0, fmt.Sprintf("price of an on-demand CPU core-hour, over the pricing file's "+
		"(default the file's, else OpenCost's %v)", pricing.DefaultCPUCoreHour))
	fs.Float64Var(&memPrice, "price-memory-gib-hour", 0, fmt.Sprintf("price of an on-demand GiB-hour of memory, over the pricing file's "+
		"(default the file's, else OpenCost's %v)", pricing.DefaultRAMGiBHour))
	factFlags(fs, &cfg.Facts, false)
	var hist historySettings
	historyFlags(fs, &hist)
	if err := fs.parse(args, stdout); err != nil {
		return nil, err
	}
	hc, err := hist.config()
	if err != nil {
		return nil, usageError{err}
	}
	cfg.CostMemory, cfg.HistoryMinuteRetention, cfg.HistoryHourRetention = hc.Memory, hc.MinuteRetention, hc.HourRetention
	cfg.SkipRequests = !*requests
	if fs.Changed("price-cpu-core-hour") {
		cfg.PriceCPUCoreHour = &cpuPrice
	}
	if fs.Changed("price-memory-gib-hour") {
		cfg.PriceMemoryGiBHour = &memPrice
	}
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	return &cfg, nil
}

func runLocal(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cfg, err := parseLocalFlags(args, stdout)
	if err != nil {
		return err
	}
	return local.Run(ctx, *cfg, local.IO{Out: stdout, In: os.Stdin}, log)
}
