package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
	"github.com/pennyhq/penny/wire"
)

// startWith runs a single-member replica with cfg tuned by tune.
func startWith(t *testing.T, tune func(*server.Config)) *server.Server {
	t.Helper()
	cfg := config(t.TempDir(), "127.0.0.1:0")
	tune(&cfg)
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kvhttp.NewClient("http://" + s.Addr.String()).WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// gathered returns the value of a counter or gauge of the replica's
// registry, summed over its labels matching label=value ("" for any).
func gathered(t *testing.T, s *server.Server, name, label, value string) float64 {
	t.Helper()
	mfs, err := s.Registerer().(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				v += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				v += g.GetValue()
			}
		}
	}
	return v
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowBodyIsCut trickles a request body one byte at a time over raw
// TCP: the replica cuts it once the body timeout has passed, long before
// the body would end, and nothing is written.
func TestSlowBodyIsCut(t *testing.T) {
	const timeout, every = 200 * time.Millisecond, 20 * time.Millisecond
	s := startWith(t, func(c *server.Config) { c.APILimits.BodyTimeout = timeout })
	conn, err := net.Dial("tcp", s.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 2000 // 40s at one byte every 20ms: 200 times the timeout
	fmt.Fprintf(conn, "PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)
	answered := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // the answer, until the server closes
		answered <- string(b)
	}()
	sent := 0
	for ; sent < size; sent++ {
		if _, err := conn.Write([]byte{'x'}); err != nil {
			break // closed by the server
		}
		select {
		case a := <-answered:
			if sent > 10*int(timeout/every) {
				t.Fatalf("cut after %d bytes, later than the timeout allows", sent)
			}
			if a != "" && !strings.Contains(a, "HTTP/1.1 4") {
				t.Fatalf("answer to a slow body: %q", a)
			}
			if n := gathered(t, s, "penny_api_body_timeouts_total", "", ""); n < 1 {
				t.Errorf("body timeouts counted: %v", n)
			}
			if _, err := kvhttp.NewClient("http://"+s.Addr.String()).Get(context.Background(), []byte("slow"), kvraft.ReadOptions{}); !errors.Is(err, kvhttp.ErrNotFound) {
				t.Fatalf("the slow PUT wrote: %v", err)
			}
			return
		case <-time.After(every):
		}
	}
	t.Fatalf("a body trickled one byte every %s was still read after %d bytes", every, sent)
}

// TestIngestStreamOutlivesTheBodyTimeout keeps an agent's stream open far
// longer than the body timeout, sending frames further apart than the frame
// timeout: it is never cut.
func TestIngestStreamOutlivesTheBodyTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	s := startWith(t, func(c *server.Config) {
		c.APILimits.BodyTimeout = timeout
		c.Ingest.FrameTimeout = timeout
	})
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: "node-1", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr.String()+"/v1/ingest", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-penny-frames")
	type answer struct {
		resp *http.Response
		err  error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := h2c().Do(req)
		answers <- answer{resp, err}
	}()
	t0 := time.Now().Truncate(time.Second)
	send := func(i int) {
		t.Helper()
		b, err := enc.Encode(snapshot(t0.Add(time.Duration(i)*time.Second), int64(i+1), uint64(i+1), "/a"), i == 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(b); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	send(0)
	a := <-answers
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.resp.Body.Close()
	start := time.Now()
	for i := 0; time.Since(start) < 6*timeout; i++ {
		if i > 0 {
			send(i)
		}
		ack, err := wire.ReadAck(a.resp.Body)
		if err != nil || ack.Status != wire.StatusOK || ack.Seq != uint64(i+1) {
			t.Fatalf("frame %d after %s: ack %+v, %v", i, time.Since(start), ack, err)
		}
		time.Sleep(3 * timeout / 2) // the agent's interval
	}
	pw.Close()
	if n := gathered(t, s, "penny_api_body_timeouts_total", "", "") + gathered(t, s, "penny_ingest_streams_refused_total", "", ""); n != 0 {
		t.Fatalf("timeouts counted: %v", n)
	}
}

// TestIngestTrickleIsClosed trickles a frame into an agent's stream: the
// ingest closes the stream once the frame timeout has passed.
func TestIngestTrickleIsClosed(t *testing.T) {
	const timeout, every = 200 * time.Millisecond, 20 * time.Millisecond
	s := startWith(t, func(c *server.Config) { c.Ingest.FrameTimeout = timeout })
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: "node-1", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	frame, err := enc.Encode(snapshot(time.Now().Truncate(time.Second), 1, 1, "/a"), true)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr.String()+"/v1/ingest", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-penny-frames")
	done := make(chan error, 1)
	go func() {
		resp, err := h2c().Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body) // until the stream ends
			resp.Body.Close()
		}
		done <- err
	}()
	for i := range frame {
		select {
		case <-done:
			if i > 10*int(timeout/every) {
				t.Fatalf("closed after %d bytes, later than the timeout allows", i)
			}
			eventually(t, "the close counted", func() bool {
				return gathered(t, s, "penny_ingest_streams_refused_total", "reason", "frame_timeout") >= 1
			})
			pw.Close()
			return
		case <-time.After(every):
		}
		if _, err := pw.Write(frame[i : i+1]); err != nil {
			break
		}
	}
	t.Fatalf("a frame of %d bytes trickled in whole", len(frame))
}

// TestConnectionCap holds the replica's connections at its cap: the next
// one waits until another closes.
func TestConnectionCap(t *testing.T) {
	const maxConns = 4
	s := startWith(t, func(c *server.Config) { c.APILimits.MaxConns = maxConns })
	// The health check's connection must not count: the client closes it.
	http.DefaultClient.CloseIdleConnections()
	eventually(t, "no connections", func() bool { return gathered(t, s, "penny_api_connections", "", "") == 0 })
	var held []net.Conn
	for range maxConns {
		c, err := net.Dial("tcp", s.Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	eventually(t, "connections at the cap", func() bool { return gathered(t, s, "penny_api_connections", "", "") == maxConns })
	next, err := net.Dial("tcp", s.Addr.String()) // the kernel's backlog takes it
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if _, err := io.WriteString(next, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = next.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var ne net.Error
	if n, err := next.Read(make([]byte, 1)); n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a connection over the cap was served: %d bytes, %v", n, err)
	}
	if n := gathered(t, s, "penny_api_connection_waits_total", "", ""); n < 1 {
		t.Fatalf("waits counted: %v", n)
	}
	held[0].Close()
	_ = next.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(next), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("once a connection closed: %v, %v", resp, err)
	}
	resp.Body.Close()
}

// TestKVPathsThroughTheReplica writes keys that a cleaning mux would
// redirect, through the replica's whole handler.
func TestKVPathsThroughTheReplica(t *testing.T) {
	s := startWith(t, func(*server.Config) {})
	base := "http://" + s.Addr.String()
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, key := range []string{"a/../b", "a//c", "d/", "./e"} {
		req, err := http.NewRequest(http.MethodPut, base+"/v1/kv/"+key, strings.NewReader("v"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT /v1/kv/%s = %s, want 200 and no redirect", key, resp.Status)
		}
	}
	rr, err := kvhttp.NewClient(base).RangeAll(context.Background(), nil, kvraft.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range rr.Items {
		keys = append(keys, it.Key)
	}
	if got := fmt.Sprint(keys); got != "[./e a/../b a//c d/]" {
		t.Fatalf("keys = %s", got)
	}
	// Paths that only cleaning makes KV paths are not redirected to a key.
	for _, p := range []string{"/v1//kv/f", "/v1/x/../kv/f", "/v1/kv%2Ff"} {
		req, err := http.NewRequest(http.MethodPut, base+p, strings.NewReader("v"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("PUT %s = %s, want 404 and no redirect", p, resp.Status)
		}
	}
}

// TestIngestRefusesBrowserTypes posts what a page may send cross-origin to
// the ingest: refused before it is read, and counted.
func TestIngestRefusesBrowserTypes(t *testing.T) {
	s := startWith(t, func(*server.Config) {})
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr.String()+"/v1/ingest", bytes.NewReader([]byte("PNYF")))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(b), `"error"`) {
			t.Fatalf("POST /v1/ingest as %q = %d %s, want 415", ct, resp.StatusCode, b)
		}
	}
	if n := gathered(t, s, "penny_ingest_streams_refused_total", "reason", "media_type"); n != 4 {
		t.Fatalf("refusals counted: %v", n)
	}
}
