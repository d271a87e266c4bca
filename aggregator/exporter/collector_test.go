package exporter_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/testenv"
)

func TestCollector(t *testing.T) {
	n := kvtest.Start(t)
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := &model.NodeState{Node: "node-a"}
	p, err := model.PlanUpdate(st, &model.Update{Node: "node-a", Incarnation: 1, Seq: 1, Time: t0, Interval: time.Second,
		Keyframe: true, Changed: []model.SeriesState{
			{Path: "/web", RSSBytes: 100, WorkingSetBytes: 80, PressureKnown: true, Total: model.Counters{RxBytes: 42,
				TxBytes: 60, TxLoopbackBytes: 10, TxClusterBytes: 20, TxInternetBytes: 30, CPUUsageUsec: 1_500_000,
				CPUPeriods: 10, CPUThrottledPeriods: 2, CPUThrottledUsec: 250_000, CPUPressureSomeUsec: 4000, IOPressureSomeUsec: 9,
				Requests: 3}, RequestLatencyLogLinear: requestLatency(20_000, 20_000, 20_000)},
			{Path: "/nopsi", RSSBytes: 1, Total: model.Counters{CPUUsageUsec: 1}},
		}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.Txn(context.Background(), model.Txn("node-a", p.Expect, p.Ops)); err != nil || !res.Succeeded {
		t.Fatal(res, err)
	}
	c, err := exporter.New(exporter.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP penny_container_memory_rss_bytes Resident memory of the cgroup's processes.
# TYPE penny_container_memory_rss_bytes gauge
penny_container_memory_rss_bytes{cgroup="/nopsi",node="node-a"} 1
penny_container_memory_rss_bytes{cgroup="/web",node="node-a"} 100
# HELP penny_container_network_receive_bytes_total IP bytes received since the agent started.
# TYPE penny_container_network_receive_bytes_total counter
penny_container_network_receive_bytes_total{cgroup="/nopsi",node="node-a"} 0
penny_container_network_receive_bytes_total{cgroup="/web",node="node-a"} 42
# HELP penny_container_cpu_usage_seconds_total CPU time of the cgroup's own tasks (its child cgroups' excluded) since the agent started.
# TYPE penny_container_cpu_usage_seconds_total counter
penny_container_cpu_usage_seconds_total{cgroup="/nopsi",node="node-a"} 1e-06
penny_container_cpu_usage_seconds_total{cgroup="/web",node="node-a"} 1.5
# HELP penny_container_cpu_cfs_throttled_periods_total Enforcement periods of the cgroup's CPU limit at whose end it was throttled.
# TYPE penny_container_cpu_cfs_throttled_periods_total counter
penny_container_cpu_cfs_throttled_periods_total{cgroup="/nopsi",node="node-a"} 0
penny_container_cpu_cfs_throttled_periods_total{cgroup="/web",node="node-a"} 2
# HELP penny_container_cpu_cfs_throttled_seconds_total Time the cgroup's tasks were throttled by its CPU limit.
# TYPE penny_container_cpu_cfs_throttled_seconds_total counter
penny_container_cpu_cfs_throttled_seconds_total{cgroup="/nopsi",node="node-a"} 0
penny_container_cpu_cfs_throttled_seconds_total{cgroup="/web",node="node-a"} 0.25
# HELP penny_container_pressure_cpu_waiting_seconds_total Time at least one of the cgroup's tasks waited for a CPU (PSI some); absent where the kernel has no pressure stall information.
# TYPE penny_container_pressure_cpu_waiting_seconds_total counter
penny_container_pressure_cpu_waiting_seconds_total{cgroup="/web",node="node-a"} 0.004
# HELP penny_container_pressure_io_waiting_seconds_total Time at least one of the cgroup's tasks stalled on IO (PSI some).
# TYPE penny_container_pressure_io_waiting_seconds_total counter
penny_container_pressure_io_waiting_seconds_total{cgroup="/web",node="node-a"} 9e-06
# HELP penny_container_memory_working_set_bytes Memory usage minus inactive file pages of the cgroup's memory cgroup, as kubelet computes the working set.
# TYPE penny_container_memory_working_set_bytes gauge
penny_container_memory_working_set_bytes{cgroup="/nopsi",node="node-a"} 0
penny_container_memory_working_set_bytes{cgroup="/web",node="node-a"} 80
# HELP penny_container_network_egress_bytes_total IP bytes sent since the agent started, by destination: loopback, cluster (private and link-local addresses), internet. They add up to penny_container_network_transmit_bytes_total.
# TYPE penny_container_network_egress_bytes_total counter
penny_container_network_egress_bytes_total{cgroup="/nopsi",class="cluster",node="node-a"} 0
penny_container_network_egress_bytes_total{cgroup="/nopsi",class="internet",node="node-a"} 0
penny_container_network_egress_bytes_total{cgroup="/nopsi",class="loopback",node="node-a"} 0
penny_container_network_egress_bytes_total{cgroup="/web",class="cluster",node="node-a"} 20
penny_container_network_egress_bytes_total{cgroup="/web",class="internet",node="node-a"} 30
penny_container_network_egress_bytes_total{cgroup="/web",class="loopback",node="node-a"} 10
# HELP penny_container_requests_total Requests the cgroup's server sockets answered since the agent started (docs/requests.md).
# TYPE penny_container_requests_total counter
penny_container_requests_total{cgroup="/nopsi",node="node-a"} 0
penny_container_requests_total{cgroup="/web",node="node-a"} 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "penny_container_memory_rss_bytes",
		"penny_container_network_receive_bytes_total", "penny_container_cpu_usage_seconds_total",
		"penny_container_cpu_cfs_throttled_periods_total", "penny_container_cpu_cfs_throttled_seconds_total",
		"penny_container_pressure_cpu_waiting_seconds_total", "penny_container_pressure_io_waiting_seconds_total",
		"penny_container_memory_working_set_bytes", "penny_container_network_egress_bytes_total",
		"penny_container_requests_total"); err != nil {
		t.Fatal(err)
	}
	// 20 ms requests: the quantile is within 10% of it; none for a
	// cgroup that served no request.
	if n := testutil.CollectAndCount(c, "penny_container_request_latency_p99_seconds"); n != 1 {
		t.Errorf("%d request latency series, want 1 (/web's)", n)
	}
	if err := quantileIn(c, "penny_container_request_latency_p99_seconds", 0.018, 0.022); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	promtool := testenv.RequireTool(t, "promtool", "apt-get install prometheus")
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
}

func requestLatency(us ...uint64) histogram.LogLinear {
	var h histogram.LogLinear
	for _, v := range us {
		h.Observe(v)
	}
	return h
}

// quantileIn checks that the collector's only series of name lies in
// [lo, hi].
func quantileIn(c prometheus.Collector, name string, lo, hi float64) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v < lo || v > hi {
				return fmt.Errorf("%s = %v, want within [%v, %v]", name, v, lo, hi)
			}
		}
		return nil
	}
	return fmt.Errorf("no %s", name)
}
