package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/kube"
	"github.com/pennyhq/penny/agent/trigger"
	"github.com/pennyhq/penny/internal/bearer"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/tlsfiles"
)

func init() {
	register("agent", command{
		summary: "run the node agent: measure every cgroup and stream to the aggregators (needs root)",
		run:     runAgent,
	})
}

// serviceAccountTokenPath is the agent's default token file in a cluster;
// a variable for the tests.
var serviceAccountTokenPath = bearer.ServiceAccountTokenPath

// agentConfig is the parsed command line of `penny agent`.
type agentConfig struct {
	Daemon daemon.Config
	// Kubernetes is auto, on or off; Complete decides auto. Kube is used
	// when it is on.
	Kubernetes string
	Kube       kube.Config
	TLS        tlsfiles.Files
	// TokenFile holds the bearer token sent to the aggregators; Complete
	// defaults it to the pod's ServiceAccount token in a cluster.
	TokenFile string
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
	requests := fs.Bool("requests", true, requestsUsage)
	onChange := fs.Bool("ship-on-change", true, "sample and ship at once, not at the next interval, when a cgroup's RSS moves past --change-threshold")
	fs.Float64Var(&c.Daemon.Trigger.Threshold, "change-threshold", trigger.DefaultThreshold,
		"the share of a cgroup's RSS it must move by, either way, to be shipped at once (0.05: 5%)")
	fs.Int64Var(&c.Daemon.Trigger.MinBytes, "change-min-bytes", trigger.DefaultMinBytes, "the least RSS change in bytes that is shipped at once, whatever the cgroup's size")
	fs.DurationVar(&c.Daemon.Trigger.Floor, "change-floor", trigger.DefaultFloor, "the least time between two samples when changes trigger them")
	fs.Float64Var(&c.Daemon.Trigger.PerSecond, "changes-per-second", trigger.DefaultPerSecond,
		"the samples a second changes may cause on average; past it a change waits for the interval")
	fs.IntVar(&c.Daemon.Trigger.Burst, "change-burst", trigger.DefaultBurst, "the samples changes may cause at once, over --changes-per-second")
	fs.IntVar(&c.Daemon.Shipper.BufferBytes, "buffer-bytes", 64<<20, "bytes of frames kept until an aggregator acknowledges them")
	fs.IntVar(&c.Daemon.Shipper.KeyframeEvery, "keyframe-every", 60, "frames between keyframes")
	fs.StringVar(&c.Kubernetes, "kubernetes", "auto", "attribute cgroups to the pods of this node: auto (on in a cluster, where KUBERNETES_SERVICE_HOST is set, or with --kubeconfig), on or off")
	fs.StringVar(&c.Kube.KubeConfig, "kubeconfig", "", "watch pods through the API server this kubeconfig `file` names (default the in-cluster service account)")
	factFlags(fs, &c.Daemon.Facts, true)
	fs.Var((*labelList)(&c.Kube.SpotLabels), "spot-label", "a node label that marks a spot node, besides the clouds' and Karpenter's (repeatable)")
	fs.StringVar(&c.TLS.CAFile, "ca-file", "", "CA that signs the aggregators' certificates, for https URLs (default the system roots)")
	fs.StringVar(&c.TLS.CertFile, "cert-file", "", "client certificate presented to the aggregators")
	fs.StringVar(&c.TLS.KeyFile, "key-file", "", "key of the client certificate")
	fs.StringVar(&c.TokenFile, "token-file", "", "send the bearer token in this `file` to the aggregators, read again when it changes "+
		"(default in a cluster: the pod's ServiceAccount token, "+bearer.ServiceAccountTokenPath+", if present; \"none\" sends none)")
	if err := fs.parse(args, stdout); err != nil {
		return nil, err
	}
	c.Daemon.Core.SkipRequests = !*requests
	c.Daemon.Trigger.Disabled = !*onChange
	c.Complete()
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return &c, nil
}

// Complete fills in the defaults: the node name from $NODE_NAME (the
// agent's own defaults fill it from the hostname if that is empty too), and
// --kubernetes auto becomes on in a cluster (KUBERNETES_SERVICE_HOST is
// set) or with --kubeconfig, off otherwise. In a cluster, the token file
// is the pod's ServiceAccount token when it is mounted.
func (c *agentConfig) Complete() {
	if c.Daemon.NodeName == "" {
		c.Daemon.NodeName = os.Getenv("NODE_NAME")
	}
	if c.TokenFile == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		if _, err := os.Stat(serviceAccountTokenPath); err == nil {
			c.TokenFile = serviceAccountTokenPath
		}
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
		if len(c.Kube.SpotLabels) > 0 {
			return errors.New("--spot-label with --kubernetes off: without the Node object, say --capacity-type")
		}
	default:
		return fmt.Errorf("--kubernetes %q: want auto, on or off", c.Kubernetes)
	}
	return nil
}

// factFlags adds the flags that give the node's facts (penny agent and
// penny local) to fs; onKube says whether they override a Node object's.
func factFlags(fs *cmdFlags, f *nodemeta.Facts, onKube bool) {
	from := func(label string) string {
		if onKube {
			return " (default the Node object's label " + label + ")"
		}
		return ""
	}
	fs.StringVar(&f.InstanceType, "instance-type", "", "this node's instance `type`, e.g. m5.xlarge"+from(kube.LabelInstanceType))
	fs.StringVar(&f.Region, "region", "", "this node's `region`, e.g. us-east-1"+from(kube.LabelRegion))
	fs.StringVar(&f.Zone, "zone", "", "this node's `zone`, e.g. us-east-1a"+from(kube.LabelZone))
	spot := ""
	if onKube {
		spot = " (default spot when a spot label is set, else on-demand)"
	}
	fs.Var((*capacityType)(&f.CapacityType), "capacity-type", "how this node is bought: `spot|on-demand`"+spot)
}

// capacityType is the flag --capacity-type: spot or on-demand.
type capacityType nodemeta.CapacityType

func (c *capacityType) String() string { return string(*c) }
func (c *capacityType) Type() string   { return "string" }

func (c *capacityType) Set(v string) error {
	t, err := nodemeta.ParseCapacityType(v)
	if err != nil {
		return fmt.Errorf("want %s or %s", nodemeta.Spot, nodemeta.OnDemand)
	}
	*c = capacityType(t)
	return nil
}

// labelList is a repeatable flag of node labels, KEY=VALUE.
type labelList []kube.Label

func (l *labelList) String() string {
	s := make([]string, len(*l))
	for i, x := range *l {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

func (l *labelList) Type() string { return "KEY=VALUE" }

func (l *labelList) Set(v string) error {
	x, err := kube.ParseLabel(v)
	if err != nil {
		return err
	}
	*l = append(*l, x)
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
	if c.TokenFile != "" && c.TokenFile != "none" {
		tf, err := bearer.NewFile(c.TokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		cfg.Shipper.Token = tf.Token
	}
	cfg.Core.Logger, cfg.Shipper.Logger = log, log
	return daemon.Run(ctx, cfg)
}
