package exporter

import (
	"fmt"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves g's families as promhttp does (format negotiation, its
// errors counted in reg), compressed with gzip at its fastest level by
// klauspost/compress instead of promhttp's compress/gzip at the default
// level. A scrape is mostly the per-container families: tens of MB of
// text at thousands of containers, where promhttp's gzip takes longer
// than gathering and encoding together (BenchmarkScrape: 5.0 s of an
// 8.3 s scrape at 50,000 containers), for a size within 2% of this one's.
// Clients that do not accept gzip get the text uncompressed, as before.
func Handler(g prometheus.Gatherer, reg prometheus.Registerer) (http.Handler, error) {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{Registry: reg, DisableCompression: true})
	wrap, err := gzhttp.NewWrapper(gzhttp.CompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, fmt.Errorf("gzip handler: %w", err)
	}
	return wrap(h), nil
}
