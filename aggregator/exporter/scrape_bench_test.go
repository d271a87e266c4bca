package exporter_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/kvraft"
)

// Accept headers of scrapers: Prometheus' default (OpenMetrics first,
// which the server does not enable: it answers in the text format), and
// the protobuf format it asks for first with native histograms.
const (
	acceptOpenMetrics = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75," +
		"text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	acceptProto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited," +
		"application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
)

// benchSizes are the stores the scrape benchmarks read, in containers.
var benchSizes = []int{5_000, 50_000}

// BenchmarkScrape measures the parts of one scrape of /metrics: the
// gather, the encoding of each format, gzip (as promhttp compresses:
// compress/gzip's default level; and as the server does: klauspost's
// fastest level) and the whole HTTP exchange, as the server serves it and
// as promhttp's own handler would. -benchtime=5x is enough at
// 50,000 containers.
func BenchmarkScrape(b *testing.B) {
	for _, n := range benchSizes {
		s := newMemStore()
		fillSim(b, s, n/perNode, time.Now())
		g := scrapeGatherer(b, s)
		mfs, err := g.Gather()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("containers=%d/read", n), func(b *testing.B) {
			benchRead(b, s)
		})
		b.Run(fmt.Sprintf("containers=%d/gather", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := g.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, f := range []struct {
			name string
			t    expfmt.FormatType
		}{{"text", expfmt.TypeTextPlain}, {"openmetrics", expfmt.TypeOpenMetrics}, {"proto", expfmt.TypeProtoDelim}} {
			b.Run(fmt.Sprintf("containers=%d/encode=%s", n, f.name), func(b *testing.B) {
				benchEncode(b, mfs, expfmt.NewFormat(f.t))
			})
		}
		for _, gz := range []struct {
			name  string
			level int
			new   func(io.Writer, int) (gzipWriter, error)
		}{
			{"compress/gzip", gzip.DefaultCompression, newStdGzip}, {"compress/gzip", gzip.BestSpeed, newStdGzip},
			{"klauspost", kgzip.BestSpeed, newKlauspostGzip},
		} {
			b.Run(fmt.Sprintf("containers=%d/gzip=text,%s,level=%d", n, gz.name, gz.level), func(b *testing.B) {
				benchGzip(b, mfs, gz.level, gz.new)
			})
		}
		// The whole exchange as the server serves it (exporter.Handler),
		// beside promhttp's own compression, the reference.
		served, err := exporter.Handler(g, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, hd := range []struct {
			name string
			h    http.Handler
		}{{"promhttp", promhttp.HandlerFor(g, promhttp.HandlerOpts{})}, {"served", served}} {
			for _, a := range []struct{ name, accept, want string }{
				{"text", acceptOpenMetrics, "text/plain"}, {"proto", acceptProto, "application/vnd.google.protobuf"},
			} {
				b.Run(fmt.Sprintf("containers=%d/http=%s+gzip/handler=%s", n, a.name, hd.name), func(b *testing.B) {
					benchHTTP(b, hd.h, a.accept, a.want)
				})
			}
		}
	}
}

// benchRead measures the read of the store that each gather makes (a scan
// of the whole store: the server's pod index saves it the decoding of the
// pods' metadata).
func benchRead(b *testing.B, s *memStore) {
	b.Helper()
	r, err := query.New(query.Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := r.Read(context.Background(), query.Request{Read: kvraft.ReadOptions{Consistency: kvraft.Eventual}}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEncode(b *testing.B, mfs []*dto.MetricFamily, f expfmt.Format) {
	b.Helper()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := encode(&buf, mfs, f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes")
}

func encode(w io.Writer, mfs []*dto.MetricFamily, f expfmt.Format) error {
	enc := expfmt.NewEncoder(w, f)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		return c.Close()
	}
	return nil
}

// benchGzip measures the compression of the text format at level
// (promhttp's: gzip.DefaultCompression).
// gzipWriter is what the benchmark needs of a gzip writer of either
// package.
type gzipWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

func newStdGzip(w io.Writer, level int) (gzipWriter, error) { return gzip.NewWriterLevel(w, level) }

func newKlauspostGzip(w io.Writer, level int) (gzipWriter, error) {
	return kgzip.NewWriterLevel(w, level)
}

func benchGzip(b *testing.B, mfs []*dto.MetricFamily, level int, newWriter func(io.Writer, int) (gzipWriter, error)) {
	b.Helper()
	var text bytes.Buffer
	if err := encode(&text, mfs, expfmt.NewFormat(expfmt.TypeTextPlain)); err != nil {
		b.Fatal(err)
	}
	cw := &countWriter{}
	gz, err := newWriter(cw, level)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		cw.n = 0
		gz.Reset(cw)
		if _, err := gz.Write(text.Bytes()); err != nil {
			b.Fatal(err)
		}
		if err := gz.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cw.n), "gzbytes")
}

// benchHTTP measures scrapes that accept gzip and the formats of accept,
// answered in the format want names.
func benchHTTP(b *testing.B, h http.Handler, accept, want string) {
	b.Helper()
	w := &discardResponse{header: http.Header{}}
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", accept)
		req.Header.Set("Accept-Encoding", "gzip")
		w.reset()
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	b.ReportMetric(float64(w.n), "bytes")
	if ct := w.header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
		b.Fatalf("content type %s, want %s", ct, want)
	}
}

// countWriter counts what is written to it.
type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// discardResponse is a response writer that keeps the status and size.
type discardResponse struct {
	header http.Header
	code   int
	n      int
}

func (d *discardResponse) reset() {
	clear(d.header)
	d.code, d.n = http.StatusOK, 0
}

func (d *discardResponse) Header() http.Header         { return d.header }
func (d *discardResponse) WriteHeader(code int)        { d.code = code }
func (d *discardResponse) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
