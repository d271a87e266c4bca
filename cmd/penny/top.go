//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/pennyhq/penny/cmd/penny/top"
	"github.com/pennyhq/penny/internal/tlsfiles"
)

func init() {
	register("top", command{
		summary: "print what pods or namespaces use, from an aggregator (no kubectl needed)",
		run:     runTop,
	})
}

// topConfig is the parsed command line of `penny top`.
type topConfig struct {
	top.Config
	// Resource is pods or namespaces.
	Resource  string
	TLS       tlsfiles.Files
	TokenFile string
	Timeout   time.Duration
}

// topAliases keeps the names Go's flag package knew, --n and --l, working
// beside the shorthands -n and -l.
func topAliases(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "n":
		name = "namespace"
	case "l":
		name = "selector"
	}
	return pflag.NormalizedName(name)
}

func parseTopFlags(args []string, stdout io.Writer) (*topConfig, error) {
	fs := newCmdFlags("top", `Reads the aggregator's gateway (GET /v1/pods, /v1/namespaces) and prints a table. `+
		`Pods sum their containers' bytes and rates and show their worst container's latencies and hit ratio; "-" means no data.`,
		"pods [-n NAMESPACE] [-l SELECTOR] [flags]", "namespaces [-l SELECTOR] [flags]")
	fs.nargs = 1
	fs.SetNormalizeFunc(topAliases)
	var c topConfig
	fs.StringVar(&c.URL, "aggregator", "", "aggregator API `URL` (default $PENNY_AGGREGATOR, else "+top.DefaultURL+")")
	fs.StringVarP(&c.Namespace, "namespace", "n", "", "only this `namespace` (default all namespaces)")
	fs.StringVarP(&c.Selector, "selector", "l", "", "label `selector` over pods, e.g. app=web,tier!=batch")
	fs.StringVar(&c.MetricSelector, "metric-selector", "", "`selector` over containers: container=NAME, node=NODE")
	fs.DurationVar(&c.Window, "window", 30*time.Second, "span that rates, ratios and quantiles cover (0: the agents' last interval)")
	fs.StringVar(&c.Sort, "sort", "name", "order rows by name or, largest first, by cpu, rss, cache, hit, srtt50, srtt99, conn99, rx, tx, cost")
	fs.StringVar(&c.TLS.CAFile, "ca-file", "", "CA that signs the aggregator's certificate, for an https URL")
	fs.StringVar(&c.TLS.CertFile, "cert-file", "", "client certificate")
	fs.StringVar(&c.TLS.KeyFile, "key-file", "", "key of the client certificate")
	fs.StringVar(&c.TokenFile, "token-file", "", tokenFileUsage)
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "give up after this long")
	if err := fs.parse(args, stdout); err != nil {
		return nil, err
	}
	if len(fs.positional) == 0 {
		return nil, usageErrorf("say pods or namespaces")
	}
	c.Resource = fs.positional[0]
	c.Complete()
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return &c, nil
}

// Complete fills in the defaults: the URL from $PENNY_AGGREGATOR, else
// top.DefaultURL, and the resource's full name.
func (c *topConfig) Complete() {
	if c.URL == "" {
		c.URL = os.Getenv("PENNY_AGGREGATOR")
	}
	c.Config.Complete()
	switch c.Resource {
	case "pod", "po":
		c.Resource = "pods"
	case "namespace", "ns":
		c.Resource = "namespaces"
	}
}

// Validate checks the command line.
func (c *topConfig) Validate() error {
	if c.Resource != "pods" && c.Resource != "namespaces" {
		return fmt.Errorf("unknown resource %q: say pods or namespaces", c.Resource)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", c.Timeout)
	}
	return c.Config.Validate()
}

func runTop(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	cfg, err := parseTopFlags(args, stdout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if cfg.Client, err = apiClient(cfg.TLS, cfg.TokenFile); err != nil {
		return err
	}
	now := time.Now()
	if cfg.Resource == "namespaces" {
		res, err := top.Namespaces(ctx, &cfg.Config)
		if err != nil {
			return err
		}
		if len(res.Namespaces) == 0 {
			fmt.Fprintln(os.Stderr, noPods)
			return nil
		}
		return top.NamespacesTable(stdout, res.Namespaces, now)
	}
	res, err := top.Pods(ctx, &cfg.Config)
	if err != nil {
		return err
	}
	if len(res.Pods) == 0 {
		fmt.Fprintln(os.Stderr, noPods)
		return nil
	}
	return top.PodsTable(stdout, res.Pods, cfg.Namespace == "", now)
}

// noPods explains an empty answer.
const noPods = "No pods found. Agents attribute cgroups to pods only on Kubernetes nodes (see docs/agent.md); `penny local` and `GET /v1/containers` show every cgroup."
