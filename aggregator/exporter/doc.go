// Package exporter exposes the containers the aggregator stores as
// Prometheus series on its /metrics endpoint, read from the local replica
// at scrape time.
package exporter
