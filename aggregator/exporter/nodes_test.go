package exporter_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/query/querytest"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/testenv"
)

// TestNodeCollector: node-a of the fixture has its facts, node-b none.
func TestNodeCollector(t *testing.T) {
	n := kvtest.Start(t)
	querytest.Write(t, n, time.Now().Truncate(time.Second).Add(-time.Minute))
	c, err := exporter.New(exporter.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP penny_node_info A node's facts as its agent reports them, as labels (empty when unknown); always 1.
# TYPE penny_node_info gauge
penny_node_info{capacity_type="spot",instance_type="m5.xlarge",node="node-a",region="us-east-1",zone="us-east-1a"} 1
penny_node_info{capacity_type="",instance_type="",node="node-b",region="",zone=""} 1
# HELP penny_node_allocatable_cpu_cores CPU the node lets pods use (its Node object's status.allocatable).
# TYPE penny_node_allocatable_cpu_cores gauge
penny_node_allocatable_cpu_cores{node="node-a"} 3.92
# HELP penny_node_allocatable_memory_bytes Memory the node lets pods use (its Node object's status.allocatable).
# TYPE penny_node_allocatable_memory_bytes gauge
penny_node_allocatable_memory_bytes{node="node-a"} 1.6106127360e+10
# HELP penny_node_capacity_cpu_cores The node's CPUs (its Node object's status.capacity, or the host's online CPUs).
# TYPE penny_node_capacity_cpu_cores gauge
penny_node_capacity_cpu_cores{node="node-a"} 4
# HELP penny_container_scrape_errors_total Scrapes that could not read the store.
# TYPE penny_container_scrape_errors_total counter
penny_container_scrape_errors_total 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "penny_node_info", "penny_node_allocatable_cpu_cores",
		"penny_node_allocatable_memory_bytes", "penny_node_capacity_cpu_cores", "penny_container_scrape_errors_total"); err != nil {
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
