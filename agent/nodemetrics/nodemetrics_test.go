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
		PageCacheBytes: 4096, PageCacheAccesses: 10, PageCacheMisses: 1, HitRatioKnown: true}
	c.Totals = sampler.Totals{SRTT: srtt, RxBytes: 100, TxBytes: 50, Retransmits: 3}
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
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "penny_cgroup_memory_rss_bytes",
		"penny_cgroup_page_cache_hit_ratio", "penny_agent_bpf_program_run_seconds_total"); err != nil {
		t.Fatal(err)
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
