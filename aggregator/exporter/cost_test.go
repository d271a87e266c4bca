package exporter_test

import (
	"context"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query/querytest"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/internal/testenv"
)

// TestCostSeries prices querytest's fixture, whose containers use memory
// only, with memory at 0.005 per GiB-hour on-demand and 0.001 on a spot
// node, CPU at 0.05 and 0.01 per core-hour. node-a is spot, with 3.92
// cores and 15 GiB allocatable; node-b has no facts (the on-demand prices,
// and no node cost). Per hour:
//
//	node-a  shop/web-1  app 100 MiB + sidecar 10 MiB  110/1024 × 0.001 = 0.000107421875
//	        shop/db-0   1 GiB                                           0.001
//	        sshd        5 MiB, no pod: priced, not allocated             0.0000048828125
//	        node: 3.92 × 0.01 + 15 × 0.001 = 0.0542; idle 0.0392 + (0.015 - 0.001107421875) = 0.053092578125
//	node-b  shop/web-2  200 MiB × 0.005 / 1024                          0.0009765625
//	        batch/job-1 1 MiB                                           0.0000048828125
//
// and node-c holds an earlier shop/web-1's series (priced at the default
// prices, no facts), older than node-a's.
func TestCostSeries(t *testing.T) {
	n := kvtest.Start(t)
	base := time.Now().Truncate(time.Second).Add(-time.Minute)
	querytest.Write(t, n, base)
	// The series of an earlier shop/web-1, deleted and created again on
	// node-a, that has not expired yet: its pod is not exported twice.
	u := &model.Update{Node: "node-c", Incarnation: 1, Seq: 1, Time: base.Add(5 * time.Second), Interval: time.Second,
		Keyframe: true, Changed: []model.SeriesState{{Ref: 1, Path: "/kubepods/web-1-old/app", RSSBytes: 1 << 30,
			Meta: podmeta.Encode(&podmeta.Pod{UID: "uid-web-1-old", Namespace: "shop", Name: "web-1"}, &podmeta.Container{Name: "app"})}}}
	p, err := model.PlanUpdate(&model.NodeState{Node: "node-c"}, u, u.Time)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.Txn(context.Background(), model.Txn(u.Node, p.Expect, p.Ops)); err != nil || !res.Succeeded {
		t.Fatal(res, err)
	}
	prices, err := pricing.Parse([]byte("apiVersion: penny.dev/v1\nkind: Pricing\ncurrency: EUR\n"+
		"defaults: {cpuCoreHour: 0.05, ramGiBHour: 0.005, spotCPUCoreHour: 0.01, spotRAMGiBHour: 0.001, "+
		"egressInternetGiB: 0.12, egressClusterGiB: 0}\n"), pricing.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := exporter.New(exporter.Config{Store: n, Prices: prices})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`penny_pod_cost_dollars_per_hour{namespace="shop",node="node-a",pod="web-1"}`:              0.000107421875,
		`penny_pod_cost_dollars_per_hour{namespace="shop",node="node-a",pod="db-0"}`:               0.001,
		`penny_pod_cost_dollars_per_hour{namespace="shop",node="node-b",pod="web-2"}`:              0.0009765625,
		`penny_pod_cost_dollars_per_hour{namespace="batch",node="node-b",pod="job-1"}`:             0.0000048828125,
		`penny_namespace_cost_dollars_per_hour{namespace="shop"}`:                                  0.002083984375,
		`penny_namespace_cost_dollars_per_hour{namespace="batch"}`:                                 0.0000048828125,
		`penny_node_cost_dollars_per_hour{node="node-a"}`:                                          0.0542,
		`penny_node_idle_cost_dollars_per_hour{node="node-a"}`:                                     0.053092578125,
		`penny_container_cost_dollars_per_hour{cgroup="/kubepods/web-1/app",node="node-a"}`:        0.00009765625,
		`penny_container_cost_dollars_per_hour{cgroup="/system.slice/sshd.service",node="node-a"}`: 0.0000048828125,
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if strings.HasSuffix(mf.GetName(), "_cost_dollars_per_hour") {
			for _, m := range mf.GetMetric() {
				got[series(mf.GetName(), m)] = m.GetGauge().GetValue()
			}
		}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-12 {
			t.Errorf("%s = %v (present %t), want %v", k, g, ok, w)
		}
	}
	// Every pod, namespace, priced container and node with a cost, once;
	// node-b, without facts, has no node cost.
	count := map[string]int{}
	for k := range got {
		count[k[:strings.IndexByte(k, '{')]]++
	}
	for name, n := range map[string]int{"penny_pod_cost_dollars_per_hour": 4, "penny_namespace_cost_dollars_per_hour": 2,
		"penny_container_cost_dollars_per_hour": 7, "penny_node_cost_dollars_per_hour": 1, "penny_node_idle_cost_dollars_per_hour": 1} {
		if count[name] != n {
			t.Errorf("%d series of %s, want %d", count[name], name, n)
		}
	}

	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	promtool := testenv.RequireTool(t, "promtool", "apt-get install prometheus")
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

// series names one series as the text format writes it, labels sorted.
func series(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
	}
	slices.Sort(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}
