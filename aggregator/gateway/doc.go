// Package gateway serves the aggregator's REST reads for people, CLIs and
// Grafana, from the local replica with the consistency the caller asks for:
// GET /v1/containers, every container the agents report, each with its
// cost rate; GET /v1/pods, the containers grouped into Kubernetes pods;
// GET /v1/namespaces, the pods aggregated per namespace; and GET /v1/nodes,
// each node's facts (instance type, region, zone, capacity type,
// allocatable), prices, cost and idle per hour. It parses and checks the
// HTTP parameters and reads through package query, the read path every
// reader shares.
package gateway
