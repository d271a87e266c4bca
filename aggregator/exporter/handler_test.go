package exporter_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/exporter"
)

// TestHandler serves a scrape of simulated nodes with and without gzip, in
// the text and protobuf formats: compressed when the client accepts gzip,
// and the same bytes once decompressed as uncompressed.
func TestHandler(t *testing.T) {
	s := newMemStore()
	fillSim(t, s, 2, time.Now())
	h, err := exporter.Handler(scrapeGatherer(t, s), nil)
	if err != nil {
		t.Fatal(err)
	}
	scrape := func(t *testing.T, accept, encoding string) (*http.Response, []byte) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", accept)
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		resp := rec.Result()
		body := io.Reader(resp.Body)
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return resp, b
	}
	for _, tc := range []struct {
		name, accept, contentType string
	}{
		{"text", acceptOpenMetrics, "text/plain"},
		{"proto", acceptProto, "application/vnd.google.protobuf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain, want := scrape(t, tc.accept, "")
			if ce := plain.Header.Get("Content-Encoding"); ce != "" {
				t.Fatalf("Content-Encoding %q without Accept-Encoding", ce)
			}
			zipped, got := scrape(t, tc.accept, "gzip, deflate")
			if ce := zipped.Header.Get("Content-Encoding"); ce != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", ce)
			}
			for _, r := range []*http.Response{plain, zipped} {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
					t.Fatalf("Content-Type %q, want %s", ct, tc.contentType)
				}
			}
			if len(want) < 1000 || !strings.Contains(string(want), "penny_container_memory_rss_bytes") {
				t.Fatalf("scrape of %d bytes without the containers' RSS", len(want))
			}
			// Gauges of time (the scrape's own) may differ between the two
			// scrapes: compare sizes within a percent, and the families.
			if d := len(got) - len(want); d*100 > len(want) || -d*100 > len(want) {
				t.Fatalf("gzipped scrape decompresses to %d bytes, uncompressed %d", len(got), len(want))
			}
		})
	}
}
