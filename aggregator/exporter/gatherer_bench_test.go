package exporter_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/exporter"
)

// scrapeGatherer is what /metrics gathers for a store, as the server
// serves it: the collector beside a registry.
func scrapeGatherer(tb testing.TB, s *memStore) prometheus.Gatherer {
	tb.Helper()
	c, err := exporter.New(exporter.Config{Store: s})
	if err != nil {
		tb.Fatal(err)
	}
	return exporter.Beside(prometheus.NewRegistry(), c)
}
