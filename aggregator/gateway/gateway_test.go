package gateway_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// write applies updates of one node through the model, as the ingest does.
func write(t *testing.T, n *kvraft.Node, st *model.NodeState, u *model.Update) *model.NodeState {
	t.Helper()
	p, err := model.PlanUpdate(st, u, t0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Txn(context.Background(), model.Txn(u.Node, p.Expect, p.Ops))
	if err != nil || !res.Succeeded {
		t.Fatalf("txn: %+v %v", res, err)
	}
	return p.Next
}

func srtt(samples ...uint64) histogram.Hist {
	var h histogram.Hist
	for _, s := range samples {
		h.Observe(s)
	}
	return h
}

func get(t *testing.T, h http.Handler, params string, status int) *query.Containers {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, gateway.ContainersPath+"?"+params, nil))
	if rec.Code != status {
		t.Fatalf("GET ?%s: %d %s, want %d", params, rec.Code, rec.Body, status)
	}
	if status != http.StatusOK {
		var e map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" {
			t.Fatalf("error body %q", rec.Body)
		}
		return nil
	}
	var c query.Containers
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestContainers(t *testing.T) {
	n := kvtest.Start(t)
	a := &model.NodeState{Node: "node-a"}
	a = write(t, n, a, &model.Update{Node: "node-a", Incarnation: 1, Seq: 1, Time: t0, Interval: time.Second, Keyframe: true,
		Changed: []model.SeriesState{{Path: "/web", CgroupID: 5, RSSBytes: 100, Total: model.Counters{RxBytes: 10}, SRTT: srtt(40)}}})
	write(t, n, a, &model.Update{Node: "node-a", Incarnation: 1, Seq: 2, Time: t0.Add(time.Second), Interval: time.Second,
		Changed: []model.SeriesState{{Path: "/web", CgroupID: 5, RSSBytes: 150, Total: model.Counters{RxBytes: 510}, SRTT: srtt(40, 40, 40)}}})
	b := &model.NodeState{Node: "node-b"}
	write(t, n, b, &model.Update{Node: "node-b", Incarnation: 9, Seq: 1, Time: t0, Interval: time.Second, Keyframe: true,
		Changed: []model.SeriesState{{Path: "/", CgroupID: 1, RSSBytes: 7}, {Path: "/db", CgroupID: 8, RSSBytes: 9}}})

	h, err := gateway.NewHandler(gateway.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	all := get(t, h, "", http.StatusOK)
	if len(all.Containers) != 3 || all.Index == 0 {
		t.Fatalf("all: %+v", all)
	}
	if c := all.Containers[0]; c.Node != "node-a" || c.Path != "/web" || c.RSSBytes != 150 || c.NetRxBytes != 500 ||
		c.TCPSRTTP50Seconds == nil || c.ID != 5 || c.Updated != "2026-11-25T12:00:01Z" {
		t.Errorf("node-a /web = %+v", c)
	}
	one := get(t, h, "node=node-b&consistency=linearizable", http.StatusOK)
	if len(one.Containers) != 2 || one.Containers[0].Path != "/" || one.Containers[1].Path != "/db" {
		t.Fatalf("node-b: %+v", one)
	}
	// Read-your-writes from the index of an earlier answer.
	if s := get(t, h, "consistency=session&index="+itoa(one.Index), http.StatusOK); s.Index < one.Index {
		t.Errorf("session read at %d, asked for %d", s.Index, one.Index)
	}
	if w := get(t, h, "node=node-a&window=1m&consistency=eventual", http.StatusOK); w.Containers[0].NetRxBytes != 500 {
		t.Errorf("window: %+v", w.Containers[0])
	}
	if none := get(t, h, "node=node-c", http.StatusOK); len(none.Containers) != 0 {
		t.Errorf("unknown node: %+v", none)
	}
	for _, bad := range []string{"node=Bad_Name", "window=1h", "window=x", "consistency=strong", "index=5",
		"consistency=session", "consistency=bounded", "frobnicate=1"} {
		get(t, h, bad, http.StatusBadRequest)
	}
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func getJSON[T any](t *testing.T, h http.Handler, path string, status int) *T {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != status {
		t.Fatalf("GET %s: %d %s, want %d", path, rec.Code, rec.Body, status)
	}
	if status != http.StatusOK {
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPodsAndNamespaces(t *testing.T) {
	n := kvtest.Start(t)
	meta := func(ns, pod, uid, ctr string, lbl map[string]string) map[string]string {
		return podmeta.Encode(&podmeta.Pod{UID: uid, Namespace: ns, Name: pod, Labels: lbl, QOSClass: "Burstable"},
			&podmeta.Container{Name: ctr, RequestMemory: 1 << 20})
	}
	a := &model.NodeState{Node: "node-a"}
	write(t, n, a, &model.Update{Node: "node-a", Incarnation: 1, Seq: 1, Time: t0, Interval: time.Second, Keyframe: true,
		Changed: []model.SeriesState{
			{Path: "/kubepods/pod-w1/app", CgroupID: 5, RSSBytes: 100, SRTT: srtt(40),
				Meta: meta("shop", "web-1", "w1", "app", map[string]string{"app": "web"})},
			{Path: "/kubepods/pod-w1/proxy", CgroupID: 6, RSSBytes: 50, SRTT: srtt(9000),
				Meta: meta("shop", "web-1", "w1", "proxy", map[string]string{"app": "web"})},
			{Path: "/kubepods/pod-d1/db", CgroupID: 7, RSSBytes: 1000,
				Meta: meta("data", "db-0", "d1", "db", map[string]string{"app": "db"})},
			{Path: "/system.slice/sshd.service", CgroupID: 8, RSSBytes: 7},
		}})
	h, err := gateway.NewHandler(gateway.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	all := getJSON[query.Pods](t, h, gateway.PodsPath, http.StatusOK)
	if len(all.Pods) != 2 || all.Pods[0].Name != "db-0" || all.Pods[1].Name != "web-1" || all.Index == 0 {
		t.Fatalf("pods: %+v", all)
	}
	web := all.Pods[1]
	if web.Metrics[pods.MemoryRSSBytes] != 150 || web.Node != "node-a" || web.RequestMemoryBytes != 2<<20 ||
		web.Metrics[pods.TCPSRTTP99Seconds] < 0.008 {
		t.Errorf("web-1: %+v", web)
	}
	if _, ok := all.Pods[0].Metrics[pods.TCPSRTTP99Seconds]; ok {
		t.Errorf("db-0 has a latency without TCP: %+v", all.Pods[0].Metrics)
	}
	sel := getJSON[query.Pods](t, h, gateway.PodsPath+"?namespace=shop&selector=app%3Dweb&metric_selector=container%3Dapp", http.StatusOK)
	if len(sel.Pods) != 1 || sel.Pods[0].Metrics[pods.MemoryRSSBytes] != 100 {
		t.Errorf("selected: %+v", sel.Pods)
	}
	if none := getJSON[query.Pods](t, h, gateway.PodsPath+"?namespace=nope", http.StatusOK); none.Pods == nil || len(none.Pods) != 0 {
		t.Errorf("no pods must be [], got %+v", none)
	}
	ns := getJSON[query.Namespaces](t, h, gateway.NamespacesPath, http.StatusOK)
	if len(ns.Namespaces) != 2 || ns.Namespaces[1].Name != "shop" || ns.Namespaces[1].Metrics[pods.MemoryRSSBytes] != 150 {
		t.Errorf("namespaces: %+v", ns)
	}
	c := getJSON[query.Containers](t, h, gateway.ContainersPath+"?node=node-a", http.StatusOK)
	if k := c.Containers[0].Kubernetes; k == nil || k.Pod.Name != "db-0" || k.Container.Name != "db" || c.Containers[3].Kubernetes != nil {
		t.Errorf("containers carry their pod: %+v", c.Containers)
	}
	for _, bad := range []string{gateway.PodsPath + "?selector=a%3D%3D%3Db", gateway.PodsPath + "?metric_selector=%21%21",
		gateway.ContainersPath + "?namespace=shop", gateway.NamespacesPath + "?pods=1"} {
		getJSON[query.Pods](t, h, bad, http.StatusBadRequest)
	}
	getJSON[query.Pods](t, h, "/v1/node", http.StatusNotFound)
}

func TestNodes(t *testing.T) {
	n := kvtest.Start(t)
	facts := nodemeta.Facts{Name: "node-a", InstanceType: "m5.large", Region: "us-east-1", Zone: "us-east-1a",
		CapacityType: nodemeta.Spot, AllocatableCPUMillis: 1930, AllocatableMemoryBytes: 7 << 30, Source: nodemeta.SourceKubernetes}
	write(t, n, &model.NodeState{Node: "node-a"}, &model.Update{Node: "node-a", Incarnation: 1, Seq: 1, Time: t0,
		Interval: time.Second, Keyframe: true, Meta: nodemeta.Encode(&facts),
		Changed: []model.SeriesState{{Path: "/", CgroupID: 1}, {Path: "/web", CgroupID: 5}}})
	write(t, n, &model.NodeState{Node: "node-b"}, &model.Update{Node: "node-b", Incarnation: 1, Seq: 1, Time: t0,
		Interval: time.Second, Keyframe: true, Changed: []model.SeriesState{{Path: "/", CgroupID: 1}}})
	// node-a is priced at a whole-node price: 0.04/h for 2 cores (1.93,
	// rounded up) and 7 GiB, split as OpenCost splits it (docs/pricing.md):
	// 0.0136135485 per core-hour and 0.0018247004 per GiB-hour, so its 1.93
	// cores and 7 GiB cost 0.0390470516 per hour, all idle.
	prices, err := pricing.Parse([]byte("apiVersion: penny.dev/v1\nkind: Pricing\ncurrency: EUR\n"+
		"defaults: {cpuCoreHour: 0.031611, ramGiBHour: 0.004237, spotCPUCoreHour: 0.006655, spotRAMGiBHour: 0.000892, "+
		"egressInternetGiB: 0.12, egressClusterGiB: 0}\n"+
		"nodes: [{instanceType: m5.large, capacityType: spot, hourlyPrice: 0.04}]\n"), pricing.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := gateway.NewHandler(gateway.Config{Store: n, Prices: prices})
	if err != nil {
		t.Fatal(err)
	}
	// The JSON a client reads: snake_case, unknown facts left out.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, gateway.NodesPath+"?consistency=linearizable", nil))
	var doc struct {
		Index    uint64           `json:"index"`
		Currency string           `json:"currency"`
		Nodes    []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", gateway.NodesPath, rec.Code, rec.Body)
	}
	// The costs, to the micro-dollar; the rest exactly.
	costs := []map[string]any{{"cost_dollars_per_hour": 0.0390470516, "idle_cost_dollars_per_hour": 0.0390470516},
		{"cost_dollars_per_hour": nil, "idle_cost_dollars_per_hour": nil}}
	for i, want := range costs {
		for k, w := range want {
			got, ok := doc.Nodes[min(i, len(doc.Nodes)-1)][k]
			g, _ := got.(float64)
			if wf, isNum := w.(float64); !ok || (isNum && math.Abs(g-wf) > 1e-6) || (!isNum && got != nil) {
				t.Errorf("node %d: %s = %v, want %v", i, k, got, w)
			}
			delete(doc.Nodes[min(i, len(doc.Nodes)-1)], k)
		}
	}
	rates := func(cpu, ram float64, spot bool, source string) map[string]any {
		return map[string]any{"cpu_core_hour": cpu, "ram_gib_hour": ram, "egress_internet_gib": 0.12, "egress_cluster_gib": 0.0,
			"spot": spot, "source": source}
	}
	// The split in float64, as package pricing computes it.
	ratio, cores, gib, price := 0.031611, 2.0, 7.0, 0.04
	ratio /= 0.004237
	ramPrice := price / (cores*ratio + gib)
	want := []map[string]any{
		{"node": "node-a", "instance_type": "m5.large", "region": "us-east-1", "zone": "us-east-1a", "capacity_type": "spot",
			"allocatable_cpu_millis": 1930.0, "allocatable_memory_bytes": float64(7 << 30), "facts_source": "kubernetes",
			"updated": "2026-11-25T12:00:00Z", "series": 2.0, "allocated_cost_dollars_per_hour": 0.0,
			"rates": rates(ramPrice*ratio, ramPrice, true, "node-price")},
		// No facts: the default on-demand prices, and a warning.
		{"node": "node-b", "updated": "2026-11-25T12:00:00Z", "series": 1.0, "allocated_cost_dollars_per_hour": 0.0,
			"rates": rates(0.031611, 0.004237, false, "file"), "warning": "no facts: priced at the default prices, without a cost or idle"},
	}
	if doc.Index == 0 || doc.Currency != "EUR" || !reflect.DeepEqual(doc.Nodes, want) {
		t.Errorf("GET %s = %s\nwant nodes %v", gateway.NodesPath, rec.Body, want)
	}
	one := getJSON[query.Nodes](t, h, gateway.NodesPath+"?node=node-b&consistency=bounded&max_staleness=1s", http.StatusOK)
	if len(one.Nodes) != 1 || one.Nodes[0].Node != "node-b" || one.Nodes[0].Known() {
		t.Errorf("node-b: %+v", one)
	}
	if s := getJSON[query.Nodes](t, h, gateway.NodesPath+"?consistency=session&index="+itoa(one.Index), http.StatusOK); len(s.Nodes) != 2 {
		t.Errorf("session read: %+v", s)
	}
	if none := getJSON[query.Nodes](t, h, gateway.NodesPath+"?node=node-c", http.StatusOK); none.Nodes == nil || len(none.Nodes) != 0 {
		t.Errorf("no nodes must be [], got %+v", none)
	}
	// A window is what the idle's CPU usage is taken over.
	if w := getJSON[query.Nodes](t, h, gateway.NodesPath+"?window=1m&consistency=linearizable", http.StatusOK); len(w.Nodes) != 2 {
		t.Errorf("window: %+v", w)
	}
	for _, bad := range []string{"node=Bad_Name", "window=1h", "namespace=shop", "selector=app%3Dweb", "metric_selector=container%3Dc",
		"consistency=strong", "index=5", "frobnicate=1"} {
		getJSON[query.Nodes](t, h, gateway.NodesPath+"?"+bad, http.StatusBadRequest)
	}
}
