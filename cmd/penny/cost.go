//go:build !agentonly

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/pennyhq/penny/cmd/penny/cost"
	"github.com/pennyhq/penny/internal/tlsfiles"
)

func init() {
	register("cost", command{
		summary: "print what namespaces, pods, controllers or tenants cost over a window, from an aggregator",
		run:     runCost,
	})
}

// costConfig is the parsed command line of `penny cost`.
type costConfig struct {
	cost.Config
	JSON, CSV bool
	TLS       tlsfiles.Files
	TokenFile string
	Timeout   time.Duration
}

// costAliases keeps --n working beside the shorthand -n.
func costAliases(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if name == "n" {
		name = "namespace"
	}
	return pflag.NormalizedName(name)
}

func parseCostFlags(args []string, stdout io.Writer) (*costConfig, error) {
	fs := newCmdFlags("cost", "Asks an aggregator's GET /v1/allocation what every container cost over a window, at its node's prices, "+
		"and prints one row per namespace (or pod, controller, label value, tenant, node, container) with its CPU, memory and "+
		"network cost, its efficiency (usage over request) and the nodes' idle cost, then the totals (docs/cost.md).",
		"[--window 24h] [--by namespace|pod|controller|label:KEY|tenant|node|container] [-n NAMESPACE] [--json|--csv] [flags]")
	fs.SetNormalizeFunc(costAliases)
	var c costConfig
	fs.StringVar(&c.URL, "aggregator", "", "aggregator API `URL` (default $PENNY_AGGREGATOR, else "+cost.DefaultURL+")")
	fs.StringVar(&c.Window, "window", "24h", "what to price: 24h, 7d, today, yesterday, week, lastweek, month, an RFC3339 or a Unix pair (start,end)")
	fs.StringVar(&c.By, "by", "namespace", "one row per `WHAT`: namespace, pod, controller, label:KEY, tenant, node or container (the cgroup path outside Kubernetes)")
	fs.StringVarP(&c.Namespace, "namespace", "n", "", "only this `namespace`'s pods (default all); idle is then their share of their nodes' idle")
	fs.StringVar(&c.Filter, "filter", "", "an OpenCost `filter`, e.g. label[team]:\"payments\" (docs/cost.md)")
	fs.BoolVar(&c.ShareIdle, "share-idle", false, "share each node's idle cost into the rows, in proportion to their CPU and memory cost")
	fs.BoolVar(&c.JSON, "json", false, "print GET /v1/allocation's JSON as it came (OpenCost's shape)")
	fs.BoolVar(&c.CSV, "csv", false, "print CSV with a header, one row per allocation, idle included")
	fs.StringVar(&c.TLS.CAFile, "ca-file", "", "CA that signs the aggregator's certificate, for an https URL")
	fs.StringVar(&c.TLS.CertFile, "cert-file", "", "client certificate")
	fs.StringVar(&c.TLS.KeyFile, "key-file", "", "key of the client certificate")
	fs.StringVar(&c.TokenFile, "token-file", "", tokenFileUsage)
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "give up after this long")
	if err := fs.parse(args, stdout); err != nil {
		return nil, err
	}
	c.Complete()
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return &c, nil
}

// Complete fills in the defaults: the URL from $PENNY_AGGREGATOR, else
// cost.DefaultURL.
func (c *costConfig) Complete() {
	if c.URL == "" {
		c.URL = os.Getenv("PENNY_AGGREGATOR")
	}
	c.Config.Complete()
}

// Validate checks the command line.
func (c *costConfig) Validate() error {
	if c.JSON && c.CSV {
		return errors.New("--json and --csv exclude each other")
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", c.Timeout)
	}
	return c.Config.Validate()
}

func runCost(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	cfg, err := parseCostFlags(args, stdout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if cfg.Client, err = apiClient(cfg.TLS, cfg.TokenFile); err != nil {
		return err
	}
	a, err := cost.Fetch(ctx, &cfg.Config)
	if err != nil {
		return err
	}
	switch {
	case cfg.JSON:
		_, err = stdout.Write(a.Body)
		return err
	case cfg.CSV:
		return cost.CSV(stdout, a)
	}
	if len(cost.Rows(&a.Response)) == 0 {
		fmt.Fprintln(os.Stderr, noCost)
		return nil
	}
	return cost.Table(stdout, a, &cfg.Config)
}

// noCost explains an empty answer.
const noCost = "No costs in this window. The history starts with the aggregators: each minute is rolled up shortly after it ends (docs/cost.md)."
