package report

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/internal/histogram"
)

func sample() *sampler.Sample {
	var srtt, conn histogram.Hist
	for range 100 {
		srtt.Observe(40)
	}
	conn.Observe(300)
	var req histogram.LogLinear
	for range 99 {
		req.Observe(20_000) // 20 ms: [18432, 20480) µs
	}
	return &sampler.Sample{
		Time:     time.Date(2026, 11, 25, 15, 4, 5, 0, time.UTC),
		Interval: 2 * time.Second,
		Cgroups: []sampler.Cgroup{
			{Path: "/", ID: 1, Processes: 3, RSSBytes: 10 << 20, HitRatioKnown: true},
			{Path: "/system.slice/web.service", ID: 42, Processes: 2, RSSBytes: 300 << 20, PageCacheBytes: 5 << 30,
				PageCacheAccesses: 100, PageCacheMisses: 5, HitRatioKnown: true, SRTT: srtt, Connect: conn,
				Retransmits: 2, RxBytes: 4096, TxBytes: 2048, TxClassBytes: [probe.TxClasses]uint64{100, 900, 1048},
				CPUUsageUsec: 900_000, CPUPeriods: 20, CPUThrottledPeriods: 5, CPUThrottledUsec: 40_000,
				PressureKnown: true, Pressure: [cgroupfs.PressureResources]cgroupfs.Pressure{{Some: 1500, Full: 1000}, {Some: 2}, {}},
				MemoryWorkingSetBytes: 200 << 20, Requests: 100, RequestLatency: req},
		},
	}
}

// TestJSONContract pins the document `penny local --json` prints: the key
// set of every cgroup, and nulls for what had no events.
func TestJSONContract(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sample(), nil); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["time"] != "2026-11-25T15:04:05Z" || doc["interval_seconds"] != 2.0 {
		t.Errorf("header = %v %v", doc["time"], doc["interval_seconds"])
	}
	cgroups := doc["cgroups"].([]any)
	root, web := cgroups[0].(map[string]any), cgroups[1].(map[string]any)
	contract := []string{"path", "id", "rss_bytes", "page_cache_bytes", "page_cache_hit_ratio",
		"tcp_srtt_p50_seconds", "tcp_srtt_p99_seconds", "tcp_connect_p99_seconds", "tcp_retransmits",
		"net_rx_bytes", "net_tx_bytes",
		"cpu_usage_seconds", "cpu_throttled_seconds", "cpu_throttled_periods", "cpu_pressure_seconds",
		"memory_pressure_seconds", "io_pressure_seconds", "memory_working_set_bytes",
		"net_tx_loopback_bytes", "net_tx_cluster_bytes", "net_tx_internet_bytes",
		"requests", "request_latency_p50_seconds", "request_latency_p99_seconds"}
	for _, k := range contract {
		if _, ok := root[k]; !ok {
			t.Errorf("key %s missing", k)
		}
	}
	for _, k := range []string{"page_cache_hit_ratio", "tcp_srtt_p50_seconds", "tcp_srtt_p99_seconds", "tcp_connect_p99_seconds",
		"cpu_pressure_seconds", "memory_pressure_seconds", "io_pressure_seconds",
		"request_latency_p50_seconds", "request_latency_p99_seconds"} {
		if root[k] != nil {
			t.Errorf("root %s = %v, want null", k, root[k])
		}
		if web[k] == nil {
			t.Errorf("web %s = null", k)
		}
	}
	if web["path"] != "/system.slice/web.service" || web["id"] != 42.0 || web["rss_bytes"] != float64(300<<20) ||
		web["page_cache_hit_ratio"] != 0.95 || web["tcp_retransmits"] != 2.0 || web["net_rx_bytes"] != 4096.0 {
		t.Errorf("web = %v", web)
	}
	for k, want := range map[string]float64{"cpu_usage_seconds": 0.9, "cpu_periods": 20, "cpu_throttled_periods": 5,
		"cpu_throttled_seconds": 0.04, "cpu_pressure_seconds": 0.0015, "memory_pressure_seconds": 2e-6, "io_pressure_seconds": 0,
		"memory_working_set_bytes": 200 << 20, "net_tx_loopback_bytes": 100, "net_tx_cluster_bytes": 900,
		"net_tx_internet_bytes": 1048, "requests": 100} {
		if web[k] != want {
			t.Errorf("web %s = %v, want %v", k, web[k], want)
		}
	}
	p50 := web["tcp_srtt_p50_seconds"].(float64)
	if p50 < 32e-6 || p50 >= 64e-6 {
		t.Errorf("p50 = %v s, want in [32µs, 64µs)", p50)
	}
	for _, k := range []string{"request_latency_p50_seconds", "request_latency_p99_seconds"} {
		if v, ok := web[k].(float64); !ok || v < 18432e-6 || v >= 20480e-6 {
			t.Errorf("web %s = %v, want in the bucket of 20ms, [18.432ms, 20.480ms)", k, web[k])
		}
	}
	if !strings.HasSuffix(buf.String(), "}\n") || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("not one line: %q", buf.String())
	}

	empty := FromSample(&sampler.Sample{}, nil)
	b, _ := json.Marshal(empty)
	if !bytes.Contains(b, []byte(`"cgroups":[]`)) {
		t.Errorf("no cgroups must be [], got %s", b)
	}
}

func TestFormat(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct{ got, want string }{
		{Bytes(0), "0B"}, {Bytes(1023), "1023B"}, {Bytes(1536), "1.5K"}, {Bytes(300 << 20), "300M"},
		{Bytes(5 << 30), "5.0G"}, {Bytes(-2048), "-2.0K"},
		{Millicores(0), "0m"}, {Millicores(0.2504), "250m"}, {Millicores(1.5), "1500m"},
		{Seconds(nil), "-"}, {Seconds(f(42e-6)), "42µs"}, {Seconds(f(0.0123)), "12.3ms"}, {Seconds(f(2.5)), "2.50s"},
		{shortenLeft("/a/very/long/path", 8), "…ng/path"}, {shortenLeft("/short", 8), "/short"},
		{Cost(nil), "-"}, {Cost(f(0)), "0"}, {Cost(f(0.0000004)), "0"}, {Cost(f(0.0000412)), "0.000041"},
		{Cost(f(0.03124)), "0.0312"}, {Cost(f(2.154)), "2.15"}, {Cost(f(1234.5)), "1234"}, {Cost(f(-1)), "0"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestTableSortsByRSSAndFits(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, sample(), 110, 1, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 4 { // title, header, one row, "… 1 more"
		t.Fatalf("lines:\n%s", buf.String())
	}
	if !strings.Contains(lines[2], "web.service ") || !strings.Contains(lines[2], "300M") ||
		!strings.Contains(lines[2], "95.0") || !strings.Contains(lines[2], " 450m ") {
		t.Errorf("largest RSS first: %q", lines[2])
	}
	if lines[3] != "… 1 more" {
		t.Errorf("overflow line %q", lines[3])
	}
	for _, l := range lines[1:3] {
		if n := len([]rune(l)); n > 110 {
			t.Errorf("line of %d runes exceeds the width: %q", n, l)
		}
	}
}

func TestPlainRows(t *testing.T) {
	var buf bytes.Buffer
	if err := PlainHeader(&buf); err != nil {
		t.Fatal(err)
	}
	if err := Plain(&buf, sample(), nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") || !strings.HasSuffix(lines[0], "CGROUP") {
		t.Fatalf("output:\n%s", buf.String())
	}
	paths := []string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if f[0] != "2026-11-25T15:04:05Z" {
			t.Errorf("row time %q", f[0])
		}
		paths = append(paths, f[len(f)-1])
	}
	if !slices.Equal(paths, []string{"/system.slice/web.service", "/"}) {
		t.Errorf("rows by RSS: %v", paths)
	}
}

// testPricer prices a cgroup at 0.04 per core-hour and 0.005 per GiB-hour
// of RSS, in EUR.
type testPricer struct{ calls int }

func (p *testPricer) Prices() (string, func(*Cgroup, float64)) {
	p.calls++
	return "EUR", func(c *Cgroup, iv float64) {
		cores, _ := c.CPUCores(iv)
		c.SetCost(cores*0.04, float64(c.RSSBytes)/(1<<30)*0.005, 0)
	}
}

// TestPriced: a Pricer's costs reach the JSON (cost_dollars_per_hour and
// the currency), the table (COST/h and the total in the title) and the
// plain rows; one set of prices per sample.
func TestPriced(t *testing.T) {
	p := &testPricer{}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sample(), p); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cgroups []map[string]any `json:"cgroups"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// web: 0.45 cores and 300 MiB: 0.018 + 0.00146484375.
	web := doc.Cgroups[1]
	near := func(v any, want float64) bool { f, ok := v.(float64); return ok && math.Abs(f-want) < 1e-12 }
	if !near(web["cost_dollars_per_hour"], 0.01946484375) || !near(web["cpu_cost_dollars_per_hour"], 0.018) ||
		!near(web["network_cost_dollars_per_hour"], 0) || p.calls != 1 {
		t.Errorf("web %v after %d calls", web, p.calls)
	}
	if r := FromSample(sample(), p); r.Currency != "EUR" || bytes.Contains(buf.Bytes(), []byte("EUR")) {
		t.Errorf("currency %q; the JSON header must stay as it is: %s", r.Currency, buf.Bytes())
	}
	buf.Reset()
	if err := Table(&buf, sample(), 120, 0, p); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	// The root: 10 MiB, no CPU: 0.0000488. The total: 0.0195.
	if !strings.Contains(lines[0], "cost 0.0195 EUR/h") || !strings.HasSuffix(lines[1], " COST/h") ||
		!strings.HasSuffix(lines[2], " 0.0195") || !strings.HasSuffix(lines[3], " 0.000049") {
		t.Errorf("table:\n%s", buf.String())
	}
	buf.Reset()
	if err := Plain(&buf, sample(), p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), " 0.0195 /system.slice/web.service\n") {
		t.Errorf("plain:\n%s", buf.String())
	}
	// Unpriced, the column says so.
	buf.Reset()
	if err := Plain(&buf, sample(), nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), " - /system.slice/web.service\n") {
		t.Errorf("plain, unpriced:\n%s", buf.String())
	}
}
