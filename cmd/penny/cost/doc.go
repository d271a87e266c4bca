// Package cost is `penny cost`: it asks an aggregator's GET /v1/allocation
// what the cluster's containers cost over a window, aggregated by
// namespace, pod, controller, label, tenant, node or container, and prints
// a table with the totals, the idle cost and the efficiency (like
// kubectl-cost), the API's JSON, or CSV.
package cost
