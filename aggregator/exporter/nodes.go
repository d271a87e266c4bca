package exporter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/query"
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

// describeNodes sends the descriptions of the nodes' facts.
func describeNodes(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeInfo, descNodeAllocCPU, descNodeAllocMem, descNodeCapCPU, descNodeCapMem} {
		ch <- d
	}
}

// collectNodes exposes every node's facts: penny_node_info, and the
// allocatable and capacity CPU and memory the node's agent knows.
func collectNodes(ch chan<- prometheus.Metric, nodes []query.Node) {
	for i := range nodes {
		n := &nodes[i]
		send(ch, descNodeInfo, prometheus.GaugeValue, 1,
			n.Node, n.InstanceType, n.Region, n.Zone, string(n.CapacityType))
		for _, v := range []struct {
			d *prometheus.Desc
			x float64
		}{
			{descNodeAllocCPU, float64(n.AllocatableCPUMillis) / 1000}, {descNodeAllocMem, float64(n.AllocatableMemoryBytes)},
			{descNodeCapCPU, float64(n.CapacityCPUMillis) / 1000}, {descNodeCapMem, float64(n.CapacityMemoryBytes)},
		} {
			if v.x > 0 { // unknown: no series rather than a false 0
				send(ch, v.d, prometheus.GaugeValue, v.x, n.Node)
			}
		}
	}
}
