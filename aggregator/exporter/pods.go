package exporter

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
)

// The Kubernetes identity of the containers, as an info series to join
// on (node, cgroup) the way kube-state-metrics' kube_pod_info is joined,
// their requests, and the cost of each tenant.
var (
	descContainerInfo = newDesc("penny_container_info",
		"The pod and container a cgroup belongs to, its pod's owner and its tenant (the pod's tenant label, else its namespace), "+
			"as labels to join on node and cgroup; always 1, absent outside pods.",
		append(labels[:len(labels):len(labels)], "namespace", "pod", "container", "owner_kind", "owner_name", "tenant"))
	descRequestCPU    = desc("cpu_request_cores", "CPU the container requests (its pod's spec); absent when it requests none.")
	descRequestMemory = desc("memory_request_bytes", "Memory the container requests (its pod's spec); absent when it requests none.")
	descTenantCost    = prometheus.NewDesc("penny_tenant_cost_dollars_per_hour",
		"Cost per hour of the tenant's pods (the pod label of --cost-tenant-label, else the namespace) as they went over "+
			"the agents' last interval, in the currency of penny_pricing_info.",
		[]string{"tenant"}, nil)
)

func describePods(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descContainerInfo, descRequestCPU, descRequestMemory, descTenantCost} {
		ch <- d
	}
}

// collectContainerPod exposes the Kubernetes identity and requests of one
// container; nothing outside pods.
func collectContainerPod(ch chan<- prometheus.Metric, c *model.Container, tenantLabel string) {
	k := c.Kubernetes
	if k == nil {
		return
	}
	p := &k.Pod
	send(ch, descContainerInfo, prometheus.GaugeValue, 1, c.Node, c.Path,
		p.Namespace, p.Name, k.Container.Name, p.OwnerKind, p.OwnerName, tenant(p.Labels, p.Namespace, tenantLabel))
	if m := k.Container.RequestCPUMillis; m > 0 {
		send(ch, descRequestCPU, prometheus.GaugeValue, float64(m)/1000, c.Node, c.Path)
	}
	if b := k.Container.RequestMemory; b > 0 {
		send(ch, descRequestMemory, prometheus.GaugeValue, float64(b), c.Node, c.Path)
	}
}

// collectTenantCosts sums the cost of ps (one entry per pod) by tenant.
func collectTenantCosts(ch chan<- prometheus.Metric, ps []pods.Pod, tenantLabel string) {
	sums := map[string]float64{}
	for i := range ps {
		p := &ps[i]
		if v, ok := p.Metrics[pods.CostDollarsPerHour]; ok {
			sums[tenant(p.Labels, p.Namespace, tenantLabel)] += v
		}
	}
	names := make([]string, 0, len(sums))
	for t := range sums {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		send(ch, descTenantCost, prometheus.GaugeValue, sums[t], t)
	}
}

// tenant is the value of a pod's tenant label, else its namespace, as the
// cost allocation has it (cost.Tenant).
func tenant(podLabels map[string]string, namespace, key string) string {
	if t := podLabels[key]; t != "" {
		return t
	}
	return namespace
}
