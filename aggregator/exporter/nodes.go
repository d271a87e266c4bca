package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/kvraft"
)

var (
	descNodeInfo = prometheus.NewDesc("penny_node_info",
		"A node's facts as its agent reports them, as labels (empty when unknown); always 1.",
		[]string{"node", "instance_type", "region", "zone", "capacity_type"}, nil)
	descNodeAllocCPU = prometheus.NewDesc("penny_node_allocatable_cpu_cores",
		"CPU the node lets pods use (its Node object's status.allocatable).", []string{"node"}, nil)
	descNodeAllocMem = prometheus.NewDesc("penny_node_allocatable_memory_bytes",
		"Memory the node lets pods use (its Node object's status.allocatable).", []string{"node"}, nil)
	descNodeCapCPU = prometheus.NewDesc("penny_node_capacity_cpu_cores",
		"The node's CPUs (its Node object's status.capacity, or the host's online CPUs).", []string{"node"}, nil)
	descNodeCapMem = prometheus.NewDesc("penny_node_capacity_memory_bytes",
		"The node's memory (its Node object's status.capacity, or the host's MemTotal).", []string{"node"}, nil)
)

// NodeCollector exposes every node's facts, read from the local replica
// (eventual consistency: a scrape never waits for the leader) when
// scraped: penny_node_info, and the allocatable and capacity CPU and
// memory the node's agent knows.
type NodeCollector struct {
	r       *query.Reader
	timeout time.Duration
	log     *slog.Logger
	errors  prometheus.Counter
}

// NewNodeCollector returns a collector of the nodes in store.
func NewNodeCollector(store query.Store, log *slog.Logger) (*NodeCollector, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := query.New(query.Config{Store: store})
	if err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	return &NodeCollector{r: r, timeout: 5 * time.Second, log: log,
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_node_scrape_errors_total",
			Help: "Scrapes of the nodes' facts that could not read the store."})}, nil
}

// Describe implements prometheus.Collector.
func (c *NodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeInfo, descNodeAllocCPU, descNodeAllocMem, descNodeCapCPU, descNodeCapMem,
		c.errors.Desc()} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *NodeCollector) Collect(ch chan<- prometheus.Metric) {
	defer func() { ch <- c.errors }()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, err := c.r.Nodes(ctx, query.Request{Read: kvraft.ReadOptions{Consistency: kvraft.Eventual}})
	if err != nil {
		c.errors.Inc()
		c.log.Warn("metrics scrape could not read the nodes", "err", err)
		return
	}
	for i := range res.Nodes {
		n := &res.Nodes[i]
		ch <- prometheus.MustNewConstMetric(descNodeInfo, prometheus.GaugeValue, 1,
			n.Node, n.InstanceType, n.Region, n.Zone, string(n.CapacityType))
		for _, v := range []struct {
			d *prometheus.Desc
			x float64
		}{
			{descNodeAllocCPU, float64(n.AllocatableCPUMillis) / 1000}, {descNodeAllocMem, float64(n.AllocatableMemoryBytes)},
			{descNodeCapCPU, float64(n.CapacityCPUMillis) / 1000}, {descNodeCapMem, float64(n.CapacityMemoryBytes)},
		} {
			if v.x > 0 { // unknown: no series rather than a false 0
				ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, v.x, n.Node)
			}
		}
	}
}
