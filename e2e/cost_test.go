//go:build e2e

package e2e

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	cmv1beta2 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/query"
)

// pricingValues is the chart's pricing block the test installs with. The
// prices are high so that a minute or two costs far more than the
// answers' 6 decimals.
const pricingValues = `pricing:
  defaults:
    cpuCoreHour: 4
    ramGiBHour: 2
    spotCPUCoreHour: 1
    spotRAMGiBHour: 0.5
`

// nodePrices are pricingValues per node: e2e-node is on-demand (once
// checkNodeFacts relabelled it), e2e-node-2 spot.
var nodePrices = map[string]struct{ cpu, ram float64 }{nodeName: {4, 2}, spotNodeName: {1, 0.5}}

// spotAllocatable is e2e-node-2's allocatable CPU (cores) and memory
// (GiB): see newKubelet.
const spotAllocCPU, spotAllocGiB = 7, 28

// costPod is a Deployment of one pod the cost test prices: on a node, with
// requests or without, its process holding rss bytes.
type costPod struct {
	ns, name, node   string
	reqMillis, reqMi int64
	rss              int64
}

var costPods = []costPod{
	{"ledger", "ledger-api", nodeName, 500, 256, 32 << 20},
	{"ledger", "ledger-worker", nodeName, 0, 0, 96 << 20},
	{"batch", "batch-job", spotNodeName, 1000, 512, 32 << 20},
	{"batch", "batch-scratch", spotNodeName, 0, 0, 64 << 20},
}

func (p costPod) manifest() string {
	res := ""
	if p.reqMillis > 0 {
		res = fmt.Sprintf("\n          resources:\n            requests:\n              cpu: %dm\n              memory: %dMi", p.reqMillis, p.reqMi)
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  replicas: 1
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
        e2e.penny.dev/workload: "true"
    spec:
      nodeSelector:
        kubernetes.io/hostname: %[3]s
      containers:
        - name: main
          image: registry.k8s.io/pause:3.10%[4]s
`, p.name, p.ns, p.node, res)
}

// costTenants and costTiers are the labels of costPods' namespaces.
var (
	costTenants = map[string]string{"ledger": "fintech", "batch": "research"}
	costTiers   = map[string]string{"ledger": "gold", "batch": "bronze"}
)

// sample is what the test read of a pod's cgroup at one time.
type sample struct {
	at       time.Time
	cpuUsec  int64
	rssBytes int64
}

// costRun is the cost test under way: its pods' workloads, sampled every
// half second from the start of the window, from.
type costRun struct {
	from    time.Time
	mu      sync.Mutex
	samples map[string][]sample // by pod name
	stop    chan struct{}
	done    chan struct{}
}

// deployCost creates costPods' Deployments, on both nodes.
func (c *cluster) deployCost(t *testing.T) {
	t.Helper()
	// Tenants and tiers on the namespaces only: the chart's webhook stamps
	// them on the pods (checkCost reads them back by tenant and tier).
	docs := []string{}
	for ns, tenant := range costTenants {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels: {cost.tenant-id: %s, cost.service-tier: %s}\n",
			ns, tenant, costTiers[ns]))
	}
	for _, p := range costPods {
		docs = append(docs, p.manifest())
	}
	c.kubectl(t, "apply", "-f", c.cp.writeFile(t, "cost.yaml", []byte(strings.Join(docs, "---\n"))))
}

// startCost waits until costPods run and every replica shows them
// attributed to their pods, and starts sampling their cgroups: CPU time
// from cpu.stat and RSS from /proc. The window starts at the next minute
// boundary: after checkNodeFacts made e2e-node an on-demand node.
func (c *cluster) startCost(t *testing.T) *costRun {
	t.Helper()
	ws := map[string]*workload{}
	c.kubelet.wait(t, 60*time.Second, "the cost test's pods running", func() error {
		for _, p := range costPods {
			w := c.kubelet.workloads(p.ns, p.name+"-")
			if len(w) != 1 {
				return fmt.Errorf("%s runs %d pods", p.name, len(w))
			}
			if ws[p.name] == nil {
				ws[p.name] = w[0]
				w[0].setRSS(p.rss)
			}
		}
		return nil
	})
	c.kubelet.wait(t, 60*time.Second, "the cost test's pods attributed on every replica", func() error {
		for _, h := range c.hosts {
			for _, ns := range []string{"ledger", "batch"} {
				var pods query.Pods
				if err := c.getJSON(apiURL(h)+"/v1/pods?consistency=linearizable&namespace="+ns, &pods); err != nil {
					return err
				}
				for _, p := range costPods {
					if p.ns != ns {
						continue
					}
					found := false
					for _, got := range pods.Pods {
						found = found || strings.HasPrefix(got.Name, p.name+"-") && got.Node == p.node
					}
					if !found {
						return fmt.Errorf("%s: no pod of %s on %s in %+v", h.IP, p.name, p.node, pods.Pods)
					}
				}
			}
		}
		return nil
	})
	r := &costRun{from: time.Now().Add(2 * time.Second).Truncate(time.Minute).Add(time.Minute),
		samples: map[string][]sample{}, stop: make(chan struct{}), done: make(chan struct{})}
	layout := c.kubelet.layout
	go func() {
		defer close(r.done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			for name, w := range ws {
				s := sample{at: time.Now(), cpuUsec: cpuUsage(layout, w.group.Path), rssBytes: w.group.SumVmRSS()}
				r.mu.Lock()
				r.samples[name] = append(r.samples[name], s)
				r.mu.Unlock()
			}
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-r.stop:
		default:
			close(r.stop)
		}
		<-r.done
	})
	t.Logf("cost window from %s", r.from.UTC().Format(time.RFC3339))
	return r
}

// cpuUsage reads a cgroup's usage_usec (-1 if it cannot).
func cpuUsage(layout cgroupfs.Layout, path string) int64 {
	b, err := os.ReadFile(filepath.Join(layout.V2, path, "cpu.stat"))
	if err != nil {
		return -1
	}
	kv, err := cgroupfs.ParseKV(b, "usage_usec")
	if err != nil {
		return -1
	}
	return kv["usage_usec"]
}

// usage is a pod's CPU cores and RSS bytes on average over [from, to), by
// the test's samples: CPU time interpolated at the window's edges.
func (r *costRun) usage(t *testing.T, pod string, from, to time.Time) (cores, rss float64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.samples[pod]
	at := func(x time.Time) float64 {
		for i := 1; i < len(ss); i++ {
			a, b := ss[i-1], ss[i]
			if !b.at.Before(x) && a.cpuUsec >= 0 && b.cpuUsec >= 0 {
				f := float64(x.Sub(a.at)) / float64(b.at.Sub(a.at))
				return float64(a.cpuUsec) + f*float64(b.cpuUsec-a.cpuUsec)
			}
		}
		t.Fatalf("%s: no samples around %s", pod, x)
		return 0
	}
	var sum float64
	n := 0
	for _, s := range ss {
		if !s.at.Before(from) && s.at.Before(to) {
			sum += float64(s.rssBytes)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("%s: no RSS samples in the window", pod)
	}
	return (at(to) - at(from)) / 1e6 / to.Sub(from).Seconds(), sum / float64(n)
}

// checkCost prices the whole minutes the cost test's pods ran, as the
// test computes it from its own samples and the pods' requests (each
// charged max(request, usage) at its node's prices), and checks within 1%
// that every replica's GET /v1/allocation (aggregate=namespace, at
// consistency=linearizable, the same on every replica) and `penny cost
// --by namespace` agree with it, that e2e-node-2's idle is its allocatable
// CPU and memory at spot prices minus its pods' cost (the cgroups the
// agents see outside their pods take none of it), and that
// kubectl get --raw shows each pod's cost_dollars_per_hour.
func (c *cluster) checkCost(t *testing.T, r *costRun) {
	t.Helper()
	// At least a minute, and every whole minute rolled up since.
	to := time.Now().Add(-8 * time.Second).Truncate(time.Minute)
	if least := r.from.Add(time.Minute); to.Before(least) {
		to = least
	}
	window := r.from.UTC().Format(time.RFC3339) + "," + to.UTC().Format(time.RFC3339)
	hours := to.Sub(r.from).Hours()
	params := url.Values{"window": {window}, "aggregate": {"namespace"}, "accumulate": {"true"}, "consistency": {"linearizable"}}
	var first []byte
	c.kubelet.wait(t, 2*time.Minute, "the cost window "+window+" rolled up", func() error {
		var err error
		first, err = c.getBody(apiURL(c.hosts[0]) + "/v1/allocation?" + params.Encode())
		if err != nil {
			return err
		}
		var resp cost.Response
		if err := json.Unmarshal(first, &resp); err != nil || len(resp.Data) != 1 {
			return fmt.Errorf("%s: %v", first, err)
		}
		for _, ns := range []string{"ledger", "batch"} {
			if a := resp.Data[0][ns]; a == nil || a.Minutes() < to.Sub(r.from).Minutes() {
				return fmt.Errorf("%s: %v", ns, a)
			}
		}
		return nil
	})

	// The test's own computation.
	want := map[string]float64{}      // per namespace
	allocated := map[string]float64{} // per node: CPU and memory cost of its pods
	for _, p := range costPods {
		cores, rss := r.usage(t, p.name, r.from, to)
		cpu, ram := p.charge(cores, rss)
		want[p.ns] += (cpu + ram) * hours
		allocated[p.node] += (cpu + ram) * hours
		t.Logf("%s/%s on %s: %.4f cores, %.1f MiB in the window: %.6f an hour", p.ns, p.name, p.node, cores, rss/(1<<20), cpu+ram)
	}
	spot := nodePrices[spotNodeName]
	wantIdle := (spotAllocCPU*spot.cpu+spotAllocGiB*spot.ram)*hours - allocated[spotNodeName]
	near := func(got, want float64) bool { return math.Abs(got-want) <= 0.01*want }

	// GET /v1/allocation: the same on every replica, and the test's.
	for _, h := range c.hosts[1:] {
		if b, err := c.getBody(apiURL(h) + "/v1/allocation?" + params.Encode()); err != nil || string(b) != string(first) {
			t.Errorf("%s answers\n%s (%v)\n%s answers\n%s", h.IP, b, err, c.hosts[0].IP, first)
		}
	}
	var resp cost.Response
	if err := json.Unmarshal(first, &resp); err != nil {
		t.Fatal(err)
	}
	for ns, w := range want {
		if got := resp.Data[0][ns].TotalCost(); !near(got, w) {
			t.Errorf("GET /v1/allocation: %s costs %.6f over %s, the test computes %.6f", ns, got, window, w)
		}
	}
	params.Set("aggregate", "node")
	params.Set("splitIdle", "true")
	if err := c.getJSON(apiURL(c.hosts[2])+"/v1/allocation?"+params.Encode(), &resp); err != nil {
		t.Fatal(err)
	}
	if a := resp.Data[0][cost.DefaultCluster+"/"+spotNodeName+"/"+cost.IdleSuffix]; a == nil || !near(a.TotalCost(), wantIdle) {
		t.Errorf("%s's idle: %v, the test computes %.6f", spotNodeName, a, wantIdle)
	}

	// penny cost, as a user runs it.
	args := append([]string{"cost", "--aggregator", apiURL(c.hosts[1]), "--window", window, "--by", "namespace"}, c.pki.adminArgs()...)
	out, err := execOutput(c.penny, args...)
	if err != nil {
		t.Fatalf("penny %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("penny %s\n%s", strings.Join(args, " "), out)
	out, err = execOutput(c.penny, append(args, "--csv")...)
	if err != nil {
		t.Fatalf("penny cost --csv: %v\n%s", err, out)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("penny cost --csv: %v\n%s", err, out)
	}
	seen := 0
	for _, rec := range recs[1:] {
		if w, ok := want[rec[0]]; ok {
			seen++
			if got, err := strconv.ParseFloat(rec[10], 64); err != nil || !near(got, w) {
				t.Errorf("penny cost: %s costs %s, the test computes %.6f", rec[0], rec[10], w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("penny cost --csv: %d of %d namespaces:\n%s", seen, len(want), out)
	}

	// By the tenants and tiers the webhook stamped on the pods from their
	// namespaces' labels.
	tenantArgs := append([]string{"cost", "--aggregator", apiURL(c.hosts[2]), "--window", window, "--by", "tenant"}, c.pki.adminArgs()...)
	out, err = execOutput(c.penny, tenantArgs...)
	if err != nil {
		t.Fatalf("penny %s: %v\n%s", strings.Join(tenantArgs, " "), err, out)
	}
	t.Logf("penny %s\n%s", strings.Join(tenantArgs, " "), out)
	out, err = execOutput(c.penny, append(tenantArgs, "--csv")...)
	if err != nil {
		t.Fatalf("penny cost --by tenant --csv: %v\n%s", err, out)
	}
	if recs, err = csv.NewReader(strings.NewReader(out)).ReadAll(); err != nil {
		t.Fatalf("penny cost --by tenant --csv: %v\n%s", err, out)
	}
	for ns, tenant := range costTenants {
		i := slices.IndexFunc(recs, func(rec []string) bool { return rec[0] == tenant })
		if i < 0 {
			t.Errorf("penny cost --by tenant: no row for %s, the tenant the webhook stamped in %s:\n%s", tenant, ns, out)
			continue
		}
		if got, err := strconv.ParseFloat(recs[i][10], 64); err != nil || !near(got, want[ns]) {
			t.Errorf("penny cost --by tenant: %s costs %s, the test computes %.6f for %s", tenant, recs[i][10], want[ns], ns)
		}
	}
	params.Set("aggregate", "label:cost.service-tier")
	params.Del("splitIdle")
	var tiers cost.Response
	if err := c.getJSON(apiURL(c.hosts[0])+"/v1/allocation?"+params.Encode(), &tiers); err != nil {
		t.Fatal(err)
	}
	for ns, tier := range costTiers {
		if a := tiers.Data[0][tier]; a == nil || !near(a.TotalCost(), want[ns]) {
			t.Errorf("aggregate=label:cost.service-tier: %s is %v, the test computes %.6f for %s", tier, a, want[ns], ns)
		}
	}

	// The custom metrics API through kube-apiserver: each pod's cost per
	// hour over the last 30 s, against the test's samples of that time.
	for _, ns := range []string{"ledger", "batch"} {
		raw := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/cost_dollars_per_hour"
		var out string
		c.kubelet.wait(t, time.Minute, "kubectl get --raw "+raw, func() error {
			var err error
			out, err = execOutput(filepath.Join(c.kubeBin, "kubectl"), "--kubeconfig", c.cp.Admin, "get", "--raw", raw)
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			now := time.Now()
			var list cmv1beta2.MetricValueList
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			for _, p := range costPods {
				if p.ns != ns {
					continue
				}
				found := false
				for _, v := range list.Items {
					if !strings.HasPrefix(v.DescribedObject.Name, p.name+"-") {
						continue
					}
					found = true
					cpu, ram := p.charge(r.usage(t, p.name, now.Add(-30*time.Second), now.Add(-time.Second)))
					if got := quantity(v.Value); !near(got, cpu+ram) || v.Metric.Name != "cost_dollars_per_hour" {
						return fmt.Errorf("%s: %s %v (%s), the test computes %.6f", v.DescribedObject.Name, v.Metric.Name, got,
							v.Value.String(), cpu+ram)
					}
				}
				if !found {
					return fmt.Errorf("no value for %s: %s", p.name, out)
				}
			}
			return nil
		})
		t.Logf("kubectl get --raw %s:\n%s", raw, out)
	}
}

// charge is what a pod is charged per hour for using cores and rss bytes,
// at its node's prices: max(request, usage) of each.
func (p costPod) charge(cores, rss float64) (cpu, ram float64) {
	price := nodePrices[p.node]
	return max(float64(p.reqMillis)/1000, cores) * price.cpu, max(float64(p.reqMi)/1024, rss/(1<<30)) * price.ram
}

func quantity(q resource.Quantity) float64 { return q.AsApproximateFloat64() }
