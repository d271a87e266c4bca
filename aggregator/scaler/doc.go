// Package scaler decides how many replicas a workload should run for the
// lowest cost per 1,000 requests while its latency objective holds: the
// cost-aware scaling decisions of a CostPolicy, which the Raft leader of
// the aggregator cluster evaluates every few seconds and publishes for the
// HorizontalPodAutoscaler to carry out.
//
// An Evaluator learns, for one workload, the request rate per pod at which
// the objective held and at which it broke (over CapacityWindow), fits the
// trend of the load (over TrendWindow) and decides: enough replicas for the
// load expected within Horizon at the learned capacity, never fewer than
// the objective needs (a confirmed breach adds at least one), within the
// policy's bounds, no faster than its behaviour allows, and down only when
// every decision of the stabilization window allowed it. Each Decision says
// why, in a reason and a message for the policy's conditions.
package scaler
