// Package gateway serves the aggregator's REST reads for people, CLIs and
// Grafana, from the local replica with the consistency the caller asks for:
// GET /v1/containers, every container the agents report; GET /v1/pods, the
// containers grouped into Kubernetes pods (package aggregator/pods); and
// GET /v1/namespaces, the pods aggregated per namespace.
package gateway
