package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

// start runs a single-member replica on addr ("127.0.0.1:0" for any port)
// with its data in dir.
func start(t *testing.T, dir, addr string) *server.Server {
	t.Helper()
	s, err := server.Start(context.Background(), config(dir, addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// config is a single-member replica's configuration.
func config(dir, addr string) server.Config {
	return server.Config{
		Store: kvraft.Config{ID: 1, DataDir: dir, TickInterval: 10 * time.Millisecond,
			InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}}},
		SingleMember: true, Listen: addr, RequestTimeout: 5 * time.Second, ShutdownGrace: time.Second,
	}
}

// h2c is an HTTP/2 client without TLS, as agents use.
func h2c() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func containers(t *testing.T, base, params string) *query.Containers {
	t.Helper()
	resp, err := h2c().Get(base + gateway.ContainersPath + "?" + params)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c query.Containers
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func snapshot(at time.Time, rss int64, rx uint64, paths ...string) *wire.Snapshot {
	s := &wire.Snapshot{Time: at, Interval: time.Second}
	for i, p := range paths {
		s.Series = append(s.Series, wire.SeriesState{Path: p, ID: uint64(i + 1),
			Values: wire.Values{Processes: 1, RSSBytes: rss + int64(i), RxBytes: rx, RxPackets: rx / 100}})
	}
	return s
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShipperToStoreThroughARestart(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, "127.0.0.1:0")
	base := "http://" + s.Addr.String()
	reg := prometheus.NewRegistry()
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := shipper.New(shipper.Config{URLs: []string{base}, Registerer: reg,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, enc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sh.Run(ctx)

	t0 := time.Now().Truncate(time.Second)
	var rx uint64
	for i := range 5 {
		rx += 1000
		if err := sh.Submit(snapshot(t0.Add(time.Duration(i)*time.Second), 100, rx, "/a", "/b")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "five frames acknowledged", func() bool { return testutil.ToFloat64(acked(reg)) == 5 })
	c := containers(t, base, "node=node-1&consistency=linearizable")
	if len(c.Containers) != 2 || c.Containers[0].Path != "/a" || c.Containers[0].RSSBytes != 100 ||
		c.Containers[0].NetRxBytes != 1000 {
		t.Fatalf("containers: %+v", c.Containers)
	}

	// The replica goes away; the agent keeps sampling into its buffer.
	addr := s.Addr.String()
	s.Stop()
	for i := 5; i < 15; i++ {
		rx += 1000
		if err := sh.Submit(snapshot(t0.Add(time.Duration(i)*time.Second), 200, rx, "/a", "/b")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	// It comes back from its data dir; the buffer covers the gap.
	s2 := start(t, dir, addr)
	waitFor(t, "the backlog acknowledged", func() bool { return testutil.ToFloat64(acked(reg)) >= 15 })
	c = containers(t, "http://"+s2.Addr.String(), "node=node-1&consistency=linearizable&window=2m")
	if got := c.Containers[0]; got.RSSBytes != 200 || got.NetRxBytes != rx-1000 {
		t.Fatalf("after the restart: %+v (want rx over the window %d)", got, rx-1000)
	}
	if testutil.ToFloat64(dropped(reg)) != 0 {
		t.Errorf("%v frames dropped", testutil.ToFloat64(dropped(reg)))
	}
}

func acked(reg *prometheus.Registry) prometheus.Collector {
	return find(reg, "penny_agent_frames_acked_total")
}
func dropped(reg *prometheus.Registry) prometheus.Collector {
	return find(reg, "penny_agent_frames_dropped_total")
}

// find returns a registered counter by name, as a collector.
func find(reg *prometheus.Registry, name string) prometheus.Collector {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			v := mf.GetMetric()[0].GetCounter().GetValue()
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "copy"})
			c.Add(v)
			return c
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "missing"})
}

// post streams raw bytes to /v1/ingest and returns the acks read until the
// server closes the stream.
func post(t *testing.T, base string, body []byte) []wire.Ack {
	t.Helper()
	resp, err := h2c().Post(base+"/v1/ingest", "application/x-penny-frames", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acks []wire.Ack
	for {
		a, err := wire.ReadAck(resp.Body)
		if errors.Is(err, io.EOF) {
			return acks
		}
		if err != nil {
			t.Fatalf("read ack: %v", err)
		}
		acks = append(acks, a)
	}
}

func frames(t *testing.T, enc *wire.Encoder, snaps ...*wire.Snapshot) [][]byte {
	t.Helper()
	var out [][]byte
	for i, s := range snaps {
		b, err := enc.Encode(s, i == 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestBadInputChangesNothing(t *testing.T) {
	s := start(t, t.TempDir(), "127.0.0.1:0")
	base := "http://" + s.Addr.String()
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: "node-1", Incarnation: 7})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Truncate(time.Second)
	f := frames(t, enc, snapshot(t0, 1, 1, "/a"), snapshot(t0.Add(time.Second), 2, 2, "/a"),
		snapshot(t0.Add(2*time.Second), 3, 3, "/a"))
	acks := post(t, base, f[0])
	if len(acks) != 1 || acks[0].Status != wire.StatusOK || acks[0].Applied != 1 {
		t.Fatalf("keyframe acks: %+v", acks)
	}
	before := containers(t, base, "consistency=linearizable")

	other, _ := wire.NewEncoder(wire.EncoderConfig{AgentID: "node-2"})
	otherFrame := frames(t, other, snapshot(t0, 9, 9, "/x"))[0]
	oversized := append([]byte(nil), f[1]...)
	oversized[32], oversized[33] = 0x7f, 0xff // body length far over the limit
	corrupt := append([]byte(nil), f[1]...)
	corrupt[len(corrupt)-1] ^= 0xff // checksum mismatch

	tests := []struct {
		name   string
		body   []byte
		status wire.Status // of the first ack, 0 when none is expected
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\nhello"), 0},
		{"truncated frame", f[1][:len(f[1])-3], 0},
		{"oversized frame", oversized, 0},
		{"corrupt checksum", corrupt, 0},
		{"replayed keyframe", f[0], wire.StatusDuplicate},
		{"out of order", f[2], wire.StatusGap},
		{"two agents on one stream", append(append([]byte(nil), f[0]...), otherFrame...), wire.StatusDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acks := post(t, base, tt.body)
			if tt.status == 0 && len(acks) != 0 {
				t.Fatalf("acks %+v, want none", acks)
			}
			if tt.status != 0 && (len(acks) == 0 || acks[0].Status != tt.status) {
				t.Fatalf("acks %+v, want %v first", acks, tt.status)
			}
			after := containers(t, base, "consistency=linearizable")
			// As JSON: the values, not the addresses, of pointer fields.
			if b, a := mustJSON(t, before.Containers), mustJSON(t, after.Containers); a != b {
				t.Fatalf("store changed:\n%+v\n%+v", before.Containers, after.Containers)
			}
		})
	}
	// The replica is still up, and the stream goes on where it was.
	acks = post(t, base, append(append([]byte(nil), f[1]...), f[2]...))
	if len(acks) == 0 || acks[len(acks)-1].Applied != 3 {
		t.Fatalf("in-order frames after the bad ones: %+v", acks)
	}
	c := containers(t, base, "consistency=linearizable")
	if len(c.Containers) != 1 || c.Containers[0].RSSBytes != 3 {
		t.Fatalf("after: %+v", c.Containers)
	}
	// Each refusal is counted by reason.
	resp, err := h2c().Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`penny_ingest_frames_rejected_total{reason="corrupt"} 3`,
		`penny_ingest_frames_rejected_total{reason="too_large"} 1`, `penny_ingest_frames_rejected_total{reason="duplicate"} 2`,
		`penny_ingest_frames_rejected_total{reason="gap"} 1`, `penny_ingest_frames_rejected_total{reason="agent_mismatch"} 1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestMetricsServesExtraGatherers checks that /metrics serves the
// gatherers of the config and the collectors registered on Registerer,
// beside the replica's own families.
func TestMetricsServesExtraGatherers(t *testing.T) {
	extra := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "extra_gatherer_value", Help: "test"})
	extra.MustRegister(g)
	g.Set(42)
	cfg := config(t.TempDir(), "127.0.0.1:0")
	cfg.Gatherers = []prometheus.Gatherer{extra}
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "extra_registered_total", Help: "test"})
	if err := s.Registerer().Register(c); err != nil {
		t.Fatal(err)
	}
	c.Add(7)
	resp, err := h2c().Get("http://" + s.Addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s\n%s", resp.Status, m)
	}
	for _, want := range []string{"extra_gatherer_value 42", "extra_registered_total 7", "go_goroutines ", "penny_kvraft_is_leader "} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
