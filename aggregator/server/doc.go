// Package server runs one aggregator replica: the replicated store and, on
// one HTTP listener (HTTP/1.1 and HTTP/2, with or without TLS), the KV API,
// the ingest of agent streams, the containers gateway, the cost allocation
// over the history (GET /v1/allocation), the prices in force
// (GET /v1/pricing, kept up to date with the pricing file) and /metrics.
//
// `penny aggregator` runs it as one member of a cluster; `penny local` runs
// it in-process as a single member, so that both go through the same code.
package server
