package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"k8s.io/klog/v2"

	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/kube"
	"github.com/pennyhq/penny/internal/tlsfiles"
)

func init() {
	register("agent", command{
		summary: "run the node agent: measure every cgroup and stream to the aggregators (needs root)",
		run:     runAgent,
	})
}

func runAgent(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("penny agent", flag.ContinueOnError)
	var cfg daemon.Config
	fs.Var((*urlList)(&cfg.Shipper.URLs), "aggregator", "aggregator replica `URLs`, comma separated (e.g. http://agg-0:7379,http://agg-1:7379)")
	fs.StringVar(&cfg.NodeName, "node-name", "", "this node's name in the aggregators and in Kubernetes (default: $NODE_NAME, else the hostname)")
	fs.DurationVar(&cfg.Core.Interval, "interval", time.Second, "time between samples")
	fs.StringVar(&cfg.Core.Listen, "listen", "", "serve /metrics and /healthz on this address (e.g. :9464)")
	fs.BoolVar(&cfg.Core.BPFStats, "bpf-stats", false, "account eBPF program run time in the kernel and export it on /metrics")
	fs.IntVar(&cfg.Shipper.BufferBytes, "buffer-bytes", 64<<20, "bytes of frames kept until an aggregator acknowledges them")
	fs.IntVar(&cfg.Shipper.KeyframeEvery, "keyframe-every", 60, "frames between keyframes")
	kubeMode := fs.String("kubernetes", "auto", "attribute cgroups to the pods of this node: auto (on in a cluster, where KUBERNETES_SERVICE_HOST is set, or with --kubeconfig), on or off")
	var kc kube.Config
	fs.StringVar(&kc.KubeConfig, "kubeconfig", "", "watch pods through the API server this kubeconfig `file` names (default: the in-cluster service account)")
	var tf tlsfiles.Files
	fs.StringVar(&tf.CAFile, "ca-file", "", "CA that signs the aggregators' certificates, for https URLs (default: the system roots)")
	fs.StringVar(&tf.CertFile, "cert-file", "", "client certificate presented to the aggregators")
	fs.StringVar(&tf.KeyFile, "key-file", "", "key of the client certificate")
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fs.Output().Write([]byte("usage: penny agent --aggregator URL[,URL...] [flags]\n\nMeasures every cgroup with eBPF and streams to the aggregator cluster. Run as root.\n\nflags:\n"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(cfg.Shipper.URLs) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: --aggregator is required", errUsage)
	}
	if cfg.NodeName == "" {
		cfg.NodeName = os.Getenv("NODE_NAME")
	}
	on, err := kubeEnabled(*kubeMode, kc.KubeConfig != "")
	if err != nil {
		fs.Usage()
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if on {
		kc.Logger = log
		cfg.Kube = &kc
		// client-go logs through klog: send it to our logger.
		klog.SetSlogLogger(log.With("component", "client-go"))
	}
	if tf.Enabled() {
		tc, err := tlsfiles.Client(tf)
		if err != nil {
			return fmt.Errorf("--ca-file, --cert-file, --key-file: %w", err)
		}
		cfg.Shipper.TLS = tc
	}
	cfg.Core.Logger, cfg.Shipper.Logger = log, log
	return daemon.Run(ctx, cfg)
}

// kubeEnabled decides whether the agent watches pods, from --kubernetes
// and whether --kubeconfig was given.
func kubeEnabled(mode string, kubeconfig bool) (bool, error) {
	switch mode {
	case "auto":
		return kubeconfig || os.Getenv("KUBERNETES_SERVICE_HOST") != "", nil
	case "on":
		return true, nil
	case "off":
		if kubeconfig {
			return false, errors.New("--kubeconfig with --kubernetes off")
		}
		return false, nil
	}
	return false, fmt.Errorf("--kubernetes %q: want auto, on or off", mode)
}
