package allocation_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/allocation"
	"github.com/pennyhq/penny/aggregator/allocation/allocationtest"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/kvraft"
)

// t0 is the start of the fixture's priced hour: a whole hour, in the past.
var t0 = time.Now().Add(-3 * time.Hour).Truncate(time.Hour)

// fixture is a replica holding allocationtest.Nodes from a minute before
// t0 to a minute after t0 + 1h, sampled every 10 s and rolled up minute by
// minute, and a handler and a rate reader over it.
type fixture struct {
	store *kvraft.Node
	h     *allocation.Handler
	url   string
	rate  *query.Reader
}

func newFixture(t *testing.T, cfg allocation.Config) *fixture {
	t.Helper()
	store := kvtest.Start(t)
	prices := allocationtest.Prices(t)
	allocationtest.NewWriter(t, store, prices, allocationtest.Nodes()).Run(t0.Add(-time.Minute), t0.Add(61*time.Minute), 10*time.Second)
	rd, err := history.NewReader(history.ReaderConfig{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	cfg.History, cfg.Prices = rd, prices
	h, err := allocation.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	rate, err := query.New(query.Config{Store: store, Prices: prices})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, h: h, url: srv.URL, rate: rate}
}

// get asks the handler and decodes OpenCost's envelope.
func (f *fixture) get(t *testing.T, params string) (int, *cost.Response) {
	t.Helper()
	resp, err := http.Get(f.url + allocation.Path + "?" + params)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r cost.Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: %s: %v", params, body, err)
	}
	if r.Code != resp.StatusCode {
		t.Errorf("%s: code %d in a %s answer", params, r.Code, resp.Status)
	}
	return resp.StatusCode, &r
}

// one asks a query that must succeed with one set.
func (f *fixture) one(t *testing.T, params string) map[string]*cost.Allocation {
	t.Helper()
	code, r := f.get(t, params)
	if code != http.StatusOK || len(r.Data) != 1 {
		t.Fatalf("%s: %d %q, %d sets", params, code, r.Message, len(r.Data))
	}
	return r.Data[0]
}

var hour = "window=" + url.QueryEscape(t0.Format(time.RFC3339)+","+t0.Add(time.Hour).Format(time.RFC3339))

// near compares costs after the response's rounding to 6 decimals.
func near(a, b float64) bool { return math.Abs(a-b) <= 2e-6 }

// TestHandComputed: the fixture's hour, priced as allocationtest.Nodes
// computes it by hand.
func TestHandComputed(t *testing.T) {
	f := newFixture(t, allocation.Config{})
	for _, tc := range []struct {
		params string
		want   map[string]float64
	}{
		// The cgroups outside pods: the kubelet 0.025, containerd 0.002 +
		// 0.00025, db.service 0.025.
		{"aggregate=namespace", map[string]float64{"shop": 0.10 + 0.15 + 0.421875, "batch": 0.08 + 0.006,
			cost.UnallocatedSuffix: 0.025 + 0.00225 + 0.025, cost.IdleSuffix: 0.09 + 0.022 + 0.075}},
		{"aggregate=node&splitIdle=true", map[string]float64{"od": 0.10 + 0.571875 + 0.08 + 0.025, "spot": 0.006 + 0.00225,
			"host": 0.025, "cluster-one/od/__idle__": 0.09, "cluster-one/spot/__idle__": 0.022, "cluster-one/host/__idle__": 0.075}},
		{"aggregate=tenant&idle=false", map[string]float64{"acme": 0.10, "shop": 0.571875, "batch": 0.086,
			cost.UnallocatedSuffix: 0.025 + 0.00225 + 0.025}},
		{"aggregate=namespace&shareIdle=true&filter=" + url.QueryEscape(`namespace:"shop","batch"`),
			// od's idle: CPU 0.02 over CPU costs 0.26, memory 0.07 over
			// 0.07; spot's all to sleep-1.
			map[string]float64{"shop": 0.671875 + 0.02*0.20/0.26 + 0.07*0.05/0.07, "batch": 0.086 + 0.02*0.06/0.26 + 0.07*0.02/0.07 + 0.022}},
		{"aggregate=container&filter=" + url.QueryEscape(`node:"host"`), map[string]float64{"/system.slice/db.service": 0.025,
			cost.IdleSuffix: 0.075}},
	} {
		t.Run(tc.params, func(t *testing.T) {
			got := f.one(t, tc.params+"&accumulate=true&"+hour)
			if len(got) != len(tc.want) {
				t.Errorf("keys %v, want %v", keys(got), tc.want)
			}
			for k, w := range tc.want {
				if a := got[k]; a == nil || !near(a.TotalCost(), w) {
					t.Errorf("%s: %v, want %.6f", k, a, w)
				}
			}
		})
	}
}

func keys(m map[string]*cost.Allocation) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestAgreesWithRate: over an hour of steady use, GET /v1/allocation and
// the cost rate (GET /v1/containers and /v1/nodes) agree on every
// container's cost, every node's idle, and every node's cost (its idle
// plus what its containers are allocated): on a node that runs pods its
// other cgroups are priced but not allocated from it, in both, whether the
// node reports allocatable resources (od) or not (spot); elsewhere (host)
// every cgroup is.
func TestAgreesWithRate(t *testing.T) {
	f := newFixture(t, allocation.Config{})
	snap, err := f.rate.Read(context.Background(), query.Request{Window: 30 * time.Second,
		Read: kvraft.ReadOptions{Consistency: kvraft.Linearizable}})
	if err != nil {
		t.Fatal(err)
	}
	perContainer := f.one(t, "idle=false&accumulate=true&"+hour)
	idle := f.one(t, "aggregate=node&splitIdle=true&accumulate=true&"+hour)
	allocated := map[string]float64{} // per node, CPU and memory of its allocated containers
	for _, c := range snap.Containers {
		ns, pod, name := cost.UnallocatedSuffix, cost.UnallocatedSuffix, c.Path
		if k := c.Kubernetes; k != nil {
			ns, pod, name = k.Pod.Namespace, k.Pod.Name, k.Container.Name
		}
		key := strings.Join([]string{cost.DefaultCluster, c.Node, ns, pod, name}, "/")
		a := perContainer[key]
		if a == nil || c.CostDollarsPerHour == nil {
			t.Errorf("%s: allocation %v, rate %v", key, a, c.CostDollarsPerHour)
			continue
		}
		if !near(a.TotalCost(), *c.CostDollarsPerHour) || !near(a.CPUCost, *c.CPUCostDollarsPerHour) ||
			!near(a.RAMCost, *c.MemoryCostDollarsPerHour) || !near(a.NetworkCost, *c.NetworkCostDollarsPerHour) {
			t.Errorf("%s: an hour costs %.6f (CPU %.6f, RAM %.6f, network %.6f), the rate %.6f (%.6f, %.6f, %.6f)", key,
				a.TotalCost(), a.CPUCost, a.RAMCost, a.NetworkCost, *c.CostDollarsPerHour, *c.CPUCostDollarsPerHour,
				*c.MemoryCostDollarsPerHour, *c.NetworkCostDollarsPerHour)
		}
		if c.Kubernetes != nil || c.Node == "host" {
			allocated[c.Node] += a.CPUCost + a.RAMCost
		}
	}
	if len(snap.Nodes) != 3 {
		t.Fatalf("nodes %+v", snap.Nodes)
	}
	for _, n := range snap.Nodes {
		a := idle[cost.DefaultCluster+"/"+n.Node+"/"+cost.IdleSuffix]
		if a == nil || n.IdleCostDollarsPerHour == nil || n.CostDollarsPerHour == nil {
			t.Errorf("%s: idle allocation %v, rate %+v", n.Node, a, n.NodeCost)
			continue
		}
		if !near(a.TotalCost(), *n.IdleCostDollarsPerHour) || !near(a.TotalCost()+allocated[n.Node], *n.CostDollarsPerHour) ||
			!near(allocated[n.Node], n.AllocatedCostDollarsPerHour) {
			t.Errorf("%s: an hour's idle %.6f and allocated %.6f; the rate's idle %.6f, allocated %.6f, cost %.6f", n.Node,
				a.TotalCost(), allocated[n.Node], *n.IdleCostDollarsPerHour, n.AllocatedCostDollarsPerHour, *n.CostDollarsPerHour)
		}
	}
}

// TestStepsAndConsistency: steps add up to the window; each consistency
// the other reads take is taken; the default (bounded) answers the same.
func TestStepsAndConsistency(t *testing.T) {
	f := newFixture(t, allocation.Config{})
	whole := f.one(t, "aggregate=namespace&consistency=linearizable&"+hour)
	code, steps := f.get(t, "aggregate=namespace&step=20m&"+hour)
	if code != http.StatusOK || len(steps.Data) != 3 || steps.Currency != "USD" {
		t.Fatalf("step=20m: %d %q, %d sets in %q", code, steps.Message, len(steps.Data), steps.Currency)
	}
	for k, a := range whole {
		sum := 0.0
		for _, set := range steps.Data {
			if b := set[k]; b != nil {
				sum += b.TotalCost()
				if b.Minutes() != 20 {
					t.Errorf("%s: %v minutes in a step of 20", k, b.Minutes())
				}
			}
		}
		// Each step's CPU, memory and network costs are rounded to 6
		// decimals.
		if math.Abs(sum-a.TotalCost()) > 9*5e-7 {
			t.Errorf("%s: steps add up to %.6f, the hour %.6f", k, sum, a.TotalCost())
		}
	}
	for _, c := range []string{"consistency=bounded&max_staleness=5s", "consistency=eventual", "consistency=session&index=1", ""} {
		got := f.one(t, "aggregate=namespace&"+c+"&"+hour)
		for k, a := range whole {
			if b := got[k]; b == nil || b.TotalCost() != a.TotalCost() {
				t.Errorf("%s: %s %v, linearizable %v", c, k, b, a)
			}
		}
	}
}

// TestErrors: bad parameters and an unknown aggregate are a 400 in
// OpenCost's envelope that names the parameter and the reason; too much
// data a 413; and none of them changes what the next query answers.
func TestErrors(t *testing.T) {
	f := newFixture(t, allocation.Config{MaxAllocations: 5})
	before := f.one(t, "aggregate=namespace&"+hour)
	for _, tc := range []struct {
		params string
		code   int
		want   string
	}{
		{"aggregate=namespace", 400, "invalid parameter window: "},
		{"window=3x", 400, `invalid parameter window="3x": `},
		{"aggregate=nmespace&" + hour, 400, `invalid parameter aggregate="nmespace": unknown property "nmespace"`},
		{"aggregate=annotation:x&" + hour, 400, "not supported by Penny"},
		{"aggregte=namespace&" + hour, 400, "invalid parameter aggregte="},
		{"step=10s&" + hour, 400, `invalid parameter step="10s": is shorter than 1m0s`},
		{"shareIdle=maybe&" + hour, 400, `invalid parameter shareIdle="maybe": want true or false`},
		{"filter=" + url.QueryEscape(`namespace:shop`) + "&" + hour, 400, "invalid parameter filter="},
		{"consistency=strong&" + hour, 400, "consistency"},
		{"max_staleness=1s&" + hour, 400, "invalid parameter consistency: max_staleness and index need consistency"},
		{"consistency=bounded&max_staleness=-1s&" + hour, 400, "max_staleness"},
		{"window=" + url.QueryEscape(t0.Add(24*time.Hour*365).Format(time.RFC3339)+","+t0.Add(24*time.Hour*366).Format(time.RFC3339)),
			400, "starts in the future"},
		// Per container and per 20 minutes: 3 × 8 allocations, more than 5.
		{"step=20m&" + hour, 413, "more than 5 allocations"},
	} {
		t.Run(tc.params, func(t *testing.T) {
			code, r := f.get(t, tc.params)
			if code != tc.code || r.Status != "error" || r.Data != nil || !strings.Contains(r.Message, tc.want) {
				t.Errorf("%d %+v, want %d and a message with %q", code, r, tc.code, tc.want)
			}
		})
	}
	resp, err := http.Post(f.url+allocation.Path+"?"+hour, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
		t.Errorf("POST: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
	after := f.one(t, "aggregate=namespace&"+hour)
	for k, a := range before {
		if b := after[k]; b == nil || b.TotalCost() != a.TotalCost() {
			t.Errorf("after the errors, %s costs %v, before %v", k, b, a)
		}
	}
}

// blocked is a history that answers when told to.
type blocked struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocked) SpansByStep(context.Context, time.Time, time.Time, time.Duration, kvraft.ReadOptions) ([]cost.Series, []cost.NodeUsage, error) {
	b.entered <- struct{}{}
	<-b.release
	return nil, nil, nil
}

// TestBusy: queries compute MaxConcurrent at a time; one that waits its
// whole timeout for its turn is a 503 with Retry-After, and the others go
// on.
func TestBusy(t *testing.T) {
	b := &blocked{entered: make(chan struct{}, 2), release: make(chan struct{})}
	h, err := allocation.NewHandler(allocation.Config{History: b, MaxConcurrent: 1, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, allocation.Path+"?"+hour, nil))
		first <- w
	}()
	<-b.entered
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, allocation.Path+"?"+hour, nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "too many") {
		t.Errorf("second query: %d %q", w.Code, w.Body.String())
	}
	close(b.release)
	if w := <-first; w.Code != http.StatusOK {
		t.Errorf("first query: %d %s", w.Code, w.Body.String())
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  allocation.Config
		want string
	}{
		{allocation.Config{Cluster: "a/b"}, "no / in a cluster name"},
		{allocation.Config{MaxConcurrent: -1}, "max concurrent"},
		{allocation.Config{}, "no history reader"},
	} {
		if _, err := allocation.NewHandler(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
