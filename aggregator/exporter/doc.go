// Package exporter exposes what the aggregator stores as Prometheus series
// on its /metrics endpoint, read from the local replica once per scrape:
// every container's values (penny_container_*), the pod, owner and tenant
// each container belongs to (penny_container_info, to join on node and
// cgroup) and its requests, every node's facts (penny_node_info,
// penny_node_{allocatable,capacity}_*), and the cost rates of containers,
// pods, tenants, namespaces and nodes, with each node's idle
// (penny_*_cost_dollars_per_hour, in the currency penny_pricing_info
// names), and the cost policies' last decisions
// (penny_costpolicy_desired_replicas and their reasons and objectives).
//
// The server gathers the Collector beside its registry (Beside), through
// Gather: the families of one series per container, most of a scrape,
// are built directly rather than as a constant metric per series that a
// registry checks and sorts again. Collect builds the same families the
// ordinary way; it is the reference Gather is tested against.
package exporter
