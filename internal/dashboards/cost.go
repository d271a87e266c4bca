package dashboards

// hoursPerMonth projects a cost per hour to a month (365 × 24 / 12), as
// OpenCost does.
const hoursPerMonth = "730"

// The cluster's cost per hour: what its nodes cost, idle included.
var (
	clusterCost = "sum(" + dedup("cluster, node", "penny_node_cost_dollars_per_hour"+sel()) + ")"
	clusterIdle = "sum(" + dedup("cluster, node", "penny_node_idle_cost_dollars_per_hour"+sel()) + ")"
)

// costNote says what the cost panels' numbers are in.
const costNote = " In the currency of Penny's pricing file (penny_pricing_info{currency}), shown with a $ sign."

func costDashboard() *board {
	d := newDashboard("penny-cost", "Penny / Cost overview",
		"What the cluster costs per hour and per month, where it goes (namespaces, tenants, nodes, workloads), "+
			"how much of it is idle, and how it changed against 7 days ago.")
	d.add("Cluster",
		panel{kind: single, title: "Cost per hour", unit: "currencyUSD", width: 6, height: 5,
			description: "What the cluster's nodes cost per hour at their prices (allocatable CPU and memory), idle included." + costNote,
			queries:     []query{q(clusterCost, "per hour")}},
		panel{kind: single, title: "Projected per month", unit: "currencyUSD", width: 6, height: 5,
			description: "The cost per hour × 730 hours: what a month costs if the cluster stays as it is now." + costNote,
			queries:     []query{q(clusterCost+" * "+hoursPerMonth, "per month")}},
		panel{kind: single, title: "Idle per hour", unit: "currencyUSD", width: 6, height: 5,
			description: "The part of the nodes' cost that no container is charged (per resource, never below zero): " +
				"capacity paid for and not requested nor used." + costNote,
			queries: []query{q(clusterIdle, "idle")}},
		panel{kind: single, title: "Change against 7 days ago", unit: "percentunit", width: 6, height: 5,
			description: "The cost per hour now against the cost per hour at the same time 7 days ago (offset 7d); " +
				"empty while Prometheus holds less than 7 days of Penny's series.",
			queries: []query{q(clusterCost+" / "+"sum("+dedup("cluster, node", "penny_node_cost_dollars_per_hour"+sel()+" offset 7d")+") - 1", "change")}},
	)
	d.add("Where it goes",
		panel{title: "Cost per hour by namespace", unit: "currencyUSD",
			description: "Each namespace's pods' cost per hour: max(request, usage) of CPU and memory, and egress, at their nodes' prices." + costNote,
			queries:     []query{q(dedup("cluster, namespace", "penny_namespace_cost_dollars_per_hour"+sel()), "{{namespace}}")}},
		panel{title: "Cost per hour by tenant", unit: "currencyUSD",
			description: "Each tenant's pods' cost per hour; a pod's tenant is its label named by the aggregators' " +
				"--cost-tenant-label (cost.tenant-id), else its namespace." + costNote,
			queries: []query{q(dedup("cluster, tenant", "penny_tenant_cost_dollars_per_hour"+sel()), "{{tenant}}")}},
		panel{title: "Cost per hour by node", unit: "currencyUSD",
			description: "Each node's cost per hour at its price (instance type, region, spot or on-demand), idle included." + costNote,
			queries:     []query{q(dedup("cluster, node", "penny_node_cost_dollars_per_hour"+sel()), "{{node}}")}},
		panel{title: "Spot against on-demand", unit: "currencyUSD",
			description: "The nodes' cost per hour by capacity type (spot, on_demand; empty where the agent could not tell)." + costNote,
			queries: []query{q("sum by (capacity_type) ("+dedup("cluster, node", "penny_node_cost_dollars_per_hour"+sel())+
				" * on (cluster, node) group_left (capacity_type) "+dedup("cluster, node, capacity_type", "penny_node_info"+sel())+")",
				"{{capacity_type}}")}},
		panel{kind: bars, title: "Top workloads by cost", unit: "currencyUSD",
			description: "The 10 workloads (pods grouped by namespace and owner: ReplicaSet, StatefulSet, Job...) that cost the most per hour now." + costNote,
			queries: []query{q("topk(10, sum by (namespace, owner_kind, owner_name) ("+
				dedup(containerKey, "penny_container_cost_dollars_per_hour"+sel())+
				" * on ("+containerKey+") group_left (namespace, owner_kind, owner_name) "+
				dedup(containerKey+", namespace, owner_kind, owner_name", "penny_container_info"+sel())+"))",
				"{{namespace}}/{{owner_name}} ({{owner_kind}})")}},
		panel{title: "Idle per hour by node", unit: "currencyUSD",
			description: "Each node's idle cost per hour: what it costs and no container is charged." + costNote,
			queries:     []query{q(dedup("cluster, node", "penny_node_idle_cost_dollars_per_hour"+sel()), "{{node}}")}},
	)
	d.add("Efficiency and change",
		panel{title: "Efficiency", unit: "percentunit",
			description: "CPU used of CPU requested and memory working set of memory requested, over the containers that request it; " +
				"and the share of the nodes' cost charged to containers (1 - idle / cost). Above 100%: containers use more than they request.",
			queries: []query{
				q(efficiency("sum("+dedup(containerKey, rate("penny_container_cpu_usage_seconds_total", sel()))+" and on ("+containerKey+") "+
					dedup(containerKey, "penny_container_cpu_request_cores"+sel())+")",
					"sum("+dedup(containerKey, "penny_container_cpu_request_cores"+sel())+")"), "CPU used / requested"),
				q(efficiency("sum("+dedup(containerKey, "penny_container_memory_working_set_bytes"+sel())+" and on ("+containerKey+") "+
					dedup(containerKey, "penny_container_memory_request_bytes"+sel())+")",
					"sum("+dedup(containerKey, "penny_container_memory_request_bytes"+sel())+")"), "memory used / requested"),
				q("1 - "+clusterIdle+" / "+clusterCost, "cost charged / cost"),
			}},
		panel{title: "Change against 7 days ago by namespace", unit: "currencyUSD",
			description: "Each namespace's cost per hour now minus its cost per hour at the same time 7 days ago (offset 7d): " +
				"above zero it costs more. Empty for a namespace Prometheus has no series of 7 days ago." + costNote,
			queries: []query{q(dedup("cluster, namespace", "penny_namespace_cost_dollars_per_hour"+sel())+" - "+
				dedup("cluster, namespace", "penny_namespace_cost_dollars_per_hour"+sel()+" offset 7d"), "{{namespace}}")}},
	)
	return d
}

// efficiency is used / requested.
func efficiency(used, requested string) string { return used + " / " + requested }
