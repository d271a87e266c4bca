package custommetrics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"

	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/pricing"
)

// costWorld is the fixture priced by a file: memory at 0.005 per GiB-hour
// on-demand and 0.001 on a spot node; the fixture's containers use memory
// only. node-a is spot; node-b has no facts, so it prices on-demand:
//
//	shop/web-1 (node-a)  110 MiB × 0.001 / 1024 = 0.000107421875
//	shop/db-0  (node-a)    1 GiB × 0.001        = 0.001
//	shop/web-2 (node-b)  200 MiB × 0.005 / 1024 = 0.0009765625
//	namespace shop                                = 0.002083984375
func costWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	p, err := pricing.Parse([]byte("apiVersion: penny.dev/v1\nkind: Pricing\n"+
		"defaults: {cpuCoreHour: 0.05, ramGiBHour: 0.005, spotCPUCoreHour: 0.01, spotRAMGiBHour: 0.001}\n"), pricing.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	w.prices = p
	return w
}

func TestCostMetric(t *testing.T) {
	w := costWorld(t)
	p := newProvider(t, w, nil)
	const at = 20 * time.Second
	for _, tt := range []struct {
		name string
		obj  types.NamespacedName
		sel  string
		want served
	}{
		{"a pod on a spot node", types.NamespacedName{Namespace: "shop", Name: "web-1"}, "",
			served{"Pod", "shop", "web-1", 0.000107, at, 20}},
		{"one container", types.NamespacedName{Namespace: "shop", Name: "web-1"}, "container=sidecar",
			served{"Pod", "shop", "web-1", 0.00001, at, 20}}, // 10 MiB: 9.77u
		{"a pod on a node without facts", types.NamespacedName{Namespace: "shop", Name: "web-2"}, "",
			served{"Pod", "shop", "web-2", 0.000977, 19 * time.Second, 19}},
		{"namespace", types.NamespacedName{Name: "shop"}, "", served{"Namespace", "", "shop", 0.002084, 19 * time.Second, 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := podInfo(pods.CostDollarsPerHour)
			if tt.want.kind == "Namespace" {
				info = namespaceInfo(pods.CostDollarsPerHour)
			}
			sel := labels.Everything()
			if tt.sel != "" {
				sel = selector(t, tt.sel)
			}
			got, err := p.GetMetricByName(context.Background(), tt.obj, info, sel)
			if err != nil {
				t.Fatal(err)
			}
			check(t, w, got, pods.CostDollarsPerHour, tt.sel, tt.want)
		})
	}
}

// TestCostServed reads cost_dollars_per_hour as `kubectl get --raw` does,
// through the served API: every pod of a namespace, and the namespace.
func TestCostServed(t *testing.T) {
	w := costWorld(t)
	api := startAdapter(t, w)
	hc := api.httpClient(t)
	get := func(path string) v1beta2.MetricValueList {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, api.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+hpaToken)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s %v", path, resp.Status, b, err)
		}
		var l v1beta2.MetricValueList
		if err := json.Unmarshal(b, &l); err != nil || l.Kind != "MetricValueList" {
			t.Fatalf("GET %s: %s: %v", path, b, err)
		}
		return l
	}
	const prefix = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/"
	for _, tt := range []struct {
		path string
		want map[string]string // described object's name: value as the API writes it
	}{
		{prefix + "pods/*/" + pods.CostDollarsPerHour, map[string]string{"db-0": "1m", "web-1": "107u", "web-2": "977u"}},
		{prefix + "metrics/" + pods.CostDollarsPerHour, map[string]string{"shop": "2084u"}},
	} {
		l := get(tt.path)
		got := map[string]string{}
		for _, v := range l.Items {
			got[v.DescribedObject.Name] = v.Value.String()
			if v.Metric.Name != pods.CostDollarsPerHour {
				t.Errorf("%s: metric %q", tt.path, v.Metric.Name)
			}
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: %v, want %v", tt.path, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: %s = %s, want %s", tt.path, k, got[k], v)
			}
		}
	}
}
