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
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/pricing"
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
}

func podCgroup(ns, pod string, reqMillis, reqMemory int64, cpuCores float64, rss int64) allocCgroup {
	return allocCgroup{path: "/kubepods/" + pod + "/app", cpuCores: cpuCores, rss: rss,
		meta: podmeta.Encode(&podmeta.Pod{UID: "uid-" + pod, Namespace: ns, Name: pod, Labels: map[string]string{"app": pod}},
			&podmeta.Container{Name: "app", RequestCPUMillis: reqMillis, RequestMemory: reqMemory})}
}

// allocNodes cost, per hour (allocPricing):
//
//	od    on-demand, allocatable 4 cores, 16 GiB: 0.16 + 0.08 = 0.24
//	  shop/web  request 1 core, 2 GiB; uses 0.5, 1    0.04 + 0.01  = 0.05
//	  shop/api  no request; uses 1 core, 1 GiB        0.04 + 0.005 = 0.045
//	  kubelet   0.25 core, 512 MiB, priced, not allocated: 0.01 + 0.0025 = 0.0125
//	  idle: CPU 0.16 - 0.08, memory 0.08 - 0.015: 0.145
//	spot  spot, allocatable 2 cores, 8 GiB: 0.02 + 0.008 = 0.028
//	  batch/job request 0.5 core, 1 GiB; uses 1.5, 0.5 GiB  0.015 + 0.001 = 0.016
//	  idle: CPU 0.02 - 0.015, memory 0.008 - 0.001: 0.012
var allocNodes = []allocNode{
	{"alloc-od", nodemeta.Facts{Name: "alloc-od", CapacityType: nodemeta.OnDemand, AllocatableCPUMillis: 4000,
		AllocatableMemoryBytes: 16 << 30, CapacityCPUMillis: 4000, CapacityMemoryBytes: 16 << 30, Source: nodemeta.SourceKubernetes},
		[]allocCgroup{podCgroup("shop", "web", 1000, 2<<30, 0.5, 1<<30), podCgroup("shop", "api", 0, 0, 1, 1<<30),
			{path: "/system.slice/kubelet.service", cpuCores: 0.25, rss: 512 << 20}}},
	{"alloc-spot", nodemeta.Facts{Name: "alloc-spot", CapacityType: nodemeta.Spot, AllocatableCPUMillis: 2000,
		AllocatableMemoryBytes: 8 << 30, CapacityCPUMillis: 2000, CapacityMemoryBytes: 8 << 30, Source: nodemeta.SourceKubernetes},
		[]allocCgroup{podCgroup("batch", "job", 500, 1<<30, 1.5, 512<<20)}},
}

// allocPerHour is what aggregate=namespace costs per hour.
var allocPerHour = map[string]float64{"shop": 0.095, "batch": 0.016, cost.UnallocatedSuffix: 0.0125, cost.IdleSuffix: 0.157}

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
				Values: wire.Values{Processes: 1, RSSBytes: c.rss, CPUUsageUsec: uint64(c.cpuCores * secs * 1e6)}})
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
		if a := r.Data[0][k]; a == nil || math.Abs(a.TotalCost()-want) > 2e-6 {
			t.Errorf("%s: %s costs %v, want %.6f", what, k, a, want)
		}
	}
}

// TestAllocationOnEveryReplica streams two simulated nodes' samples (an
// on-demand and a spot node, pods with and without requests, a system
// cgroup) through the real ingest of three aggregator processes, rolled up
// faster than real time. GET /v1/allocation then answers the same, byte
// for byte, on every replica at consistency=linearizable, with the costs
// computed by hand, and so does `penny cost`. Bad parameters and an unknown
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
	for _, want := range []string{"shop 0.013333 0.002500 0.000000 0.015833", "__idle__", "TOTAL"} {
		if !strings.Contains(strings.Join(strings.Fields(string(out)), " "), want) {
			t.Errorf("penny cost lacks %q:\n%s", want, out)
		}
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
