package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/kvraft"
)

var labels = []string{"node", "cgroup"}

// about holds the name and help of every description of the families
// Gather builds itself (a prometheus.Desc does not tell them).
var about = map[*prometheus.Desc]family{}

// family is a metric family's name and help.
type family struct{ name, help string }

// newDesc returns the description of a family and keeps its name and help
// in about.
func newDesc(name, help string, labels []string) *prometheus.Desc {
	d := prometheus.NewDesc(name, help, labels, nil)
	about[d] = family{name, help}
	return d
}

func desc(name, help string) *prometheus.Desc {
	return newDesc("penny_container_"+name, help, labels)
}

// txClasses are the values of the class label of egress bytes.
var txClasses = [...]string{"loopback", "cluster", "internet"}

var (
	descRSS       = desc("memory_rss_bytes", "Resident memory of the cgroup's processes.")
	descPageCache = desc("page_cache_bytes", "File page cache charged to the cgroup.")
	descHitRatio  = desc("page_cache_hit_ratio", "Page cache hit ratio over the agent's last interval.")
	descSRTT50    = desc("tcp_srtt_p50_seconds", "Median smoothed TCP RTT over the agent's last interval.")
	descSRTT99    = desc("tcp_srtt_p99_seconds", "99th percentile smoothed TCP RTT over the agent's last interval.")
	descConnect99 = desc("tcp_connect_p99_seconds", "99th percentile TCP connect latency over the agent's last interval.")
	descRetrans   = desc("tcp_retransmits_total", "TCP segments retransmitted since the agent started.")
	descRequests  = desc("requests_total", "Requests the cgroup's server sockets answered since the agent started (docs/requests.md).")
	descRequest50 = desc("request_latency_p50_seconds", "Median request latency, first byte in to first byte of the response out, over the agent's last interval.")
	descRequest99 = desc("request_latency_p99_seconds", "99th percentile request latency over the agent's last interval.")
	descRx        = desc("network_receive_bytes_total", "IP bytes received since the agent started.")
	descTx        = desc("network_transmit_bytes_total", "IP bytes sent since the agent started.")
	descPCAdded   = desc("page_cache_added_bytes_total", "Page cache bytes added since the agent started.")
	descPCEvicted = desc("page_cache_evicted_bytes_total", "Page cache bytes evicted since the agent started.")
	descUpdated   = desc("updated_timestamp_seconds", "When the values were last current: the sample time of the node's last frame.")

	descEgress = newDesc("penny_container_network_egress_bytes_total",
		"IP bytes sent since the agent started, by destination: loopback, cluster (private and link-local addresses), internet. They add up to penny_container_network_transmit_bytes_total.",
		append(labels[:len(labels):len(labels)], "class"))
	descCPU                 = desc("cpu_usage_seconds_total", "CPU time of the cgroup's own tasks (its child cgroups' excluded) since the agent started.")
	descCFSPeriods          = desc("cpu_cfs_periods_total", "Enforcement periods of the cgroup's CPU limit in which it had runnable tasks.")
	descCFSThrottledPeriods = desc("cpu_cfs_throttled_periods_total", "Enforcement periods of the cgroup's CPU limit at whose end it was throttled.")
	descCFSThrottledSeconds = desc("cpu_cfs_throttled_seconds_total", "Time the cgroup's tasks were throttled by its CPU limit.")
	descWorkingSet          = desc("memory_working_set_bytes", "Memory usage minus inactive file pages of the cgroup's memory cgroup, as kubelet computes the working set.")
	// PSI "some"; the agents' /metrics have "full" too (stalled).
	descPressure = [...]*prometheus.Desc{
		desc("pressure_cpu_waiting_seconds_total", "Time at least one of the cgroup's tasks waited for a CPU (PSI some); absent where the kernel has no pressure stall information."),
		desc("pressure_memory_waiting_seconds_total", "Time at least one of the cgroup's tasks stalled on memory (PSI some)."),
		desc("pressure_io_waiting_seconds_total", "Time at least one of the cgroup's tasks stalled on IO (PSI some)."),
	}
)

// Config configures a Collector.
type Config struct {
	// Store is the replica read at each scrape.
	Store query.Store
	// Prices and MemoryMeasure price containers and nodes (query.Config;
	// nil prices: OpenCost's defaults). The aggregator passes its pricing
	// watcher.
	Prices        query.Prices
	MemoryMeasure cost.MemoryMeasure
	// TenantLabel is the pod label that names a pod's tenant
	// (cost.DefaultTenantLabel); a pod without it belongs to its
	// namespace's tenant, as in the cost allocation.
	TenantLabel string
	// Timeout bounds the read of one scrape (5s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.TenantLabel == "" {
		c.TenantLabel = cost.DefaultTenantLabel
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks a completed config; it changes nothing.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("exporter: no store")
	}
	if c.Timeout < 0 {
		return errors.New("exporter: negative timeout")
	}
	return nil
}

// Collector reads the containers and nodes from the local replica
// (eventual consistency: a scrape never waits for the leader) once per
// scrape, and exposes the containers' series, the nodes' facts, and the
// cost rates of containers, pods, namespaces and nodes.
type Collector struct {
	r       *query.Reader
	store   query.Store
	timeout time.Duration
	tenant  string
	log     *slog.Logger
	errors  prometheus.Counter
}

// New returns a collector of what cfg.Store holds.
func New(cfg Config) (*Collector, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := query.New(query.Config{Store: cfg.Store, Prices: cfg.Prices, MemoryMeasure: cfg.MemoryMeasure})
	if err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	return &Collector{r: r, store: cfg.Store, timeout: cfg.Timeout, tenant: cfg.TenantLabel, log: cfg.Logger,
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_container_scrape_errors_total",
			Help: "Scrapes that could not read the store."})}, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRSS, descPageCache, descHitRatio, descSRTT50, descSRTT99, descConnect99,
		descRetrans, descRequests, descRequest50, descRequest99, descRx, descTx, descPCAdded, descPCEvicted,
		descUpdated, descEgress, descCPU, descCFSPeriods,
		descCFSThrottledPeriods, descCFSThrottledSeconds, descWorkingSet, c.errors.Desc()} {
		ch <- d
	}
	for _, d := range descPressure {
		ch <- d
	}
	describeNodes(ch)
	describeCosts(ch)
	describePods(ch)
	describeScaling(ch)
}

// Collect implements prometheus.Collector: every family Gather returns,
// built the way any collector's are (a constant metric per series, which
// a registry checks and sorts). It is the reference that Gather, the
// scrape's fast path, must equal (TestGatherEqualsCollect). A registry
// gathers it in about four times Gather's time at 50,000 containers
// (BenchmarkScrape).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	defer func() { ch <- c.errors }()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, ok := c.read(ctx)
	if !ok {
		return
	}
	c.collectShared(ctx, ch, res)
	collectContainerCosts(ch, res.Containers)
	for i := range res.Containers {
		collectContainerPod(ch, &res.Containers[i], c.tenant)
		collectContainer(ch, &res.Containers[i])
	}
}

// read reads every container and node of the local replica; false when
// it could not (counted and logged).
func (c *Collector) read(ctx context.Context) (*query.Snapshot, bool) {
	res, err := c.r.Read(ctx, query.Request{Read: kvraft.ReadOptions{Consistency: kvraft.Eventual}})
	if err != nil {
		c.errors.Inc()
		c.log.Warn("metrics scrape could not read the store", "err", err)
		return nil, false
	}
	return res, true
}

// collectShared sends the families that are not per container, which both
// Collect and Gather build as constant metrics: the nodes' facts, the cost
// of pods, workloads, tenants, namespaces and nodes, and the cost
// policies' decisions.
func (c *Collector) collectShared(ctx context.Context, ch chan<- prometheus.Metric, res *query.Snapshot) {
	collectNodes(ch, res.Nodes)
	collectCosts(ch, res, c.tenant)
	c.collectScaling(ctx, ch)
}

// collectContainer sends the series of one container's values.
func collectContainer(ch chan<- prometheus.Metric, v *model.Container) {
	gauge := func(d *prometheus.Desc, x float64) {
		send(ch, d, prometheus.GaugeValue, x, v.Node, v.Path)
	}
	counter := func(d *prometheus.Desc, x uint64) {
		send(ch, d, prometheus.CounterValue, float64(x), v.Node, v.Path)
	}
	gauge(descRSS, float64(v.RSSBytes))
	gauge(descPageCache, float64(v.PageCacheBytes))
	for _, q := range []struct {
		d *prometheus.Desc
		v *float64
	}{{descHitRatio, v.PageCacheHitRatio}, {descSRTT50, v.TCPSRTTP50Seconds}, {descSRTT99, v.TCPSRTTP99Seconds},
		{descConnect99, v.TCPConnectP99Seconds}, {descRequest50, v.RequestLatencyP50Seconds},
		{descRequest99, v.RequestLatencyP99Seconds}} {
		if q.v != nil {
			gauge(q.d, *q.v)
		}
	}
	counter(descRetrans, v.Totals.Retransmits)
	counter(descRequests, v.Totals.Requests)
	counter(descRx, v.Totals.RxBytes)
	counter(descTx, v.Totals.TxBytes)
	counter(descPCAdded, v.Totals.PageCacheAddedBytes)
	counter(descPCEvicted, v.Totals.PageCacheEvictedBytes)
	t := &v.Totals
	for i, n := range [...]uint64{t.TxLoopbackBytes, t.TxClusterBytes, t.TxInternetBytes} {
		send(ch, descEgress, prometheus.CounterValue, float64(n), v.Node, v.Path, txClasses[i])
	}
	seconds := func(d *prometheus.Desc, us uint64) {
		send(ch, d, prometheus.CounterValue, float64(us)/1e6, v.Node, v.Path)
	}
	seconds(descCPU, t.CPUUsageUsec)
	counter(descCFSPeriods, t.CPUPeriods)
	counter(descCFSThrottledPeriods, t.CPUThrottledPeriods)
	seconds(descCFSThrottledSeconds, t.CPUThrottledUsec)
	if v.PressureKnown {
		for i, us := range [...]uint64{t.CPUPressureSomeUsec, t.MemoryPressureSomeUsec, t.IOPressureSomeUsec} {
			seconds(descPressure[i], us)
		}
	}
	gauge(descWorkingSet, float64(v.MemoryWorkingSetBytes))
	if !v.SampleTime.IsZero() {
		gauge(descUpdated, float64(v.SampleTime.UnixNano())/1e9)
	}
}

// send sends one constant metric. A label value that is not valid UTF-8
// (the store keeps what agents and admins write) leaves the series out
// rather than failing the scrape.
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labelValues ...string) {
	if m, err := prometheus.NewConstMetric(d, t, v, labelValues...); err == nil {
		ch <- m
	}
}
