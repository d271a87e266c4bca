package main

import (
	"context"
	"errors"
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

// agentConfig is the parsed command line of `penny agent`.
type agentConfig struct {
	Daemon daemon.Config
	// Kubernetes is auto, on or off; Complete decides auto. Kube is used
	// when it is on.
	Kubernetes string
	Kube       kube.Config
	TLS        tlsfiles.Files
}

func parseAgentFlags(args []string, stdout io.Writer) (*agentConfig, error) {
	fs := newCmdFlags("agent", "Measures every cgroup with eBPF and streams the samples to the aggregator cluster. Run as root.",
		"--aggregator URL[,URL...] [flags]")
	var c agentConfig
	fs.Var((*urlList)(&c.Daemon.Shipper.URLs), "aggregator", "aggregator replica `URLs`, comma separated, repeatable (e.g. http://agg-0:7379,http://agg-1:7379)")
	fs.StringVar(&c.Daemon.NodeName, "node-name", "", "this node's name in the aggregators and in Kubernetes (default $NODE_NAME, else the hostname)")
	fs.DurationVar(&c.Daemon.Core.Interval, "interval", time.Second, "time between samples")
	fs.StringVar(&c.Daemon.Core.Listen, "listen", "", "serve /metrics and /healthz on this address (e.g. :9464)")
	fs.BoolVar(&c.Daemon.Core.BPFStats, "bpf-stats", false, "account eBPF program run time in the kernel and export it on /metrics")
	fs.IntVar(&c.Daemon.Shipper.BufferBytes, "buffer-bytes", 64<<20, "bytes of frames kept until an aggregator acknowledges them")
	fs.IntVar(&c.Daemon.Shipper.KeyframeEvery, "keyframe-every", 60, "frames between keyframes")
	fs.StringVar(&c.Kubernetes, "kubernetes", "auto", "attribute cgroups to the pods of this node: auto (on in a cluster, where KUBERNETES_SERVICE_HOST is set, or with --kubeconfig), on or off")
	fs.StringVar(&c.Kube.KubeConfig, "kubeconfig", "", "watch pods through the API server this kubeconfig `file` names (default the in-cluster service account)")
	fs.StringVar(&c.TLS.CAFile, "ca-file", "", "CA that signs the aggregators' certificates, for https URLs (default the system roots)")
	fs.StringVar(&c.TLS.CertFile, "cert-file", "", "client certificate presented to the aggregators")
	fs.StringVar(&c.TLS.KeyFile, "key-file", "", "key of the client certificate")
	if err := fs.parse(args, stdout); err != nil {
		return nil, err
	}
	c.Complete()
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return &c, nil
}

// Complete fills in the defaults: the node name from $NODE_NAME (the
// agent's own defaults fill it from the hostname if that is empty too), and
// --kubernetes auto becomes on in a cluster (KUBERNETES_SERVICE_HOST is
// set) or with --kubeconfig, off otherwise.
func (c *agentConfig) Complete() {
	if c.Daemon.NodeName == "" {
		c.Daemon.NodeName = os.Getenv("NODE_NAME")
	}
	if c.Kubernetes == "auto" {
		c.Kubernetes = "off"
		if c.Kube.KubeConfig != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
			c.Kubernetes = "on"
		}
	}
}

// Validate checks the command line, the agent's settings included (on a
// completed copy: the agent completes its own config when it starts).
func (c *agentConfig) Validate() error {
	if len(c.Daemon.Shipper.URLs) == 0 {
		return errors.New("--aggregator is required")
	}
	d := c.Daemon
	if err := d.Complete(); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}
	switch c.Kubernetes {
	case "on":
	case "off":
		if c.Kube.KubeConfig != "" {
			return errors.New("--kubeconfig with --kubernetes off")
		}
	default:
		return fmt.Errorf("--kubernetes %q: want auto, on or off", c.Kubernetes)
	}
	return nil
}

func runAgent(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	c, err := parseAgentFlags(args, stdout)
	if err != nil {
		return err
	}
	cfg := c.Daemon
	if c.Kubernetes == "on" {
		kc := c.Kube
		kc.Logger = log
		cfg.Kube = &kc
		// client-go logs through klog: send it to our logger.
		klog.SetSlogLogger(log.With("component", "client-go"))
	}
	if c.TLS.Enabled() {
		tc, err := tlsfiles.Client(c.TLS)
		if err != nil {
			return fmt.Errorf("--ca-file, --cert-file, --key-file: %w", err)
		}
		cfg.Shipper.TLS = tc
	}
	cfg.Core.Logger, cfg.Shipper.Logger = log, log
	return daemon.Run(ctx, cfg)
}
