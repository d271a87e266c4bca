package exporter_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/testenv"
)

func TestCollector(t *testing.T) {
	n := kvtest.Start(t)
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := &model.NodeState{Node: "node-a"}
	p, err := model.PlanUpdate(st, &model.Update{Node: "node-a", Incarnation: 1, Seq: 1, Time: t0, Interval: time.Second,
		Keyframe: true, Changed: []model.SeriesState{{Path: "/web", RSSBytes: 100, Total: model.Counters{RxBytes: 42}}}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.Txn(context.Background(), model.Txn("node-a", p.Expect, p.Ops)); err != nil || !res.Succeeded {
		t.Fatal(res, err)
	}
	c, err := exporter.NewCollector(n, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP penny_container_memory_rss_bytes Resident memory of the cgroup's processes.
# TYPE penny_container_memory_rss_bytes gauge
penny_container_memory_rss_bytes{cgroup="/web",node="node-a"} 100
# HELP penny_container_network_receive_bytes_total IP bytes received since the agent started.
# TYPE penny_container_network_receive_bytes_total counter
penny_container_network_receive_bytes_total{cgroup="/web",node="node-a"} 42
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "penny_container_memory_rss_bytes",
		"penny_container_network_receive_bytes_total"); err != nil {
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
