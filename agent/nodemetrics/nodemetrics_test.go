package nodemetrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/testenv"
)

func testSample() *sampler.Sample {
	var srtt histogram.Hist
	srtt.Observe(1)    // bucket 0
	srtt.Observe(40)   // bucket 5: [32, 64)µs
	srtt.Observe(3000) // bucket 11: [2048, 4096)µs
	c := sampler.Cgroup{Path: "/system.slice/web.service", ID: 7, Processes: 2, RSSBytes: 1 << 20,
		PageCacheBytes: 4096, PageCacheAccesses: 10, PageCacheMisses: 1, HitRatioKnown: true,
		PressureKnown: true, MemoryWorkingSetBytes: 3 << 20}
	var req histogram.LogLinear
	req.Observe(20_000) // log2 bucket 14: [16384, 32768)µs
	c.Totals = sampler.Totals{SRTT: srtt, RxBytes: 100, TxBytes: 50, Retransmits: 3, Requests: 2, RequestLatency: req,
		TxClassBytes: [probe.TxClasses]uint64{10, 15, 25}, CPUUsageUsec: 2_500_000, CPUPeriods: 40,
		CPUThrottledPeriods: 4, CPUThrottledUsec: 120_000,
		Pressure: [cgroupfs.PressureResources]cgroupfs.Pressure{{Some: 30_000, Full: 10_000}, {Some: 5}, {}}}
	return &sampler.Sample{Time: time.Now(), Interval: time.Second, Cgroups: []sampler.Cgroup{c},
		Drops: map[string]uint64{"memory": 0}}
}

func newCollector(s *sampler.Sample) *Collector {
	stats := func() ([]probe.ProgramStat, error) {
		return []probe.ProgramStat{{Name: "rss_stat", RunTime: 2e9, RunCount: 10}}, nil
	}
	return NewCollector(func() *sampler.Sample { return s }, stats, nil)
}

func TestCollectorLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(newCollector(testSample()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestCollectorValues(t *testing.T) {
	c := newCollector(testSample())
	want := `
# HELP penny_cgroup_memory_rss_bytes Resident memory (anonymous, file and shmem pages) of the cgroup's processes.
# TYPE penny_cgroup_memory_rss_bytes gauge
penny_cgroup_memory_rss_bytes{cgroup="/system.slice/web.service"} 1.048576e+06
# HELP penny_cgroup_page_cache_hit_ratio Share of page cache pages accessed in the last interval that were already cached.
# TYPE penny_cgroup_page_cache_hit_ratio gauge
penny_cgroup_page_cache_hit_ratio{cgroup="/system.slice/web.service"} 0.9
# HELP penny_agent_bpf_program_run_seconds_total Time the kernel spent running the eBPF program (while statistics are enabled).
# TYPE penny_agent_bpf_program_run_seconds_total counter
penny_agent_bpf_program_run_seconds_total{program="rss_stat"} 2
# HELP penny_cgroup_cpu_usage_seconds_total CPU time of the cgroup's own tasks (its child cgroups' excluded), from cgroupfs.
# TYPE penny_cgroup_cpu_usage_seconds_total counter
penny_cgroup_cpu_usage_seconds_total{cgroup="/system.slice/web.service"} 2.5
# HELP penny_cgroup_cpu_cfs_throttled_seconds_total Time the cgroup's tasks were throttled by its CPU limit.
# TYPE penny_cgroup_cpu_cfs_throttled_seconds_total counter
penny_cgroup_cpu_cfs_throttled_seconds_total{cgroup="/system.slice/web.service"} 0.12
# HELP penny_cgroup_pressure_cpu_waiting_seconds_total Time at least one of the cgroup's tasks waited for a CPU (PSI some), where the kernel reports pressure stall information.
# TYPE penny_cgroup_pressure_cpu_waiting_seconds_total counter
penny_cgroup_pressure_cpu_waiting_seconds_total{cgroup="/system.slice/web.service"} 0.03
# HELP penny_cgroup_memory_working_set_bytes Memory usage minus inactive file pages of the cgroup's memory cgroup (its children's excluded), as kubelet computes the working set.
# TYPE penny_cgroup_memory_working_set_bytes gauge
penny_cgroup_memory_working_set_bytes{cgroup="/system.slice/web.service"} 3.145728e+06
# HELP penny_cgroup_network_egress_bytes_total IP bytes sent by the cgroup's sockets, by destination: loopback, cluster (private and link-local addresses) or internet; they add up to penny_cgroup_network_transmit_bytes_total.
# TYPE penny_cgroup_network_egress_bytes_total counter
penny_cgroup_network_egress_bytes_total{cgroup="/system.slice/web.service",class="cluster"} 15
penny_cgroup_network_egress_bytes_total{cgroup="/system.slice/web.service",class="internet"} 25
penny_cgroup_network_egress_bytes_total{cgroup="/system.slice/web.service",class="loopback"} 10
# HELP penny_cgroup_requests_total Requests the cgroup's server sockets answered: HTTP/1 request lines, HTTP/2 client streams, request/response turns of other TCP protocols (docs/requests.md).
# TYPE penny_cgroup_requests_total counter
penny_cgroup_requests_total{cgroup="/system.slice/web.service"} 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "penny_cgroup_memory_rss_bytes",
		"penny_cgroup_page_cache_hit_ratio", "penny_agent_bpf_program_run_seconds_total",
		"penny_cgroup_cpu_usage_seconds_total", "penny_cgroup_cpu_cfs_throttled_seconds_total",
		"penny_cgroup_pressure_cpu_waiting_seconds_total", "penny_cgroup_memory_working_set_bytes",
		"penny_cgroup_network_egress_bytes_total", "penny_cgroup_requests_total"); err != nil {
		t.Fatal(err)
	}
	// Without pressure stall information, no pressure series.
	s := testSample()
	s.Cgroups[0].PressureKnown = false
	if n := testutil.CollectAndCount(newCollector(s), "penny_cgroup_pressure_cpu_waiting_seconds_total"); n != 0 {
		t.Errorf("%d pressure series where the kernel has none", n)
	}
	if n := testutil.CollectAndCount(NewCollector(func() *sampler.Sample { return nil }, nil, nil)); n != 0 {
		t.Errorf("%d metrics before the first sample", n)
	}
}

func TestLatencyHistogramBuckets(t *testing.T) {
	var h histogram.Hist
	h.Observe(1)
	h.Observe(40)
	h.Observe(3000)
	var m dto.Metric
	if err := latencyHistogram(descSRTT, &h, "/x").Write(&m); err != nil {
		t.Fatal(err)
	}
	got := map[float64]uint64{}
	for _, b := range m.Histogram.Bucket {
		got[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	// 1µs lies below 16µs, 40µs below 64µs, 3000µs below 4096µs.
	for le, want := range map[float64]uint64{16e-6: 1, 32e-6: 1, 64e-6: 2, 2048e-6: 2, 4096e-6: 3, 33.554432: 3} {
		if got[le] != want {
			t.Errorf("le=%v: %d, want %d", le, got[le], want)
		}
	}
	if m.Histogram.GetSampleCount() != 3 || m.Histogram.GetSampleSum() != 3041e-6 {
		t.Errorf("count %d sum %v", m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum())
	}
}

// TestPromtool checks the served exposition with Prometheus's own checker.
func TestPromtool(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool", "apt-get install prometheus")
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(testSample()))
	srv := httptest.NewServer(Handler(reg, func() error { return nil }))
	defer srv.Close()
	body := get(t, srv.URL+"/metrics", http.StatusOK)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestHealthz(t *testing.T) {
	var healthy error
	srv := httptest.NewServer(Handler(prometheus.NewRegistry(), func() error { return healthy }))
	defer srv.Close()
	if body := get(t, srv.URL+"/healthz", http.StatusOK); body != "ok\n" {
		t.Errorf("body %q", body)
	}
	healthy = errors.New("last sample is 9s old")
	if body := get(t, srv.URL+"/healthz", http.StatusServiceUnavailable); !strings.Contains(body, "9s old") {
		t.Errorf("body %q", body)
	}
}

func get(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, status, b)
	}
	return string(b)
}
