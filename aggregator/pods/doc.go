// Package pods turns containers into pods and namespaces: the values that
// the custom metrics API serves and `penny top pods` prints.
//
// A pod's value sums its containers' for bytes, rates, CPU cores and cost
// per hour (cost_dollars_per_hour, each container's cost rate as package
// query prices it) and
// takes the worst container's for latencies and the throttled ratio (the
// highest) and the hit ratio (the lowest); a namespace aggregates its pods
// by the same rules. Only containers whose
// agent attributed them to a pod count, and a value with no data behind it
// is absent, never zero: a pod without TCP events has no latency.
package pods
