package recommend

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/kvraft"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

func TestSpotSaving(t *testing.T) {
	od := Share{Cost: 10, CPUCost: 6, RAMCost: 3, Requests: 10_000, Hours: 100} // 1 $ of network
	tests := []struct {
		name      string
		od, spot  Share
		ratio     Ratio
		want      float64
		wantBasis string
		ok        bool
	}{
		// 0.1 $ per 1k on on-demand, 0.04 on spot: 10 $ per 100 h is 73 $ a
		// month, 60% of it saved.
		{"measured", od, Share{Cost: 2, Requests: 5_000, Hours: 50}, Ratio{0.25, 0.2}, 73 * 0.6, BasisMeasured, true},
		// Spot did less work per dollar: moving costs more.
		{"measured, spot dearer", od, Share{Cost: 4, Requests: 2_000, Hours: 10}, Ratio{0.25, 0.2}, -73, BasisMeasured, true},
		// (6 × 0.75 + 3 × 0.8) × 7.3: network is the same on spot.
		{"prices", od, Share{}, Ratio{0.25, 0.2}, (4.5 + 2.4) * 7.3, BasisPrices, true},
		{"prices, no requests on spot", od, Share{Cost: 2, Hours: 50}, Ratio{0.25, 0.2}, (4.5 + 2.4) * 7.3, BasisPrices, true},
		{"prices, no requests on on-demand", Share{Cost: 10, CPUCost: 6, RAMCost: 3, Hours: 100}, Share{Cost: 2, Requests: 5, Hours: 1},
			Ratio{0.25, 0.2}, (4.5 + 2.4) * 7.3, BasisPrices, true},
		{"nothing on on-demand", Share{}, Share{Cost: 2, Requests: 5_000, Hours: 50}, Ratio{0.25, 0.2}, 0, "", false},
		{"no ratio", od, Share{}, Ratio{math.NaN(), math.NaN()}, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, basis, ok := SpotSaving(&tt.od, &tt.spot, tt.ratio)
			if ok != tt.ok || basis != tt.wantBasis || !near(got, tt.want) {
				t.Errorf("SpotSaving = %v %q %v, want %v %q %v", got, basis, ok, tt.want, tt.wantBasis, tt.ok)
			}
		})
	}
}

func TestReplicaSaving(t *testing.T) {
	tests := []struct {
		now, rec int
		perHour  float64
		want     float64
		ok       bool
	}{
		{3, 2, 0.3, 0.1 * 730, true},
		{4, 1, 0.4, 0.3 * 730, true},
		{2, 2, 0.3, 0, false},
		{2, 3, 0.3, 0, false},
		{0, 0, 0, 0, false},
		{3, 1, math.NaN(), 0, false},
	}
	for _, tt := range tests {
		if got, ok := ReplicaSaving(tt.now, tt.rec, tt.perHour); ok != tt.ok || !near(got, tt.want) {
			t.Errorf("ReplicaSaving(%d, %d, %v) = %v %v, want %v %v", tt.now, tt.rec, tt.perHour, got, ok, tt.want, tt.ok)
		}
	}
}

// The fixture: one hour, an on-demand node od (0.04 $/core-h, 0.005
// $/GiB-h) and a spot node sp (0.01, 0.001), the pricing's defaults.
//
//	shop/web  Deployment, CostPolicy web (1 replica, objective 200 ms), PDB app=web
//	  web-1  od  request 1 core, 2 GiB; 36,000 requests  0.04 + 0.01  = 0.05  (1.389e-3 per 1k)
//	  web-2  sp  the same                                0.01 + 0.002 = 0.012 (3.333e-4 per 1k)
//	shop/api  Deployment, no policy, no PDB
//	  api-1  od  request 0.5 core, 1 GiB; no requests    0.02 + 0.005 = 0.025
//	batch/job-1  no controller: not a workload
var t0 = time.Date(2026, 3, 18, 10, 0, 0, 0, time.UTC)

const testPricing = `apiVersion: penny.dev/v1
kind: Pricing
defaults: {cpuCoreHour: 0.04, ramGiBHour: 0.005, spotCPUCoreHour: 0.01, spotRAMGiBHour: 0.001}
`

func hour(cpuReq, ramReqGiB, requests float64) []cost.Usage {
	var h cost.Usage
	for m := range 60 {
		u := cost.Minute(t0.Add(time.Duration(m)*time.Minute), 60, 0, cpuReq, 0, ramReqGiB*cost.GiB, 0, 0)
		u.Requests = requests / 60
		h.Add(u)
	}
	return []cost.Usage{h}
}

type fakeHistory struct {
	series []cost.Series
	nodes  []cost.NodeUsage
}

func (f *fakeHistory) SpansByStep(_ context.Context, start, end time.Time, step time.Duration, _ kvraft.ReadOptions) ([]cost.Series, []cost.NodeUsage, error) {
	if step <= 0 || !end.After(start) {
		return nil, nil, fmt.Errorf("%w: step %s, %s..%s", kvraft.ErrInvalid, step, start, end) // as history.Reader
	}
	return f.series, f.nodes, nil
}

type fakeLive struct{ pods []pods.Pod }

func (f *fakeLive) Pods(_ context.Context, req query.Request) (*query.Pods, error) {
	out := &query.Pods{}
	for _, p := range f.pods {
		if req.Pods.Namespace == "" || p.Namespace == req.Pods.Namespace {
			out.Pods = append(out.Pods, p)
		}
	}
	return out, nil
}

func (f *fakeLive) Nodes(context.Context, query.Request) (*query.Nodes, error) {
	return &query.Nodes{Nodes: []query.Node{{Node: "od", Facts: nodemeta.Facts{CapacityType: nodemeta.OnDemand}}}}, nil
}

type fakeStore struct{ kvs []kvraft.KV }

func (f *fakeStore) Range(_ context.Context, req kvraft.RangeRequest, _ kvraft.ReadOptions) (kvraft.RangeResult, error) {
	var out kvraft.RangeResult
	for _, kv := range f.kvs {
		if strings.HasPrefix(string(kv.Key), string(req.Prefix)) {
			out.Items = append(out.Items, kv)
		}
	}
	return out, nil
}

type fakePDBs struct {
	sel map[string][]labels.Selector
	err error
}

func (f *fakePDBs) Selectors(ns string) ([]labels.Selector, error) { return f.sel[ns], f.err }

func livePod(ns, name, owner, node string, lbl map[string]string, costPerHour, p99 float64) pods.Pod {
	m := map[string]float64{"cost_dollars_per_hour": costPerHour}
	if p99 > 0 {
		m["request_latency_p99_seconds"] = p99
	}
	return pods.Pod{Namespace: ns, Name: name, UID: "uid-" + name, Node: node, Labels: lbl, OwnerKind: "ReplicaSet",
		OwnerName: owner, Values: pods.Values{Metrics: m}}
}

func fixture(t *testing.T, pdbs PDBs) *Handler {
	t.Helper()
	od := cost.Rates{Currency: "USD", CPUCoreHour: 0.04, RAMGiBHour: 0.005, Source: "test"}
	sp := cost.Rates{Currency: "USD", CPUCoreHour: 0.01, RAMGiBHour: 0.001, Spot: true, Source: "test"}
	web := map[string]string{"app": "web", "pod-template-hash": "5d8f"}
	api := map[string]string{"app": "api", "pod-template-hash": "77aa"}
	ctl := func(node, ns, pod, controller string, lbl map[string]string) cost.Container {
		c := cost.Container{Node: node, Namespace: ns, Pod: pod, Container: "app", Labels: lbl}
		if controller != "" {
			c.ControllerKind, c.Controller = "deployment", controller
		}
		return c
	}
	h := &fakeHistory{
		series: []cost.Series{
			{Container: ctl("od", "shop", "web-1", "web", web), Usage: hour(1, 2, 36_000)},
			{Container: ctl("sp", "shop", "web-2", "web", web), Usage: hour(1, 2, 36_000)},
			{Container: ctl("od", "shop", "api-1", "api", api), Usage: hour(0.5, 1, 0)},
			{Container: ctl("sp", "batch", "job-1", "", nil), Usage: hour(1, 1, 0)},
		},
		nodes: []cost.NodeUsage{
			{Node: "od", Start: t0, End: t0.Add(time.Hour), Hours: 1, CPUCores: 4, RAMBytes: 16 * cost.GiB, Rates: od},
			{Node: "sp", Start: t0, End: t0.Add(time.Hour), Hours: 1, CPUCores: 4, RAMBytes: 16 * cost.GiB, Rates: sp},
		},
	}
	live := &fakeLive{pods: []pods.Pod{
		livePod("shop", "web-1", "web-5d8f", "od", web, 0.05, 0.031),
		livePod("shop", "web-2", "web-5d8f", "sp", web, 0.012, 0.045),
		livePod("shop", "api-1", "api-77aa", "od", api, 0.025, 0),
		{Namespace: "batch", Name: "job-1", UID: "uid-job-1", Node: "sp", Values: pods.Values{Metrics: map[string]float64{}}},
	}}
	rec, err := json.Marshal(costpolicy.Record{UID: "u", Replicas: 1, Reason: "ScaleDownCheaper", Time: t0, TargetKind: "Deployment",
		TargetName: "web", ObjectiveMetric: "request_latency_p99_seconds", ObjectiveSeconds: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	store := &fakeStore{kvs: []kvraft.KV{
		{Key: costpolicy.DecisionKey("shop", "web-policy"), Value: rec},
		// A decision of the code before decisions named their target.
		{Key: costpolicy.DecisionKey("shop", "old"), Value: []byte(`{"uid":"x","replicas":3,"reason":"Steady"}`)},
	}}
	prices, err := pricing.Parse([]byte(testPricing), pricing.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	hd, err := NewHandler(Config{History: h, Live: live, Store: store, Prices: prices, PDBs: pdbs,
		Now: func() time.Time { return t0.Add(48 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	return hd
}

const hourWindow = "2026-03-18T10:00:00Z,2026-03-18T11:00:00Z"

func ptr(v float64) *float64 { return &v }

func TestRecommend(t *testing.T) {
	webPDB := &fakePDBs{sel: map[string][]labels.Selector{"shop": {labels.SelectorFromSet(labels.Set{"app": "web"})}}}
	type want struct {
		replicas, recommended int
		objective, latency    *float64
		odPer1k, spotPer1k    *float64
		tolerant              *bool
		spotSaving            *float64
		basis                 string
		replicaSaving         *float64
		advice                string
	}
	yes, no := true, false
	tests := []struct {
		name      string
		pdbs      PDBs
		namespace string
		want      map[string]want
		pdbsState string
		warning   string
	}{
		{"in a cluster", webPDB, "", map[string]want{
			// Measured on both: 0.05 × 730 × (1 − 0.012/0.05); a policy
			// of 1 replica saves half of 0.062 $/h.
			"shop/deployment/web": {2, 1, ptr(0.2), ptr(0.045), ptr(0.05 / 36), ptr(0.012 / 36), &yes,
				ptr(0.05 * 730 * (1 - 0.24)), BasisMeasured, ptr(0.062 / 2 * 730), "move to spot"},
			// Priced: (0.02 × (1 − 0.25) + 0.005 × (1 − 0.2)) × 730.
			"shop/deployment/api": {1, 1, nil, nil, nil, nil, &no, ptr((0.015 + 0.004) * 730), BasisPrices, nil,
				"not for spot: no PodDisruptionBudget"},
		}, PDBsKnown, ""},
		{"one namespace, outside Kubernetes", nil, "shop", map[string]want{
			"shop/deployment/web": {2, 1, ptr(0.2), ptr(0.045), ptr(0.05 / 36), ptr(0.012 / 36), nil,
				ptr(0.05 * 730 * (1 - 0.24)), BasisMeasured, ptr(0.062 / 2 * 730), "PodDisruptionBudgets unknown"},
			"shop/deployment/api": {1, 1, nil, nil, nil, nil, nil, ptr((0.015 + 0.004) * 730), BasisPrices, nil,
				"PodDisruptionBudgets unknown"},
		}, PDBsUnknown, ""},
		{"budgets not listed yet", &fakePDBs{err: ErrPDBsUnknown}, "shop", map[string]want{
			"shop/deployment/web": {2, 1, ptr(0.2), ptr(0.045), ptr(0.05 / 36), ptr(0.012 / 36), nil,
				ptr(0.05 * 730 * (1 - 0.24)), BasisMeasured, ptr(0.062 / 2 * 730), "PodDisruptionBudgets unknown"},
			"shop/deployment/api": {1, 1, nil, nil, nil, nil, nil, ptr((0.015 + 0.004) * 730), BasisPrices, nil,
				"PodDisruptionBudgets unknown"},
		}, PDBsUnknown, ErrPDBsUnknown.Error()},
		{"another namespace", webPDB, "batch", map[string]want{}, PDBsKnown, ""},
	}
	eqp := func(a, b *float64) bool { return a == nil && b == nil || a != nil && b != nil && near(*a, *b) }
	eqb := func(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.pdbs)
			res, err := h.Recommend(context.Background(), Request{Namespace: tt.namespace, Window: hourWindow})
			if err != nil {
				t.Fatal(err)
			}
			if res.PodDisruptionBudgets != tt.pdbsState || res.Currency != "USD" || !res.Window.Start.Equal(t0) {
				t.Errorf("budgets %q, currency %q, window %v", res.PodDisruptionBudgets, res.Currency, res.Window)
			}
			if tt.warning != "" && !slices.Contains(res.Warnings, tt.warning) {
				t.Errorf("warnings %q, want %q", res.Warnings, tt.warning)
			}
			var got []string
			for _, w := range res.Workloads {
				k := w.Namespace + "/" + w.Kind + "/" + w.Name
				got = append(got, k)
				x, ok := tt.want[k]
				if !ok {
					continue
				}
				if w.Replicas != x.replicas || w.RecommendedReplicas != x.recommended || !eqp(w.ObjectiveSeconds, x.objective) ||
					!eqp(w.LatencySeconds, x.latency) || !eqp(w.OnDemand.CostPer1kRequests, x.odPer1k) ||
					!eqp(w.Spot.CostPer1kRequests, x.spotPer1k) || !eqb(w.InterruptionTolerant, x.tolerant) ||
					!eqp(w.SpotSavingMonthly, x.spotSaving) || w.SpotSavingBasis != x.basis ||
					!eqp(w.ReplicaSavingMonthly, x.replicaSaving) || !strings.HasPrefix(strings.Join(w.Advice, "; "), x.advice) {
					b, _ := json.MarshalIndent(w, "", " ")
					t.Errorf("%s:\n%s\nwant %+v", k, b, x)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("workloads %q, want %d", got, len(tt.want))
			}
		})
	}
}

func TestHandlerRefuses(t *testing.T) {
	h := fixture(t, nil)
	tests := []struct {
		method, query string
		code          int
		want          string
	}{
		{"GET", "namespace=shop&window=" + hourWindow, http.StatusOK, `"pod_disruption_budgets":"unknown"`},
		{"GET", "window=3x", http.StatusBadRequest, `window=\"3x\"`},
		{"GET", "window=100d", http.StatusBadRequest, "window"},
		{"GET", "namespace=Shop", http.StatusBadRequest, `namespace \"Shop\"`},
		{"GET", "namespace=" + strings.Repeat("a", 64), http.StatusBadRequest, "namespace"},
		{"GET", "namespace=a&namespace=b", http.StatusBadRequest, "given 2 times"},
		{"GET", "aggregate=pod", http.StatusBadRequest, `unknown parameter \"aggregate\"`},
		{"POST", "", http.StatusMethodNotAllowed, "use GET"},
	}
	for _, tt := range tests {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(tt.method, Path+"?"+tt.query, nil))
		if rr.Code != tt.code || !strings.Contains(rr.Body.String(), tt.want) {
			t.Errorf("%s ?%s: %d %s, want %d with %q", tt.method, tt.query, rr.Code, rr.Body.String(), tt.code, tt.want)
		}
	}
}

// TestRecommendWorkloadLatency: a workload's request latency is the p99
// of all its requests (its pods' histograms merged), as its policy judges
// it, not its worst pod's p99.
func TestRecommendWorkloadLatency(t *testing.T) {
	h := fixture(t, nil)
	live := h.cfg.Live.(*fakeLive)
	for i := range live.pods {
		p := &live.pods[i]
		if p.Name != "web-1" && p.Name != "web-2" {
			continue
		}
		for range 500 {
			p.RequestLatency.Observe(20_000) // µs
		}
		if p.Name == "web-2" {
			for range 4 {
				p.RequestLatency.Observe(400_000)
			}
		}
	}
	res, err := h.Recommend(context.Background(), Request{Namespace: "shop", Window: hourWindow})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Workloads {
		if w.Name != "web" {
			continue
		}
		// 4 slow requests of 1,004 are under 1%: the p99 is the 20 ms
		// bucket's, not web-2's 45 ms p99 of the fixture.
		if w.LatencySeconds == nil || *w.LatencySeconds < 0.020 || *w.LatencySeconds > 0.0226 {
			t.Errorf("web's latency %v, want its requests' p99, about 20 ms", w.LatencySeconds)
		}
		return
	}
	t.Fatal("no web workload")
}
