package exporter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
)

// The cost rates. Their names say dollars, as OpenCost's and Kubecost's
// do; the currency is the pricing's, which penny_pricing_info{currency}
// names.
var (
	descContainerCost = desc("cost_dollars_per_hour",
		"Cost per hour of the cgroup as it went over the agent's last interval: max(request, usage) of CPU and memory and "+
			"its egress, at its node's prices, in the currency of penny_pricing_info.")
	descPodCost = prometheus.NewDesc("penny_pod_cost_dollars_per_hour",
		"Cost per hour of the pod's containers as they went over the agents' last interval, in the currency of penny_pricing_info.",
		[]string{"namespace", "pod", "node"}, nil)
	descNamespaceCost = prometheus.NewDesc("penny_namespace_cost_dollars_per_hour",
		"Cost per hour of the namespace's pods as they went over the agents' last interval, in the currency of penny_pricing_info.",
		[]string{"namespace"}, nil)
	descPodPer1k = prometheus.NewDesc("penny_pod_cost_per_1k_requests",
		"Cost of 1,000 of the requests the pod answered over the agents' last interval: its cost per hour over its requests per second "+
			"(times 3.6), in the currency of penny_pricing_info; absent without requests.",
		[]string{"namespace", "pod", "node"}, nil)
	descWorkloadPer1k = prometheus.NewDesc("penny_workload_cost_per_1k_requests",
		"Cost of 1,000 requests of a workload (the pods of one controller, a Deployment for its ReplicaSets' pods): their cost per hour "+
			"over their requests per second, summed first, in the currency of penny_pricing_info; absent without requests.",
		[]string{"namespace", "owner_kind", "owner_name"}, nil)
	descNamespacePer1k = prometheus.NewDesc("penny_namespace_cost_per_1k_requests",
		"Cost of 1,000 requests of the namespace's pods: their cost per hour over their requests per second, summed first, "+
			"in the currency of penny_pricing_info; absent without requests.",
		[]string{"namespace"}, nil)
	descNodeCost = prometheus.NewDesc("penny_node_cost_dollars_per_hour",
		"Cost per hour of what the node offers its containers (allocatable CPU and memory, else its capacity) at its prices, "+
			"in the currency of penny_pricing_info; absent when neither is known.",
		[]string{"node"}, nil)
	descNodeIdle = prometheus.NewDesc("penny_node_idle_cost_dollars_per_hour",
		"The node's cost per hour that its containers are not charged, per resource and never below zero, "+
			"in the currency of penny_pricing_info.",
		[]string{"node"}, nil)
)

func describeCosts(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descContainerCost, descPodCost, descNamespaceCost, descNodeCost, descNodeIdle,
		descPodPer1k, descWorkloadPer1k, descNamespacePer1k} {
		ch <- d
	}
}

// collectContainerCosts exposes the cost rate of each priced container.
func collectContainerCosts(ch chan<- prometheus.Metric, cs []model.Container) {
	for i := range cs {
		c := &cs[i]
		if c.CostDollarsPerHour != nil {
			send(ch, descContainerCost, prometheus.GaugeValue, *c.CostDollarsPerHour, c.Node, c.Path)
		}
	}
}

// collectCosts exposes the cost rates of one read but the containers':
// each pod, workload, tenant and namespace, and each node's cost and idle.
func collectCosts(ch chan<- prometheus.Metric, s *query.Snapshot, tenantLabel string) {
	ps := newest(pods.Group(s.Containers, pods.Query{}))
	for i := range ps {
		p := &ps[i]
		if v, ok := p.Metrics[pods.CostDollarsPerHour]; ok {
			send(ch, descPodCost, prometheus.GaugeValue, v, p.Namespace, p.Name, p.Node)
		}
		if v, ok := p.Metrics[pods.CostPer1kRequests]; ok {
			send(ch, descPodPer1k, prometheus.GaugeValue, v, p.Namespace, p.Name, p.Node)
		}
	}
	collectWorkloadPer1k(ch, ps)
	collectTenantCosts(ch, ps, tenantLabel)
	for _, ns := range pods.Namespaces(ps) {
		if v, ok := ns.Metrics[pods.CostDollarsPerHour]; ok {
			send(ch, descNamespaceCost, prometheus.GaugeValue, v, ns.Name)
		}
		if v, ok := ns.Metrics[pods.CostPer1kRequests]; ok {
			send(ch, descNamespacePer1k, prometheus.GaugeValue, v, ns.Name)
		}
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.CostDollarsPerHour != nil {
			send(ch, descNodeCost, prometheus.GaugeValue, *n.CostDollarsPerHour, n.Node)
			send(ch, descNodeIdle, prometheus.GaugeValue, *n.IdleCostDollarsPerHour, n.Node)
		}
	}
}

// newest keeps, of pods with the same namespace and name (a pod deleted
// and created again, whose old series have not expired yet), the one
// sampled last: one series per pod, and its cost counted once. ps is
// sorted by namespace and name.
func newest(ps []pods.Pod) []pods.Pod {
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Namespace == p.Namespace && out[n-1].Name == p.Name {
			if p.Time.After(out[n-1].Time) {
				out[n-1] = p
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// collectWorkloadPer1k exposes each workload's cost of 1,000 requests: its
// pods' cost per hour and request rate, each summed, then divided.
func collectWorkloadPer1k(ch chan<- prometheus.Metric, ps []pods.Pod) {
	type key struct{ ns, kind, name string }
	type sums struct{ cost, rps float64 }
	by := map[key]*sums{}
	var order []key
	for i := range ps {
		p := &ps[i]
		kind, name := cost.Controller(p.OwnerKind, p.OwnerName, p.Labels)
		c, ok1 := p.Metrics[pods.CostDollarsPerHour]
		r, ok2 := p.Metrics[pods.RequestsPerSecond]
		if name == "" || !ok1 || !ok2 {
			continue
		}
		k := key{p.Namespace, kind, name}
		if by[k] == nil {
			by[k] = &sums{}
			order = append(order, k)
		}
		by[k].cost += c
		by[k].rps += r
	}
	for _, k := range order {
		if s := by[k]; s.rps > 0 {
			send(ch, descWorkloadPer1k, prometheus.GaugeValue, s.cost/(s.rps*3.6), k.ns, k.kind, k.name)
		}
	}
}
