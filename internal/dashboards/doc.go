// Package dashboards defines Penny's Grafana dashboards as code, with the
// Grafana Foundation SDK: the cost overview, a workload's pods, a node's
// pods and price, and Penny itself. hack/dashboards writes them as JSON
// under charts/penny/dashboards/, which the chart ships as ConfigMaps for
// Grafana's dashboard sidecar; a test fails when the committed JSON is not
// what this package builds.
//
// Every panel queries the datasource variable, filters on the cluster
// variable, reads Penny's own series only, takes the maximum over the
// aggregator replicas of what each of them exports for the whole store
// (every replica exports every container), rates over $__rate_interval,
// and has a unit and a description. Lint checks these rules on any
// dashboard JSON; Queries lists a dashboard's PromQL with its variables
// expanded, for running them on a real Prometheus.
package dashboards
