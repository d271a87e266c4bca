package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/pennyhq/penny/cmd/penny/local"
)

func init() {
	register("local", command{
		summary: "watch every cgroup on this host: RSS, page cache, TCP latency (needs root)",
		run:     runLocal,
	})
}

func runLocal(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("penny local", flag.ContinueOnError)
	var cfg local.Config
	fs.DurationVar(&cfg.Interval, "interval", time.Second, "time between samples")
	fs.BoolVar(&cfg.Once, "once", false, "print one sample, taken one interval after start, and exit")
	fs.BoolVar(&cfg.JSON, "json", false, "print each sample as one JSON object per line")
	fs.StringVar(&cfg.Listen, "listen", "", "serve /metrics and /healthz on this address (e.g. :9464)")
	fs.BoolVar(&cfg.BPFStats, "bpf-stats", false, "account eBPF program run time in the kernel and export it on /metrics")
	fs.StringVar(&cfg.APIListen, "api-listen", "127.0.0.1:0", "address of the in-process aggregator's API (GET /v1/containers)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "keep the in-process aggregator's store here (default: a temporary directory)")
	fs.StringVar(&cfg.NodeName, "node-name", "", "this host's name in the store (default: the hostname)")
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fs.Output().Write([]byte("usage: penny local [flags]\n\nShows live per-cgroup resource use measured by eBPF. Run as root.\n\nflags:\n"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return local.Run(ctx, cfg, local.IO{Out: stdout, In: os.Stdin}, log)
}
