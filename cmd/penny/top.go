package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/pennyhq/penny/cmd/penny/top"
	"github.com/pennyhq/penny/internal/tlsfiles"
)

func init() {
	register("top", command{
		summary: "print what pods or namespaces use, from an aggregator (no kubectl needed)",
		run:     runTop,
	})
}

const topUsage = `usage: penny top pods [-n NAMESPACE] [-l SELECTOR] [flags]
       penny top namespaces [-l SELECTOR] [flags]

Reads the aggregator's gateway (GET /v1/pods, /v1/namespaces) and prints a
table. Pods sum their containers' bytes and rates and show their worst
container's latencies and hit ratio; "-" means no data.

flags:
`

func runTop(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("penny top", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fs.Output().Write([]byte(topUsage))
		fs.PrintDefaults()
	}
	var cfg top.Config
	defURL := os.Getenv("PENNY_AGGREGATOR")
	if defURL == "" {
		defURL = "http://127.0.0.1:7379"
	}
	fs.StringVar(&cfg.URL, "aggregator", defURL, "aggregator API `URL` (default $PENNY_AGGREGATOR or http://127.0.0.1:7379)")
	fs.StringVar(&cfg.Namespace, "n", "", "only this `namespace` (default: all namespaces)")
	fs.StringVar(&cfg.Selector, "l", "", "label `selector` over pods, e.g. app=web,tier!=batch")
	fs.StringVar(&cfg.MetricSelector, "metric-selector", "", "`selector` over containers: container=NAME, node=NODE")
	fs.DurationVar(&cfg.Window, "window", 30*time.Second, "span that rates, ratios and quantiles cover (0: the agents' last interval)")
	fs.StringVar(&cfg.Sort, "sort", "name", "order rows by name or, largest first, by rss, cache, hit, srtt50, srtt99, conn99, rx, tx")
	var tf tlsfiles.Files
	fs.StringVar(&tf.CAFile, "ca-file", "", "CA that signs the aggregator's certificate, for an https URL")
	fs.StringVar(&tf.CertFile, "cert-file", "", "client certificate")
	fs.StringVar(&tf.KeyFile, "key-file", "", "key of the client certificate")
	var timeout time.Duration
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fs.Usage()
		if len(args) == 0 {
			return fmt.Errorf("%w: say pods or namespaces", errUsage)
		}
		return flag.ErrHelp
	}
	what := args[0]
	switch what {
	case "pods", "pod", "po":
		what = "pods"
	case "namespaces", "namespace", "ns":
		what = "namespaces"
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown resource %q: say pods or namespaces", errUsage, what)
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if timeout <= 0 {
		return fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg.Client = &http.Client{}
	if tf.Enabled() {
		tc, err := tlsfiles.Client(tf)
		if err != nil {
			return fmt.Errorf("--ca-file, --cert-file, --key-file: %w", err)
		}
		cfg.Client.Transport = &http.Transport{TLSClientConfig: tc}
	}
	now := time.Now()
	if what == "namespaces" {
		res, err := top.Namespaces(ctx, &cfg)
		if err != nil {
			return err
		}
		if len(res.Namespaces) == 0 {
			fmt.Fprintln(os.Stderr, noPods)
			return nil
		}
		return top.NamespacesTable(stdout, res.Namespaces, now)
	}
	res, err := top.Pods(ctx, &cfg)
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
