//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/pennyhq/penny/cmd/penny/scale"
	"github.com/pennyhq/penny/internal/tlsfiles"
)

func init() {
	register("scale", command{
		summary: "scale recommend: per workload, replicas now and recommended, cost per 1k requests on spot and on-demand, and savings",
		run:     runScale,
	})
}

// scaleConfig is the parsed command line of `penny scale recommend`.
type scaleConfig struct {
	scale.Config
	Output    string
	TLS       tlsfiles.Files
	TokenFile string
	Timeout   time.Duration
}

func parseScaleFlags(args []string, stdout io.Writer) (*scaleConfig, error) {
	fs := newCmdFlags("scale recommend", "Asks an aggregator's GET /v1/scaling/recommendations and prints, per workload (a pod's "+
		"controller), its replicas now and what its CostPolicy recommends, its cost per 1,000 requests over the window in all and "+
		"on on-demand and spot nodes, its request latency p99 now against its objective, and the monthly saving of moving it to "+
		"spot and of the recommended replicas (docs/scaling.md).",
		"[-n NAMESPACE] [--window 7d] [-o table|json] [flags]")
	fs.SetNormalizeFunc(costAliases)
	var c scaleConfig
	fs.StringVar(&c.URL, "aggregator", "", "aggregator API `URL` (default $PENNY_AGGREGATOR, else "+scale.DefaultURL+")")
	fs.StringVarP(&c.Namespace, "namespace", "n", "", "only this `namespace`'s workloads (default all: needs reading every namespace)")
	fs.StringVar(&c.Window, "window", "7d", "the history costs and requests cover: 24h, 7d, today, week, an RFC3339 or a Unix pair (start,end)")
	fs.StringVarP(&c.Output, "output", "o", "table", "table, or json: the API's answer as it came")
	fs.StringVar(&c.TLS.CAFile, "ca-file", "", "CA that signs the aggregator's certificate, for an https URL")
	fs.StringVar(&c.TLS.CertFile, "cert-file", "", "client certificate")
	fs.StringVar(&c.TLS.KeyFile, "key-file", "", "key of the client certificate")
	fs.StringVar(&c.TokenFile, "token-file", "", tokenFileUsage)
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "give up after this long")
	switch {
	case len(args) == 0:
		return nil, usageErrorf("a subcommand is needed: recommend")
	case strings.HasPrefix(args[0], "-"):
		// -h, --help, or a flag before the subcommand: errors as every
		// command's.
		if err := fs.parse(args, stdout); err != nil {
			return nil, err
		}
		return nil, usageErrorf("a subcommand is needed before the flags: recommend")
	case args[0] != "recommend":
		return nil, usageErrorf("unknown subcommand %q (recommend)", args[0])
	}
	if err := fs.parse(args[1:], stdout); err != nil {
		return nil, err
	}
	if c.URL == "" {
		c.URL = os.Getenv("PENNY_AGGREGATOR")
	}
	c.Complete()
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return &c, nil
}

// Validate checks the command line.
func (c *scaleConfig) Validate() error {
	if c.Output != "table" && c.Output != "json" {
		return fmt.Errorf("-o %q: want table or json", c.Output)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", c.Timeout)
	}
	return c.Config.Validate()
}

func runScale(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	cfg, err := parseScaleFlags(args, stdout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if cfg.Client, err = apiClient(cfg.TLS, cfg.TokenFile); err != nil {
		return err
	}
	a, err := scale.Fetch(ctx, &cfg.Config)
	if err != nil {
		return err
	}
	if cfg.Output == "json" {
		_, err = stdout.Write(a.Body)
		return err
	}
	return scale.Table(stdout, a)
}
