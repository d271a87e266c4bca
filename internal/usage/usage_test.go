package usage

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/pennyhq/penny/internal/histogram"
)

func TestSetHitRatio(t *testing.T) {
	for _, tc := range []struct {
		name             string
		accesses, misses uint64
		want             *float64
	}{
		{"no access is null", 0, 0, nil},
		{"all hits", 10, 0, ptr(1)},
		{"a quarter missed", 100, 25, ptr(0.75)},
		{"more misses than accesses clamps to 0", 10, 30, ptr(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Cgroup
			c.SetHitRatio(tc.accesses, tc.misses)
			switch {
			case tc.want == nil && c.PageCacheHitRatio != nil:
				t.Fatalf("ratio %v, want null", *c.PageCacheHitRatio)
			case tc.want != nil && (c.PageCacheHitRatio == nil || math.Abs(*c.PageCacheHitRatio-*tc.want) > 1e-12):
				t.Fatalf("ratio %v, want %v", c.PageCacheHitRatio, *tc.want)
			}
		})
	}
}

func TestSetLatencyAndJSON(t *testing.T) {
	var srtt, connect histogram.Hist
	for range 50 {
		srtt.Observe(100) // the bucket of 100µs: [64, 128)
	}
	var c Cgroup
	c.Path = "/a"
	c.SetLatency(&srtt, &connect)
	if c.TCPSRTTP50Seconds == nil || *c.TCPSRTTP50Seconds < 64e-6 || *c.TCPSRTTP50Seconds >= 128e-6 {
		t.Fatalf("p50 %v, want within [64µs, 128µs)", c.TCPSRTTP50Seconds)
	}
	if c.TCPConnectP99Seconds != nil {
		t.Fatalf("connect p99 %v from an empty histogram, want null", *c.TCPConnectP99Seconds)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"path", "id", "rss_bytes", "page_cache_bytes", "page_cache_hit_ratio",
		"tcp_srtt_p50_seconds", "tcp_srtt_p99_seconds", "tcp_connect_p99_seconds", "tcp_retransmits",
		"net_rx_bytes", "net_tx_bytes", "processes", "page_cache_added_bytes", "page_cache_evicted_bytes",
		"cpu_usage_seconds", "cpu_periods", "cpu_throttled_periods", "cpu_throttled_seconds",
		"cpu_pressure_seconds", "memory_pressure_seconds", "io_pressure_seconds", "memory_working_set_bytes",
		"net_tx_loopback_bytes", "net_tx_cluster_bytes", "net_tx_internet_bytes",
		"cost_dollars_per_hour", "cpu_cost_dollars_per_hour", "memory_cost_dollars_per_hour", "network_cost_dollars_per_hour",
		"requests", "request_latency_p50_seconds", "request_latency_p99_seconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if string(m["tcp_connect_p99_seconds"]) != "null" {
		t.Errorf("empty quantile is %s, want null", m["tcp_connect_p99_seconds"])
	}
	if string(m["cpu_pressure_seconds"]) != "null" {
		t.Errorf("pressure never set is %s, want null", m["cpu_pressure_seconds"])
	}
	if string(m["cost_dollars_per_hour"]) != "null" {
		t.Errorf("cost never set is %s, want null", m["cost_dollars_per_hour"])
	}
}

func TestSetCost(t *testing.T) {
	var c Cgroup
	c.SetCost(0.25, 0.5, 0.125)
	if c.CostDollarsPerHour == nil || *c.CostDollarsPerHour != 0.875 || *c.CPUCostDollarsPerHour != 0.25 ||
		*c.MemoryCostDollarsPerHour != 0.5 || *c.NetworkCostDollarsPerHour != 0.125 {
		t.Errorf("cost %v, parts %v %v %v", c.CostDollarsPerHour, c.CPUCostDollarsPerHour, c.MemoryCostDollarsPerHour,
			c.NetworkCostDollarsPerHour)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["cost_dollars_per_hour"] != 0.875 || m["network_cost_dollars_per_hour"] != 0.125 {
		t.Errorf("JSON %s", b)
	}
	c.ClearCost()
	if c.CostDollarsPerHour != nil || c.CPUCostDollarsPerHour != nil || c.MemoryCostDollarsPerHour != nil ||
		c.NetworkCostDollarsPerHour != nil {
		t.Error("ClearCost left a cost")
	}
}

func TestSetCPUAndPressure(t *testing.T) {
	var c Cgroup
	c.SetCPU(1_500_000, 10, 4, 250_000)
	if c.CPUUsageSeconds != 1.5 || c.CPUPeriods != 10 || c.CPUThrottledPeriods != 4 || c.CPUThrottledSeconds != 0.25 {
		t.Errorf("CPU fields %+v", c)
	}
	if cores, ok := c.CPUCores(2); !ok || cores != 0.75 {
		t.Errorf("cores over 2s = %v, %v; want 0.75", cores, ok)
	}
	if _, ok := c.CPUCores(0); ok {
		t.Error("cores without an interval")
	}
	c.SetPressure(true, 0, 20_000, 3)
	if c.CPUPressureSeconds == nil || *c.CPUPressureSeconds != 0 || *c.MemoryPressureSeconds != 0.02 || *c.IOPressureSeconds != 3e-6 {
		t.Errorf("pressure %v %v %v", c.CPUPressureSeconds, c.MemoryPressureSeconds, c.IOPressureSeconds)
	}
	c.SetPressure(false, 1, 2, 3)
	if c.CPUPressureSeconds != nil || c.MemoryPressureSeconds != nil || c.IOPressureSeconds != nil {
		t.Error("pressure set where the kernel has none; want null")
	}
}

func ptr(v float64) *float64 { return &v }
