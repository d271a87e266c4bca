// Package gateway serves the aggregator's REST reads for people, CLIs and
// Grafana: GET /v1/containers, every container the agents report, read from
// the local replica with the consistency the caller asks for.
package gateway
