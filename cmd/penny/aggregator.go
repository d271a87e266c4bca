//go:build !agentonly

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/pennyhq/penny/aggregator/allocation"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/custommetrics"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/recommend"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/tlsfiles"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
	"github.com/pennyhq/penny/kvraft/transport"
)

func init() {
	register("aggregator", command{
		summary: "run one aggregator replica: the replicated store, agent ingest and the read APIs",
		run:     runAggregator,
	})
}

// aggregatorConfig is the parsed command line of `penny aggregator`.
type aggregatorConfig struct {
	ID               uint64
	IDFromHostname   bool
	DataDir          string
	Listen           string
	PeerListen       string
	InitialCluster   string
	Join             bool
	APIURL           string
	ClusterToken     string
	PeerTLS          transport.TLS
	APITLS           tlsfiles.Files
	Tick             time.Duration
	ElectionTicks    int
	SnapshotCount    uint64
	SnapCatchUp      uint64
	SnapshotBytes    uint64
	SnapCatchUpBytes uint64
	MaxSnapshots     uint
	MaxWALs          uint
	MaxInflightBytes uint64

	// QuotaBytes is the store quota (-1: none); ForceNewCluster restarts
	// this member alone from its data (kvraft.Config).
	QuotaBytes      int64
	ForceNewCluster bool

	RequestTimeout time.Duration
	ShutdownGrace  time.Duration
	EnablePprof    bool
	ReadStaleness  time.Duration
	SeriesTTL      time.Duration
	// PricingFile is the pricing file (docs/pricing.md); empty means
	// OpenCost's default prices.
	PricingFile string
	// History is the history of costs' settings.
	History historySettings
	// CostCluster names the cluster in GET /v1/allocation; CostTenantLabel
	// is the pod label that names a tenant.
	CostCluster     string
	CostTenantLabel string
	// CustomMetrics serves custom.metrics.k8s.io on the adapter's secure
	// port, configured by the standard flags of an extension apiserver.
	CustomMetrics             bool
	CustomMetricsWindow       time.Duration
	CustomMetricsMaxStaleness time.Duration
	CustomMetricsMaxAge       time.Duration
	// CostPolicies evaluates CostPolicies on the leader and serves their
	// decisions as external.metrics.k8s.io (needs CustomMetrics).
	CostPolicies bool
	// Access are the flags of authentication, authorization, rate limits
	// and the audit log.
	Access accessSettings

	// MaxRequestBytes bounds every KV and membership request body.
	MaxRequestBytes int64

	members []kvraft.Member
	// idGiven says --id was given.
	idGiven bool
	// adapter holds the standard flags; standardSet names those given.
	adapter     *custommetrics.Adapter
	standardSet []string
}

func parseAggregatorFlags(args []string, stdout io.Writer) (*aggregatorConfig, error) {
	c := &aggregatorConfig{adapter: custommetrics.NewAdapter()}
	own := newCmdFlags("aggregator", "Runs one aggregator replica: the replicated store, agent ingest and the read APIs.",
		"--id ID --data-dir DIR --initial-cluster ID=PEER_URL,... [flags]")
	own.Uint64Var(&c.ID, "id", 0, "member ID of this replica (required, 1..65535, never reused)")
	own.BoolVar(&c.IDFromHostname, "id-from-hostname", false, "take the member ID from a StatefulSet pod's hostname: its ordinal plus 1 (NAME-0 is member 1)")
	own.StringVar(&c.DataDir, "data-dir", "", "directory for the WAL and snapshots (required)")
	own.StringVar(&c.Listen, "listen", "127.0.0.1:7379", "HOST:PORT of the HTTP API")
	own.StringVar(&c.PeerListen, "peer-listen", "127.0.0.1:7380", "HOST:PORT of the Raft peer transport")
	own.StringVar(&c.InitialCluster, "initial-cluster", "", "ID=PEER_URL,... of the members (required; this member's entry is its advertised peer URL)")
	own.BoolVar(&c.Join, "join", false, "join a running cluster after POST /v1/cluster/members added this member")
	own.StringVar(&c.APIURL, "advertise-api-url", "", "API URL published in the membership (default http://<listen>, https:// with --cert-file)")
	own.StringVar(&c.ClusterToken, "cluster-token", "penny", "token shared by all members; peers with another token are refused")
	own.StringVar(&c.APITLS.CertFile, "cert-file", "", "TLS certificate of the API (agents, reads, KV API; enables https)")
	own.StringVar(&c.APITLS.KeyFile, "key-file", "", "TLS key of the API")
	own.StringVar(&c.APITLS.CAFile, "api-client-ca-file", "", "CA that signs client certificates: authenticates them (CN the user, O the groups; "+
		"O=penny:agents makes CN an agent's node name)")
	own.StringVar(&c.PeerTLS.CertFile, "peer-cert-file", "", "TLS certificate for the peer transport (enables https)")
	own.StringVar(&c.PeerTLS.KeyFile, "peer-key-file", "", "TLS key for the peer transport")
	own.StringVar(&c.PeerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "CA that signs peer certificates")
	own.BoolVar(&c.PeerTLS.ClientCertAuth, "peer-client-cert-auth", false, "require peers to present a certificate signed by the trusted CA")
	own.DurationVar(&c.Tick, "tick", 100*time.Millisecond, "Raft tick; heartbeats go out every tick")
	own.IntVar(&c.ElectionTicks, "election-ticks", 10, "election timeout in ticks")
	own.Uint64Var(&c.SnapshotCount, "snapshot-count", 10000, "applied entries between snapshots")
	own.Uint64Var(&c.SnapCatchUp, "snapshot-catch-up-entries", 5000, "log entries kept behind a snapshot for slow followers")
	own.Uint64Var(&c.SnapshotBytes, "snapshot-bytes", kvraft.DefaultSnapshotBytes, "bytes of applied entries that trigger a snapshot too, "+
		"whatever their count: with --snapshot-catch-up-bytes, what bounds the in-memory log")
	own.Uint64Var(&c.SnapCatchUpBytes, "snapshot-catch-up-bytes", kvraft.DefaultSnapshotCatchUpBytes, "bytes of log entries kept behind a snapshot "+
		"at most, fewer entries than --snapshot-catch-up-entries when they are large")
	own.UintVar(&c.MaxSnapshots, "max-snapshots", kvraft.DefaultMaxFiles, "old snapshot files kept in the data dir, as etcd's (which keeps 5)")
	own.UintVar(&c.MaxWALs, "max-wals", kvraft.DefaultMaxFiles, "old 64 MiB WAL files kept in the data dir, as etcd's (which keeps 5)")
	own.Uint64Var(&c.MaxInflightBytes, "max-inflight-bytes", kvraft.DefaultMaxInflightBytes, "bytes of log entries in flight to each follower "+
		"at most: what the leader holds for a slow follower (at least 1 MiB, the largest append message)")
	own.Int64Var(&c.QuotaBytes, "quota-bytes", kvraft.DefaultQuotaBytes, "store quota in bytes of keys and values: writes past it fail (507) "+
		"until keys are deleted; the leader's value applies to the cluster, give every member the same (-1: no quota)")
	own.BoolVar(&c.ForceNewCluster, "force-new-cluster", false, "restart this member as a one-member cluster from its data dir, "+
		"when the cluster lost its quorum for good (docs/kvraft.md); use once, then restart without it")
	own.DurationVar(&c.RequestTimeout, "request-timeout", 5*time.Second, "timeout of one API request")
	own.Int64Var(&c.MaxRequestBytes, "max-request-bytes", kvhttp.DefaultMaxRequestBytes, "largest body of a KV or membership API request, in bytes (413 past it)")
	own.DurationVar(&c.ShutdownGrace, "shutdown-grace", 5*time.Second, "time given to in-flight requests on shutdown")
	own.BoolVar(&c.EnablePprof, "enable-pprof", false, "serve runtime profiles under /debug/pprof/ on the API listener")
	own.DurationVar(&c.ReadStaleness, "read-staleness", 2*time.Second, "staleness bound of /v1/containers reads that ask for no consistency")
	own.DurationVar(&c.SeriesTTL, "series-ttl", 10*time.Minute, "delete a node's series after its agent sent nothing for this long")
	own.StringVar(&c.PricingFile, "pricing-file", "", "prices of CPU, memory and egress (YAML, docs/pricing.md), reloaded when it changes; "+
		"without it OpenCost's default prices apply")
	historyFlags(own, &c.History)
	own.StringVar(&c.CostCluster, "cost-cluster-name", cost.DefaultCluster, "the cluster's `name` in GET /v1/allocation's keys and properties "+
		"(OpenCost's default cluster id unless set)")
	own.StringVar(&c.CostTenantLabel, "cost-tenant-label", cost.DefaultTenantLabel, "the pod label `key` that names a pod's tenant in the cost "+
		"allocation (aggregate=tenant); a pod without it belongs to its namespace's tenant")
	own.BoolVar(&c.CustomMetrics, "custom-metrics", false, "serve the Kubernetes custom metrics API (custom.metrics.k8s.io v1beta1 and v1beta2) on --secure-port; "+
		"needs the in-cluster config or --lister-kubeconfig, and --authentication-kubeconfig and --authorization-kubeconfig, as any extension apiserver")
	own.DurationVar(&c.CustomMetricsWindow, "custom-metrics-window", 30*time.Second,
		fmt.Sprintf("span that custom metrics rates, ratios and quantiles cover (at most %s)", model.MaxWindow))
	own.DurationVar(&c.CustomMetricsMaxStaleness, "custom-metrics-max-staleness", 2*time.Second,
		"how far this replica may lag behind the cluster and still answer custom metrics itself")
	own.DurationVar(&c.CustomMetricsMaxAge, "custom-metrics-max-age", 2*time.Minute,
		"serve no custom metric older than this: a pod whose node stopped reporting has no value, rather than its last one")

	own.BoolVar(&c.CostPolicies, "cost-policies", false, "evaluate the CostPolicies (penny.dev/v1alpha1) of the cluster on the Raft leader and serve "+
		"their decisions as the external metric "+custommetrics.ExternalDesiredReplicas+" (external.metrics.k8s.io v1beta1) for HPAs; needs --custom-metrics")
	accessFlags(own, &c.Access)

	standard := pflag.NewFlagSet("custom metrics", pflag.ContinueOnError)
	c.adapter.AddFlags(standard)
	own.extra = []*pflag.FlagSet{standard}
	own.more = func(w io.Writer) {
		fmt.Fprintf(w, "\n%s\n", wrap("Custom metrics API: the standard flags of a Kubernetes extension apiserver, "+
			"used with --custom-metrics (see docs/custom-metrics.md).", 80))
		c.adapter.PrintFlags(w)
	}
	if err := own.parse(args, stdout); err != nil {
		return nil, err
	}
	c.idGiven = own.Lookup("id").Changed
	c.Access.rateSet = own.Lookup("rate-limit-qps").Changed || own.Lookup("rate-limit-burst").Changed
	c.Access.metricsSet = own.Lookup("authorize-metrics").Changed
	standard.VisitAll(func(f *pflag.Flag) { // in name order
		if f.Changed {
			c.standardSet = append(c.standardSet, "--"+f.Name)
		}
	})
	if err := c.Complete(); err != nil {
		return nil, usageError{err}
	}
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// Complete fills in the defaults: the member ID from the hostname with
// --id-from-hostname (unless --id is given too, which Validate refuses),
// and the advertised API URL from --listen.
func (c *aggregatorConfig) Complete() error {
	if c.IDFromHostname && c.ID == 0 {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--id-from-hostname: %w", err)
		}
		if c.ID, err = idFromHostname(host); err != nil {
			return fmt.Errorf("--id-from-hostname: %w", err)
		}
	}
	c.Access.clientCerts = c.APITLS.CAFile != ""
	if c.APIURL == "" {
		c.APIURL = "http://" + c.Listen
		if c.APITLS.CertFile != "" {
			c.APIURL = "https://" + c.Listen
		}
	}
	return nil
}

// idFromHostname is the member ID of a StatefulSet pod: the ordinal that
// ends its hostname, plus 1.
func idFromHostname(host string) (uint64, error) {
	i := strings.LastIndexByte(host, '-')
	if i < 0 {
		return 0, fmt.Errorf("hostname %q does not end in -ORDINAL", host)
	}
	n, err := strconv.ParseUint(host[i+1:], 10, 16)
	if err != nil || n >= 65535 {
		return 0, fmt.Errorf("hostname %q does not end in -ORDINAL (0..65534)", host)
	}
	return n + 1, nil
}

// Validate checks the flags. It parses --initial-cluster, and keeps its
// members: the one thing it stores.
func (c *aggregatorConfig) Validate() error {
	var errs []error
	if c.IDFromHostname && c.idGiven {
		errs = append(errs, errors.New("--id and --id-from-hostname exclude each other"))
	}
	if c.ID == 0 {
		errs = append(errs, errors.New("--id is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	for name, addr := range map[string]string{"--listen": c.Listen, "--peer-listen": c.PeerListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		}
	}
	if c.InitialCluster == "" {
		errs = append(errs, errors.New("--initial-cluster is required"))
	} else if ms, err := kvraft.ParseCluster(c.InitialCluster); err != nil {
		errs = append(errs, fmt.Errorf("--initial-cluster: %w", err))
	} else {
		c.members = ms
		if c.self() == nil {
			errs = append(errs, fmt.Errorf("--initial-cluster has no entry for --id %d", c.ID))
		}
	}
	tlsSet := c.PeerTLS.CertFile != "" || c.PeerTLS.KeyFile != ""
	if tlsSet && (c.PeerTLS.CertFile == "" || c.PeerTLS.KeyFile == "") {
		errs = append(errs, errors.New("--peer-cert-file and --peer-key-file go together"))
	}
	if (c.APITLS.CertFile == "") != (c.APITLS.KeyFile == "") {
		errs = append(errs, errors.New("--cert-file and --key-file go together"))
	}
	if c.APITLS.CAFile != "" && c.APITLS.CertFile == "" {
		errs = append(errs, errors.New("--api-client-ca-file needs --cert-file and --key-file"))
	}
	if _, err := c.History.config(); err != nil {
		errs = append(errs, err)
	}
	if err := c.allocation().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--cost-cluster-name, --cost-tenant-label: %w", err))
	}
	errs = append(errs, c.validateCustomMetrics()...)
	if c.ForceNewCluster && c.Join {
		errs = append(errs, errors.New("--force-new-cluster and --join exclude each other"))
	}
	if c.MaxInflightBytes < 1<<20 {
		errs = append(errs, errors.New("--max-inflight-bytes must be at least 1 MiB, the largest append message"))
	}
	if c.QuotaBytes == 0 || c.QuotaBytes < -1 {
		errs = append(errs, errors.New("--quota-bytes must be positive, or -1 for no quota"))
	}
	errs = append(errs, c.Access.validate(c.Listen)...)
	if c.Tick <= 0 || c.ElectionTicks < 2 || c.SnapshotCount == 0 || c.SnapCatchUp == 0 || c.SnapshotBytes == 0 || c.SnapCatchUpBytes == 0 ||
		c.MaxSnapshots == 0 || c.MaxWALs == 0 || c.RequestTimeout <= 0 || c.ShutdownGrace < 0 {
		errs = append(errs, errors.New("--tick, --election-ticks (>= 2), --snapshot-count, --snapshot-catch-up-entries, --snapshot-bytes, "+
			"--snapshot-catch-up-bytes, --max-snapshots, --max-wals and --request-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// validateCustomMetrics checks --custom-metrics and the flags that go with
// it.
func (c *aggregatorConfig) validateCustomMetrics() []error {
	if !c.CustomMetrics {
		if c.CostPolicies {
			return []error{errors.New("--cost-policies needs --custom-metrics: the decisions are served by its adapter")}
		}
		if len(c.standardSet) == 0 {
			return nil
		}
		err := fmt.Errorf("%s set the custom metrics API, which is off without --custom-metrics", strings.Join(c.standardSet, ", "))
		if slices.Contains(c.standardSet, "--client-ca-file") {
			err = fmt.Errorf("%w (the CA of agent certificates is --api-client-ca-file)", err)
		}
		return []error{err}
	}
	var errs []error
	if c.CustomMetricsWindow <= 0 || c.CustomMetricsWindow > model.MaxWindow {
		errs = append(errs, fmt.Errorf("--custom-metrics-window %s must be positive and at most %s", c.CustomMetricsWindow, model.MaxWindow))
	}
	if c.CustomMetricsMaxStaleness <= 0 {
		errs = append(errs, errors.New("--custom-metrics-max-staleness must be positive"))
	}
	if c.CustomMetricsMaxAge <= 0 {
		errs = append(errs, errors.New("--custom-metrics-max-age must be positive"))
	}
	if err := c.adapter.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// allocation is GET /v1/allocation's settings of the flags, completed.
func (c *aggregatorConfig) allocation() *allocation.Config {
	a := &allocation.Config{Cluster: c.CostCluster, TenantLabel: c.CostTenantLabel}
	a.Complete()
	return a
}

func (c *aggregatorConfig) self() *kvraft.Member {
	for i := range c.members {
		if c.members[i].ID == c.ID {
			return &c.members[i]
		}
	}
	return nil
}

func runAggregator(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cfg, err := parseAggregatorFlags(args, stdout)
	if err != nil {
		return err
	}
	var peerTLS *transport.TLS
	if cfg.PeerTLS.CertFile != "" {
		peerTLS = &cfg.PeerTLS
	}
	var gatherers []prometheus.Gatherer
	if cfg.CustomMetrics {
		// Penny's /metrics shows the library's freshness histogram too.
		gatherers = append(gatherers, custommetrics.Gatherer())
	}
	hc, err := cfg.History.config()
	if err != nil {
		return usageError{err}
	}
	ac, err := cfg.Access.config(log)
	if err != nil {
		return err
	}
	cfg.Access.describe(log, cfg.Listen)
	// In a cluster, the scaling recommendations follow its
	// PodDisruptionBudgets; outside one they say they do not know them.
	var pdbs *recommend.PDBLister
	var pdbSource recommend.PDBs
	if cfg.CustomMetrics {
		if pdbs, err = newPDBLister(cfg); err != nil {
			return err
		}
		pdbSource = pdbs
	}
	srv, err := server.Start(ctx, server.Config{
		Store: kvraft.Config{
			ID:                     cfg.ID,
			DataDir:                cfg.DataDir,
			InitialCluster:         cfg.members,
			Join:                   cfg.Join,
			APIURL:                 cfg.APIURL,
			TickInterval:           cfg.Tick,
			ElectionTicks:          cfg.ElectionTicks,
			SnapshotCount:          cfg.SnapshotCount,
			SnapshotCatchUpEntries: cfg.SnapCatchUp,
			SnapshotBytes:          cfg.SnapshotBytes,
			SnapshotCatchUpBytes:   cfg.SnapCatchUpBytes,
			MaxSnapshotFiles:       cfg.MaxSnapshots,
			MaxWALFiles:            cfg.MaxWALs,
			MaxInflightBytes:       cfg.MaxInflightBytes,
			QuotaBytes:             cfg.QuotaBytes,
			ForceNewCluster:        cfg.ForceNewCluster,
			RequestTimeout:         cfg.RequestTimeout,
		},
		PeerListen:     cfg.PeerListen,
		ClusterToken:   cfg.ClusterToken,
		PeerTLS:        peerTLS,
		Listen:         cfg.Listen,
		TLS:            cfg.APITLS,
		Access:         ac,
		RequestTimeout: cfg.RequestTimeout,
		ShutdownGrace:  cfg.ShutdownGrace,
		ReadStaleness:  cfg.ReadStaleness,
		SeriesTTL:      cfg.SeriesTTL,
		Pricing:        pricing.Config{Path: cfg.PricingFile},
		History:        hc,
		Allocation:     allocation.Config{Cluster: cfg.CostCluster, TenantLabel: cfg.CostTenantLabel},
		PDBs:           pdbSource,
		EnablePprof:    cfg.EnablePprof,
		Gatherers:      gatherers,
		Logger:         log,

		MaxRequestBytes: cfg.MaxRequestBytes,
	})
	if err != nil {
		return err
	}

	// The custom metrics API runs beside the replica and reads its store;
	// either stopping on its own stops the other.
	actx, stopAdapter := context.WithCancel(ctx)
	defer stopAdapter()
	adapterDone := make(chan error, 1)
	if cfg.CustomMetrics {
		go func() {
			adapterDone <- cfg.adapter.Run(actx, custommetrics.Config{Store: srv.Reads, Prices: srv.Pricing(), MemoryMeasure: hc.Memory,
				Window:       cfg.CustomMetricsWindow,
				MaxStaleness: cfg.CustomMetricsMaxStaleness, MaxAge: cfg.CustomMetricsMaxAge, Registerer: srv.Registerer(), Logger: log,
				ExternalMetrics: cfg.CostPolicies})
		}()
	}
	if pdbs != nil {
		go pdbs.Run(actx)
	}
	if cfg.CostPolicies {
		ctl, err := newCostPolicyController(cfg, srv, hc.Memory, log)
		if err != nil {
			srv.Stop()
			return err
		}
		go ctl.Run(actx)
	}
	// waitAdapter stops the custom metrics API and waits for it.
	waitAdapter := func() {
		stopAdapter()
		if cfg.CustomMetrics {
			if err := <-adapterDone; err != nil {
				log.Warn("custom metrics api stopped", "err", err)
			}
		}
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "member", cfg.ID)
		waitAdapter()
		srv.Stop()
		return nil
	case err := <-adapterDone:
		srv.Stop()
		if ctx.Err() != nil {
			return nil // shutting down anyway
		}
		if err == nil {
			err = errors.New("custom metrics api stopped")
		}
		return err
	case <-srv.Done():
		waitAdapter()
	}
	if err := srv.Err(); errors.Is(err, kvraft.ErrRemoved) {
		log.Info("this member was removed from the cluster; exiting", "member", cfg.ID)
		return nil
	} else if err != nil {
		return err
	}
	return nil
}

// historySettings are the flags of the history of costs, shared by
// `penny aggregator` and `penny local`.
type historySettings struct {
	Memory          string
	MinuteRetention time.Duration
	HourRetention   time.Duration
	// Every is how often the leader rolls: a hidden flag, for tests and
	// benchmarks that send samples faster than real time.
	Every time.Duration
}

func historyFlags(fs *cmdFlags, h *historySettings) {
	fs.StringVar(&h.Memory, "cost-memory-usage", string(cost.MemoryRSS), "what counts as a container's memory usage in its cost: "+
		"`rss|rss+cache|working-set` (docs/cost.md)")
	fs.DurationVar(&h.MinuteRetention, "history-minute-retention", history.DefaultMinuteRetention,
		"keep the per-minute history of costs this long, then only hours")
	fs.DurationVar(&h.HourRetention, "history-hour-retention", history.DefaultHourRetention,
		"keep the hourly history of costs this long")
	fs.DurationVar(&h.Every, "history-roll-every", time.Minute, "how often the leader rolls up complete minutes "+
		"(for tests and benchmarks that send samples faster than real time)")
	_ = fs.MarkHidden("history-roll-every")
}

// config is the history's config of the flags, checked.
func (h *historySettings) config() (history.Config, error) {
	m, err := cost.ParseMemoryMeasure(h.Memory)
	if err != nil {
		return history.Config{}, fmt.Errorf("--cost-memory-usage: %w", err)
	}
	c := history.Config{Memory: m, MinuteRetention: h.MinuteRetention, HourRetention: h.HourRetention, Every: h.Every}
	v := c
	v.Complete()
	if err := v.Validate(); err != nil {
		return history.Config{}, fmt.Errorf("--history-minute-retention, --history-hour-retention: %w", err)
	}
	return c, nil
}
