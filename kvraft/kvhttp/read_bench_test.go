package kvhttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// The read benchmarks read a 256-byte value under a key with a slash, with
// a bounded staleness, as make bench-kv does.
var (
	benchKey     = []byte("bench/00000042")
	benchBounded = kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: 500 * time.Millisecond}
)

// BenchmarkGetBounded is a client's bounded read over loopback HTTP/1.1:
// client, server and store.
func BenchmarkGetBounded(b *testing.B) {
	n, srv := startServer(b)
	if _, err := n.Put(context.Background(), benchKey, make([]byte, 256)); err != nil {
		b.Fatal(err)
	}
	c := kvhttp.NewClient(srv.URL)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(context.Background(), benchKey, benchBounded); err != nil {
			b.Fatal(err)
		}
	}
}

// nopWriter is a ResponseWriter that keeps nothing but its headers.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkHandlerGetBounded is the handler's part of a bounded read: the
// route, the key, the options, the store and the answer's headers.
func BenchmarkHandlerGetBounded(b *testing.B) {
	n, _ := startServer(b)
	if _, err := n.Put(context.Background(), benchKey, make([]byte, 256)); err != nil {
		b.Fatal(err)
	}
	h, err := kvhttp.NewHandler(n, kvhttp.Config{})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/kv/bench%2F00000042?consistency=bounded&max_staleness=500ms", nil)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.h.Get(kvhttp.ModIndexHeader) == "" {
		b.Fatalf("no answer: headers %v", w.h)
	}
}

// cannedTransport answers every request with the same value.
type cannedTransport struct{ value string }

func (t cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	h.Set(kvhttp.IndexHeader, "12345")
	h.Set(kvhttp.ModIndexHeader, "123")
	return &http.Response{StatusCode: http.StatusOK, Header: h, ContentLength: int64(len(t.value)),
		Body: io.NopCloser(strings.NewReader(t.value)), Request: r}, nil
}

// BenchmarkClientGetBounded is the client's part of a bounded read: the
// request it builds and the answer it reads, without a transport.
func BenchmarkClientGetBounded(b *testing.B) {
	c := &kvhttp.Client{Endpoint: "http://127.0.0.1:7371", HTTP: &http.Client{Transport: cannedTransport{strings.Repeat("v", 256)}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(context.Background(), benchKey, benchBounded); err != nil {
			b.Fatal(err)
		}
	}
}
