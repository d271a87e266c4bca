package exporter

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pennyhq/penny/aggregator/pods"
)

// TestWorkloadPer1k: a workload's cost of 1,000 requests is its pods'
// costs over their request rates, each summed first; the pods of a
// Deployment's ReplicaSets are one workload; pods without requests or
// without an owner have none.
func TestWorkloadPer1k(t *testing.T) {
	pod := func(name, kind, owner, hash string, cost, rps float64) pods.Pod {
		m := map[string]float64{pods.CostDollarsPerHour: cost}
		if rps >= 0 {
			m[pods.RequestsPerSecond] = rps
		}
		return pods.Pod{Namespace: "shop", Name: name, OwnerKind: kind, OwnerName: owner,
			Labels: map[string]string{"pod-template-hash": hash}, Values: pods.Values{Metrics: m}}
	}
	ps := []pods.Pod{
		pod("web-1", "ReplicaSet", "web-5d8f6b", "5d8f6b", 0.1, 10),
		pod("web-2", "ReplicaSet", "web-5d8f6b", "5d8f6b", 0.1, 30),
		pod("web-3", "ReplicaSet", "web-7c9d", "7c9d", 0.2, 0), // the next release's ReplicaSet, same Deployment
		pod("db-0", "StatefulSet", "db", "", 0.5, -1),          // no request tracking
		pod("idle-0", "StatefulSet", "idle", "", 0.1, 0),       // no requests
		pod("debug", "", "", "", 0.1, 5),                       // no owner
	}
	ch := make(chan prometheus.Metric, 10)
	collectWorkloadPer1k(ch, ps)
	close(ch)
	got := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		l := map[string]string{}
		for _, p := range d.Label {
			l[p.GetName()] = p.GetValue()
		}
		got[l["namespace"]+"/"+l["owner_kind"]+"/"+l["owner_name"]] = d.GetGauge().GetValue()
	}
	want := map[string]float64{"shop/deployment/web": 0.4 / (40 * 3.6)}
	if len(got) != len(want) {
		t.Fatalf("workloads %v, want %v", got, want)
	}
	for k, w := range want {
		if math.Abs(got[k]-w) > 1e-12 {
			t.Errorf("%s: %v, want %v", k, got[k], w)
		}
	}
}
