package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/scaler"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

// allocPricing prices on-demand nodes at 0.04 a core-hour and 0.005 a
// GiB-hour, spot nodes at 0.01 and 0.001.
const allocPricing = `apiVersion: penny.dev/v1
kind: Pricing
defaults: {cpuCoreHour: 0.04, ramGiBHour: 0.005, spotCPUCoreHour: 0.01, spotRAMGiBHour: 0.001}
`

// allocNode is a simulated agent's node: its facts and its cgroups, each
// using the same all along.
type allocNode struct {
	name    string
	facts   nodemeta.Facts
	cgroups []allocCgroup
}

type allocCgroup struct {
	path     string
	meta     map[string]string // pod metadata, nil outside pods
	cpuCores float64
	rss      int64
	reqPerS  uint64 // requests answered per second
}

// podCgroup is pod's container; a pod of deployment (its app label) when
// deployment is not empty, of no controller else.
func podCgroup(ns, pod, deployment string, reqMillis, reqMemory int64, cpuCores float64, rss int64, reqPerS uint64) allocCgroup {
	p := &podmeta.Pod{UID: "uid-" + pod, Namespace: ns, Name: pod, Labels: map[string]string{"app": pod}}
	if deployment != "" {
		p.Labels = map[string]string{"app": deployment, "pod-template-hash": "5d8f6b"}
		p.OwnerKind, p.OwnerName = "ReplicaSet", deployment+"-5d8f6b"
	}
	return allocCgroup{path: "/kubepods/" + pod + "/app", cpuCores: cpuCores, rss: rss, reqPerS: reqPerS,
		meta: podmeta.Encode(p, &podmeta.Container{Name: "app", RequestCPUMillis: reqMillis, RequestMemory: reqMemory})}
}

// allocNodes cost, per hour (allocPricing):
//
//	od    on-demand, allocatable 4 cores, 16 GiB: 0.16 + 0.08 = 0.24
//	  shop/web    deployment web: request 1 core, 2 GiB; uses 0.5, 1; 20 requests/s  0.04 + 0.01  = 0.05
//	  shop/api    deployment api: no request; uses 1 core, 1 GiB; 10 requests/s      0.04 + 0.005 = 0.045
//	  kubelet     0.25 core, 512 MiB, priced, not allocated: 0.01 + 0.0025 = 0.0125
//	  idle: CPU 0.16 - 0.08, memory 0.08 - 0.015: 0.145
//	spot  spot, allocatable 4 cores, 16 GiB: 0.04 + 0.016 = 0.056
//	  batch/job   no controller: request 0.5 core, 1 GiB; uses 1.5, 0.5 GiB         0.015 + 0.001 = 0.016
//	  shop/web-2  deployment web: as web; 20 requests/s                             0.01 + 0.002 = 0.012
//	  idle: CPU 0.04 - 0.025, memory 0.016 - 0.003: 0.028
var allocNodes = []allocNode{
	{"alloc-od", nodemeta.Facts{Name: "alloc-od", CapacityType: nodemeta.OnDemand, AllocatableCPUMillis: 4000,
		AllocatableMemoryBytes: 16 << 30, CapacityCPUMillis: 4000, CapacityMemoryBytes: 16 << 30, Source: nodemeta.SourceKubernetes},
		[]allocCgroup{podCgroup("shop", "web", "web", 1000, 2<<30, 0.5, 1<<30, 20), podCgroup("shop", "api", "api", 0, 0, 1, 1<<30, 10),
			{path: "/system.slice/kubelet.service", cpuCores: 0.25, rss: 512 << 20}}},
	{"alloc-spot", nodemeta.Facts{Name: "alloc-spot", CapacityType: nodemeta.Spot, AllocatableCPUMillis: 4000,
		AllocatableMemoryBytes: 16 << 30, CapacityCPUMillis: 4000, CapacityMemoryBytes: 16 << 30, Source: nodemeta.SourceKubernetes},
		[]allocCgroup{podCgroup("batch", "job", "", 500, 1<<30, 1.5, 512<<20, 0), podCgroup("shop", "web-2", "web", 1000, 2<<30, 0.5, 1<<30, 20)}},
}

// allocPerHour is what aggregate=namespace costs per hour, and
// allocRequestsPerS how many requests a second it answers.
var (
	allocPerHour      = map[string]float64{"shop": 0.107, "batch": 0.016, cost.UnallocatedSuffix: 0.0125, cost.IdleSuffix: 0.173}
	allocRequestsPerS = map[string]float64{"shop": 50}
)

// simAgent streams a node's samples, taken every 2 s of sample time from
// start, through a real shipper to the replicas.
type simAgent struct {
	node  allocNode
	start time.Time
	sh    *shipper.Shipper
	next  int
}

func newSimAgent(t *testing.T, ctx context.Context, urls []string, n allocNode, start time.Time) *simAgent {
	t.Helper()
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: n.name})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := shipper.New(shipper.Config{URLs: urls, BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond,
		AckTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, enc)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = sh.Run(ctx); close(done) }()
	t.Cleanup(func() { <-done })
	return &simAgent{node: n, start: start, sh: sh}
}

const simStep = 2 * time.Second

// sendUntil submits the samples up to sample time end.
func (a *simAgent) sendUntil(t *testing.T, end time.Time) {
	t.Helper()
	meta := nodemeta.Encode(&a.node.facts)
	for ; !a.start.Add(time.Duration(a.next) * simStep).After(end); a.next++ {
		secs := float64(a.next) * simStep.Seconds()
		s := &wire.Snapshot{Time: a.start.Add(time.Duration(a.next) * simStep), Interval: simStep, Meta: meta}
		for j, c := range a.node.cgroups {
			s.Series = append(s.Series, wire.SeriesState{Path: c.path, ID: uint64(j + 10), Meta: c.meta,
				Values: wire.Values{Processes: 1, RSSBytes: c.rss, CPUUsageUsec: uint64(c.cpuCores * secs * 1e6),
					Requests: uint64(float64(c.reqPerS) * secs)}})
		}
		if err := a.sh.Submit(s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allocationOf asks a replica for the cost of [from, to) and returns its
// status and body.
func allocationOf(t *testing.T, r *replica, params string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + r.api + "/v1/allocation?" + params)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func windowParam(from, to time.Time) string {
	return "window=" + url.QueryEscape(from.UTC().Format(time.RFC3339)+","+to.UTC().Format(time.RFC3339))
}

// checkCosts compares an answer of aggregate=namespace over d with
// allocPerHour.
func checkCosts(t *testing.T, what string, body []byte, d time.Duration) {
	t.Helper()
	var r cost.Response
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data) != 1 {
		t.Fatalf("%s: %s: %v", what, body, err)
	}
	if len(r.Data[0]) != len(allocPerHour) {
		t.Errorf("%s: %d allocations, want %d: %s", what, len(r.Data[0]), len(allocPerHour), body)
	}
	for k, perHour := range allocPerHour {
		want := perHour * d.Hours()
		a := r.Data[0][k]
		if a == nil || math.Abs(a.TotalCost()-want) > 2e-6 {
			t.Errorf("%s: %s costs %v, want %.6f", what, k, a, want)
			continue
		}
		// The requests the agents counted, and what 1,000 of them cost.
		reqs := allocRequestsPerS[k] * d.Seconds()
		per1k, ok := a.CostPer1kRequests()
		if a.Requests != reqs || ok != (reqs > 0) || ok && math.Abs(per1k-want/reqs*1000) > 2e-6/reqs*1000 {
			t.Errorf("%s: %s answered %v requests (%v per 1,000), want %v", what, k, a.Requests, per1k, reqs)
		}
	}
}

// TestAllocationOnEveryReplica streams two simulated nodes' samples (an
// on-demand and a spot node, pods with and without requests, a system
// cgroup, a deployment with a pod on each) through the real ingest of
// three aggregator processes, rolled up faster than real time. GET
// /v1/allocation then answers the same, byte for byte, on every replica at
// consistency=linearizable, with the costs and the requests the agents
// counted (costPer1kRequests) computed by hand, and so does `penny cost`;
// `penny scale recommend` splits the deployment's cost per 1,000 requests
// between spot and on-demand and prices moving it and its CostPolicy's
// decision. Bad parameters and an unknown
// aggregate are a 400 that says why; a pricing file with a bad field is
// refused with the field and the reason, and the minutes rolled after it
// are priced as before.
func TestAllocationOnEveryReplica(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pricing.yaml")
	if err := os.WriteFile(file, []byte(allocPricing), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newProcCluster(t, 3, "--history-roll-every=200ms", "--pricing-file", file, "--cost-cluster-name", "test")
	c.waitHealthy(c.replicas...)
	var urls []string
	for _, r := range c.replicas {
		urls = append(urls, "http://"+r.api)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now().Add(-40 * time.Minute).Truncate(time.Minute)
	var agents []*simAgent
	for _, n := range allocNodes {
		agents = append(agents, newSimAgent(t, ctx, urls, n, start))
	}
	// rolled waits until every node's minutes are rolled up to `to`.
	rolled := func(to time.Time) {
		t.Helper()
		eventually(t, "minutes rolled to "+to.Format(time.RFC3339), 60*time.Second, func() error {
			for _, n := range allocNodes {
				g, err := client(c.replicas[0]).Get(ctx, history.CursorKey(n.name), kvraft.ReadOptions{Consistency: kvraft.Linearizable})
				if err != nil {
					return err
				}
				cur, err := history.DecodeCursor(g.Value)
				if err != nil {
					return err
				}
				if cur.MinuteMs < to.UnixMilli() {
					return fmt.Errorf("%s rolled to %s", n.name, time.UnixMilli(cur.MinuteMs).UTC())
				}
			}
			return nil
		})
	}

	// Ten minutes, from a minute after the first samples.
	from, to := start.Add(time.Minute), start.Add(11*time.Minute)
	for _, a := range agents {
		a.sendUntil(t, to.Add(30*time.Second))
	}
	rolled(to)
	params := "aggregate=namespace&accumulate=true&consistency=linearizable&" + windowParam(from, to)
	var first []byte
	for _, r := range c.replicas {
		code, body := allocationOf(t, r, params)
		if code != http.StatusOK {
			t.Fatalf("replica %d: %d %s", r.id, code, body)
		}
		if first == nil {
			first = body
			checkCosts(t, "ten minutes", body, 10*time.Minute)
		} else if !bytes.Equal(body, first) {
			t.Errorf("replica %d answers\n%s\nreplica %d\n%s", r.id, body, c.replicas[0].id, first)
		}
	}
	// Per container, the cluster's name leads the keys.
	code, body := allocationOf(t, c.replicas[1], "idle=false&accumulate=true&"+windowParam(from, to))
	if code != http.StatusOK || !bytes.Contains(body, []byte(`"test/alloc-od/shop/web/app"`)) ||
		!bytes.Contains(body, []byte(`"test/alloc-od/__unallocated__/__unallocated__//system.slice/kubelet.service"`)) {
		t.Errorf("per container: %d %s", code, body)
	}

	// penny cost reads the same from any replica.
	out, err := exec.Command(c.bin, "cost", "--aggregator", "http://"+c.replicas[2].api, "--window",
		from.UTC().Format(time.RFC3339)+","+to.UTC().Format(time.RFC3339), "--by", "namespace").CombinedOutput()
	if err != nil {
		t.Fatalf("penny cost: %v\n%s", err, out)
	}
	// shop: 0.107 an hour, 30,000 requests in the ten minutes.
	for _, want := range []string{"shop 0.015000 0.002833 0.000000 0.017833 100.0% 75.0% 96.0% 0.0005944", "__idle__", "TOTAL"} {
		if !strings.Contains(strings.Join(strings.Fields(string(out)), " "), want) {
			t.Errorf("penny cost lacks %q:\n%s", want, out)
		}
	}

	// penny scale recommend: shop's workloads over the ten minutes, with
	// a CostPolicy's decision for web written as the leader writes it.
	rec, err := json.Marshal(costpolicy.Record{UID: "uid-web-policy", Replicas: 1, Reason: "ScaleDownCheaper", Time: to,
		TargetKind: "Deployment", TargetName: "web", ObjectiveMetric: scaler.MetricRequestLatencyP99, ObjectiveSeconds: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(c.replicas[0]).Put(ctx, costpolicy.DecisionKey("shop", "web-policy"), rec); err != nil {
		t.Fatal(err)
	}
	var table string
	eventually(t, "penny scale recommend", 20*time.Second, func() error {
		out, err := exec.Command(c.bin, "scale", "recommend", "--aggregator", "http://"+c.replicas[1].api, "-n", "shop", "--window",
			from.UTC().Format(time.RFC3339)+","+to.UTC().Format(time.RFC3339)).CombinedOutput()
		table = string(out)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(table, "200ms") { // the policy's objective: its decision is read
			return fmt.Errorf("no decision yet:\n%s", out)
		}
		return nil
	})
	t.Logf("penny scale recommend -n shop --window %s,%s\n%s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), table)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	rows := map[string]string{}
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		rows[f[0]] = strings.Join(f, " ")
	}
	for name, want := range map[string]string{
		// Two replicas, one recommended. 24,000 requests for 0.05/6 on
		// on-demand and 0.012/6 on spot: 0.0004306 per 1,000, 0.0006944
		// on on-demand, 0.0001667 on spot. Moving the on-demand part to
		// spot saves, measured, 0.05 × 730 × (1 − 0.012/0.05) = 27.74 a
		// month; one replica fewer, at 0.062/2 an hour, 22.63.
		"shop/deployment:web": "shop/deployment:web 2 1 0.0004306 0.0006944 0.0001667 - 200ms 27.74 22.63 " +
			"PodDisruptionBudgets unknown (outside Kubernetes): spot only if it tolerates interruption; scale to the policy's decision",
		// On on-demand only: priced at the spot prices of its node's type,
		// (0.04 × (1 − 0.25) + 0.005 × (1 − 0.2)) × 730 = 24.82.
		"shop/deployment:api": "shop/deployment:api 1 1 0.00125 0.00125 - - - 24.82 - " +
			"PodDisruptionBudgets unknown (outside Kubernetes): spot only if it tolerates interruption; no CostPolicy: replicas as they are",
	} {
		if rows[name] != want {
			t.Errorf("penny scale recommend, %s:\n got %q\nwant %q\n%s", name, rows[name], want, table)
		}
	}
	if len(rows) != 2 || !strings.Contains(lines[0], "PodDisruptionBudgets unknown") {
		t.Errorf("penny scale recommend:\n%s", table)
	}

	// Bad parameters: a 400 from every replica, saying why.
	for _, bad := range []struct{ params, want string }{
		{"aggregate=namespaces&" + windowParam(from, to), `invalid parameter aggregate=\"namespaces\": unknown property`},
		{"window=yesterday-ish", `invalid parameter window=\"yesterday-ish\"`},
		{"consistency=linearizable&index=0&" + windowParam(from, to), "index"},
	} {
		for _, r := range c.replicas {
			if code, body := allocationOf(t, r, bad.params); code != http.StatusBadRequest ||
				!bytes.Contains(body, []byte(bad.want)) || !bytes.Contains(body, []byte(`"status":"error"`)) {
				t.Errorf("replica %d, %s: %d %s", r.id, bad.params, code, body)
			}
		}
	}
	out, err = exec.Command(c.bin, "cost", "--aggregator", "http://"+c.replicas[0].api, "--by", "team").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 ||
		!strings.Contains(string(out), `penny cost: the aggregator refused the request: 400 Bad Request: invalid parameter aggregate="team"`) {
		t.Errorf("penny cost --by team: %v\n%s", err, out)
	}

	// A pricing file with a bad field is refused, with the field and the
	// reason; the prices in force stay.
	if err := os.WriteFile(file, []byte(strings.Replace(allocPricing, "ramGiBHour: 0.005", "ramGiBHour: -1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.replicas {
		eventually(t, fmt.Sprintf("replica %d refuses the pricing file", r.id), 40*time.Second, func() error {
			resp, err := http.Get("http://" + r.api + pricing.Path)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var p pricing.Response
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				return err
			}
			if p.Refused == nil {
				return fmt.Errorf("not refused yet: %+v", p)
			}
			if !strings.Contains(p.Refused.Error, "defaults.ramGiBHour") || !strings.Contains(p.Refused.Error, "-1") ||
				*p.Pricing.Defaults.RAMGiBHour != 0.005 {
				t.Errorf("replica %d: refused %q, RAM at %v", r.id, p.Refused.Error, *p.Pricing.Defaults.RAMGiBHour)
			}
			return nil
		})
	}
	// Three more minutes, rolled after the refusal: priced as before.
	from, to = to, to.Add(3*time.Minute)
	for _, a := range agents {
		a.sendUntil(t, to.Add(30*time.Second))
	}
	rolled(to)
	code, body = allocationOf(t, c.replicas[1], "aggregate=namespace&accumulate=true&consistency=linearizable&"+windowParam(from, to))
	if code != http.StatusOK {
		t.Fatalf("after the refusal: %d %s", code, body)
	}
	checkCosts(t, "after the refusal", body, 3*time.Minute)
}
