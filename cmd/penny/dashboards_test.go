package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/custommetrics/custommetricstest"
	"github.com/pennyhq/penny/internal/alerts"
	"github.com/pennyhq/penny/internal/dashboards"
	"github.com/pennyhq/penny/internal/freeport"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/simnode"
	"github.com/pennyhq/penny/internal/testenv"
	"github.com/pennyhq/penny/wire"
)

// repoRoot is the repository's root from this package.
const repoRoot = "../.."

// dashAgent is a simulated agent: a simnode node's samples, every
// interval, through a real shipper whose metrics it serves as the agent's
// /metrics.
type dashAgent struct {
	name    string
	metrics *httptest.Server
	stop    chan struct{}
	done    chan struct{}
	sent    atomic.Int64
}

func startDashAgent(t *testing.T, ctx context.Context, urls []string, facts nodemeta.Facts, seed uint64, interval time.Duration) *dashAgent {
	t.Helper()
	reg := prometheus.NewRegistry()
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: facts.Name})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := shipper.New(shipper.Config{URLs: urls, BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond,
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, enc)
	if err != nil {
		t.Fatal(err)
	}
	a := &dashAgent{name: facts.Name, metrics: httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})),
		stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(a.metrics.Close)
	var wg sync.WaitGroup
	wg.Go(func() { _ = sh.Run(ctx) })
	// Every cgroup busy: TCP, page cache reads and throttling in every
	// interval of some container of every pod.
	node := simnode.New(24, seed, time.Hour, true)
	node.ServeRequests() // the request panels have data too
	meta := nodemeta.Encode(&facts)
	wg.Go(func() {
		defer close(a.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-a.stop:
				return
			case now := <-tick.C:
				s := daemon.Snapshot(node.StepAt(now, interval), node.Resolve)
				s.Meta = meta
				if err := sh.Submit(s); err != nil {
					t.Errorf("agent %s: submit: %v", facts.Name, err)
					return
				}
				a.sent.Add(1)
			}
		}
	})
	t.Cleanup(wg.Wait)
	return a
}

// silence stops the agent's samples; its stream and /metrics stay.
func (a *dashAgent) silence() {
	close(a.stop)
	<-a.done
}

// gather returns the metric families of a Prometheus endpoint.
func gather(u string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// labelValuesQuery is Grafana's label_values(selector, label) variable
// query.
var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// pending is a query to prove, and why it does not hold yet.
type pending struct {
	what  string
	check func() error
	err   error
}

// prove checks every query until each holds or until the deadline, and
// fails the test with every one that never held.
func prove(t *testing.T, d time.Duration, ps []*pending) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := ps[:0]
		for _, p := range ps {
			if p.err = p.check(); p.err != nil {
				left = append(left, p)
			}
		}
		ps = left
		if len(ps) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, p := range ps {
		t.Errorf("%s: %v", p.what, p.err)
	}
}

// TestDashboardsOnPrometheus runs every query of every committed dashboard
// and every alert's expression on a real Prometheus that scrapes a real
// Penny cluster: three aggregator processes (pricing file, tenant label,
// custom metrics API) fed by three simulated agents through real shippers
// (one node on spot, a request to the custom metrics API every 200ms), and
// the agents' /metrics. Before Prometheus starts, the cost series are
// backfilled over the last 7 days at a quarter of today's values, as
// OpenMetrics through promtool: the panels that compare with 7 days ago
// have their history, and the cost alerts fire for real. Every panel's
// query, with the dashboard's variables resolved through Prometheus as
// Grafana would, must return a series with a number. Every alert fires
// for real (the cost ones; the budget one with a budget below one tenant's
// cost) or, where nothing in a healthy cluster can make it fire, stays
// quiet as it is and returns series with its threshold lowered. Every rule
// evaluates without error. Then one agent stops sampling: the silent
// agent's alert, lowered to 10s, has that node and no other, and the
// freshness alert's expression fires for real (the namespaces with pods
// on that node are served ever older values).
func TestDashboardsOnPrometheus(t *testing.T) {
	promBin := testenv.RequireTool(t, "prometheus", "apt-get install prometheus")
	promtool := testenv.RequireTool(t, "promtool", "apt-get install prometheus")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	kube := custommetricstest.StartKubeAPI(t)
	kube.AddUser("hpa-token", "system:serviceaccount:kube-system:horizontal-pod-autoscaler", true)
	pricingFile := filepath.Join(t.TempDir(), "pricing.yaml")
	if err := os.WriteFile(pricingFile, []byte(allocPricing), 0o644); err != nil {
		t.Fatal(err)
	}
	var securePorts []string
	for range 3 {
		_, port, err := net.SplitHostPort(freeport.T(t))
		if err != nil {
			t.Fatal(err)
		}
		securePorts = append(securePorts, port)
	}
	c := newProcClusterEach(t, 3, func(id int) []string { return []string{"--secure-port", securePorts[id-1]} },
		append([]string{"--pricing-file", pricingFile, "--cost-tenant-label", "team", "--snapshot-count", "200", "--snapshot-catch-up-entries", "100",
			"--custom-metrics", "--bind-address", "127.0.0.1"}, kube.Args()...)...)
	c.waitHealthy(c.replicas...)
	var urls []string
	for _, r := range c.replicas {
		urls = append(urls, "http://"+r.api)
	}
	// A cost policy's decision in every namespace the agents' pods are
	// in, as the leader writes them (the scaling panels).
	for _, ns := range []string{"default", "shop", "payments", "search", "monitoring", "kube-system"} {
		rec, err := json.Marshal(costpolicy.Record{UID: "uid-" + ns, Replicas: 3, Reason: "Steady", Time: time.Now(),
			TargetKind: "Deployment", TargetName: "svc-1", ObjectiveMetric: "request_latency_p99_seconds", ObjectiveSeconds: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client(c.leader()).Put(ctx, costpolicy.DecisionKey(ns, "svc-1"), rec); err != nil {
			t.Fatal(err)
		}
	}

	const interval = time.Second
	var agents []*dashAgent
	for i, ct := range []nodemeta.CapacityType{nodemeta.OnDemand, nodemeta.OnDemand, nodemeta.Spot} {
		name := fmt.Sprintf("dash-%d", i)
		facts := nodemeta.Facts{Name: name, InstanceType: "m5.xlarge", Region: "eu-west-1", CapacityType: ct,
			AllocatableCPUMillis: 4000, AllocatableMemoryBytes: 16 << 30, CapacityCPUMillis: 4000, CapacityMemoryBytes: 16 << 30,
			Source: nodemeta.SourceKubernetes}
		// Each agent starts with another replica, as agents spread.
		agents = append(agents, startDashAgent(t, ctx, append(urls[i:], urls[:i]...), facts, uint64(i+1), interval))
	}

	// The HPA's reads: every namespace's RSS, from each replica in turn.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var readers sync.WaitGroup
	readers.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:"+securePorts[i%3]+
				"/apis/custom.metrics.k8s.io/v1beta1/namespaces/*/metrics/memory_rss_bytes", nil)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer hpa-token")
			if resp, err := hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	defer readers.Wait()
	defer cancel()

	// The cost series once every node is priced, to backfill, from a few
	// samples in: the first interval of a series counts the counters
	// since its agent started.
	costFamilies := []string{"penny_namespace_cost_dollars_per_hour", "penny_tenant_cost_dollars_per_hour",
		"penny_node_cost_dollars_per_hour", "penny_node_idle_cost_dollars_per_hour"}
	var history []*dto.MetricFamily
	eventually(t, "every node priced on replica 1", 30*time.Second, func() error {
		for _, a := range agents {
			if n := a.sent.Load(); n < 4 {
				return fmt.Errorf("agent %s sent %d samples", a.name, n)
			}
		}
		mfs, err := gather("http://" + c.replicas[0].api + "/metrics")
		if err != nil {
			return err
		}
		history = history[:0]
		for _, name := range costFamilies {
			mf, ok := mfs[name]
			if !ok {
				return fmt.Errorf("no %s", name)
			}
			history = append(history, mf)
		}
		if n := len(mfs["penny_node_cost_dollars_per_hour"].GetMetric()); n != len(agents) {
			return fmt.Errorf("%d nodes priced, want %d", n, len(agents))
		}
		return nil
	})
	var targets []map[string]string
	for _, r := range c.replicas {
		targets = append(targets, map[string]string{"job": "penny-aggregator", "instance": r.api, "cluster": "test"})
	}
	// Every 10 minutes over the last 7 days, every minute around 7 days
	// ago (where offset 7d looks while the test runs), up to 3 hours ago.
	now := time.Now()
	var times []time.Time
	weekAgo := now.Add(-7 * 24 * time.Hour)
	for at := weekAgo.Add(-time.Hour); at.Before(now.Add(-3 * time.Hour)); {
		times = append(times, at)
		step := 10 * time.Minute
		if at.After(weekAgo.Add(-20*time.Minute)) && at.Before(weekAgo.Add(20*time.Minute)) {
			step = time.Minute
		}
		at = at.Add(step)
	}
	tsdb := t.TempDir()
	if err := backfill(ctx, promtool, tsdb, history, targets, times, 0.25); err != nil {
		t.Fatal(err)
	}

	// One tenant over a budget below its cost, one under a budget far
	// above: PennyTenantOverBudget must fire for the first only.
	var tenants []string
	for _, m := range history[1].GetMetric() {
		tenants = append(tenants, m.GetLabel()[0].GetValue())
	}
	slices.Sort(tenants)
	if len(tenants) < 2 {
		t.Fatalf("tenants %v: want two at least", tenants)
	}
	overBudget := tenants[0]
	budgets := filepath.Join(t.TempDir(), "budgets.yaml")
	if err := os.WriteFile(budgets, fmt.Appendf(nil, `groups:
  - name: penny-budgets
    rules:
      - record: penny:tenant_budget_dollars_per_month
        expr: vector(0.000001)
        labels: {tenant: %q}
      - record: penny:tenant_budget_dollars_per_month
        expr: vector(1000000)
        labels: {tenant: %q}
`, overBudget, tenants[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	rulesFile, err := filepath.Abs(filepath.Join(repoRoot, alerts.File))
	if err != nil {
		t.Fatal(err)
	}
	var agentTargets strings.Builder
	for _, a := range agents {
		fmt.Fprintf(&agentTargets, "      - targets: [%q]\n        labels: {cluster: test, node: %q}\n",
			strings.TrimPrefix(a.metrics.URL, "http://"), a.name)
	}
	var replicaTargets []string
	for _, r := range c.replicas {
		replicaTargets = append(replicaTargets, fmt.Sprintf("%q", r.api))
	}
	// honor_labels as the chart's ServiceMonitor: Penny's namespace, pod
	// and container labels stay as they are.
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [%q, %q]
scrape_configs:
  - job_name: penny-aggregator
    honor_labels: true
    static_configs:
      - targets: [%s]
        labels: {cluster: test}
  - job_name: penny-agent
    static_configs:
%s`, rulesFile, budgets, strings.Join(replicaTargets, ", "), agentTargets.String())
	prom := startPrometheus(t, promBin, config, tsdb)
	started := time.Now()

	// Every query of every panel, with the variables resolved as Grafana
	// resolves them: through Prometheus' label values.
	files, err := filepath.Glob(filepath.Join(repoRoot, "charts/penny/dashboards/*.json"))
	if err != nil || len(files) < 4 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	want := map[string]string{"cluster": "test", "node": agents[0].name}
	var checks []*pending
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		vars, err := dashboards.Variables(b)
		if err != nil {
			t.Fatal(err)
		}
		// Grafana's $__rate_interval with a 1s scrape interval: at least
		// four scrapes.
		values := map[string]string{"__rate_interval": "5s"}
		for _, v := range vars {
			if v.Type != "query" {
				continue
			}
			m := labelValuesQuery.FindStringSubmatch(v.Query)
			if m == nil {
				t.Fatalf("%s: variable %s: query %q is not label_values(selector, label)", f, v.Name, v.Query)
			}
			sel, err := dashboards.Expand(m[1], values)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			eventually(t, fmt.Sprintf("%s: variable %s", filepath.Base(f), v.Name), 30*time.Second, func() error {
				got, err = prom.labelValues(m[2], sel)
				if err == nil && len(got) == 0 {
					err = fmt.Errorf("label_values(%s, %s): none", sel, m[2])
				}
				return err
			})
			switch w, ok := want[v.Name]; {
			case ok:
				if !slices.Contains(got, w) {
					t.Fatalf("%s: variable %s: %v, want %q among them", f, v.Name, got, w)
				}
				values[v.Name] = w
			case v.IncludeAll && v.AllValue != "":
				values[v.Name] = v.AllValue
			default:
				values[v.Name] = got[0]
			}
		}
		qs, err := dashboards.Queries(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			expr, err := dashboards.Expand(q.Expr, values)
			if err != nil {
				t.Fatalf("%s / %s: %v", q.Dashboard, q.Panel, err)
			}
			checks = append(checks, &pending{what: fmt.Sprintf("%s / %s / %s: %s", q.Dashboard, q.Panel, q.RefID, expr),
				check: func() error {
					ss, err := prom.query(expr)
					if err == nil && !nonNaN(ss) {
						err = fmt.Errorf("%d series, none with a number", len(ss))
					}
					return err
				}})
		}
	}

	rules, err := alerts.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	// Every alert: how this cluster makes it fire, or with which threshold
	// its expression returns series while, as it is, it stays quiet.
	cases := map[string][]alertCase{
		"PennyNamespaceCostUp":  {{phase: healthy}},
		"PennyTenantCostUp":     {{phase: healthy}},
		"PennyTenantOverBudget": {{phase: healthy, only: only("tenant", overBudget)}},
		// Healthy, values are fresh; once an agent is silent, the values
		// of the namespaces with pods on its node age.
		"PennyFreshnessHigh":           {{phase: healthy, lower: &lowering{"> 5", "> 0"}}, {phase: agentSilent}},
		"PennyNoRaftLeader":            {{phase: healthy, lower: &lowering{"< 1", "< 2"}}},
		"PennyAgentDroppedFrames":      {{phase: healthy, lower: &lowering{"> 0", ">= 0"}}},
		"PennyCustomMetricsAPIFailing": {{phase: healthy, lower: &lowering{"> 0.05", ">= 0"}}},
		"PennyAgentSilent":             {{phase: agentSilent, lower: &lowering{"> 120", "> 10"}, only: only("node", agents[2].name)}},
	}
	phases := map[phase][]*pending{healthy: checks}
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		if len(cases[r.Alert]) == 0 {
			t.Errorf("alert %s: neither made to fire nor lowered by this test", r.Alert)
		}
		for _, ac := range cases[r.Alert] {
			p, err := alertCheck(prom, r, ac)
			if err != nil {
				t.Fatal(err)
			}
			phases[ac.phase] = append(phases[ac.phase], p)
		}
	}
	// Every rule, the budgets' included, evaluates without error.
	phases[healthy] = append(phases[healthy], &pending{what: "rules", check: func() error {
		rs, err := prom.rules()
		if err != nil {
			return err
		}
		if len(rs) != len(rules)+2 {
			return fmt.Errorf("%d rules loaded, want %d", len(rs), len(rules)+2)
		}
		for _, r := range rs {
			if r.Health != "ok" || !r.LastEvaluation.After(started) {
				return fmt.Errorf("rule %s: health %q (%s), last evaluated %v", r.Name, r.Health, r.LastError, r.LastEvaluation)
			}
		}
		return nil
	}})
	prove(t, 90*time.Second, phases[healthy])
	t.Logf("healthy: %d queries and alerts proven on Prometheus in %v", len(phases[healthy]), time.Since(started).Round(time.Second))

	// The third agent stops sampling.
	agents[2].silence()
	silenced := time.Now()
	prove(t, 60*time.Second, phases[agentSilent])
	t.Logf("an agent silent: %d alerts proven in %v", len(phases[agentSilent]), time.Since(silenced).Round(time.Second))
}

// phase is the state of the cluster an alert's case is checked in.
type phase int

const (
	healthy     phase = iota
	agentSilent       // the third agent stopped sampling
)

// lowering is the threshold of an alert's expression, and a lower one.
type lowering struct{ from, to string }

// alertCase is how an alert's expression is checked: as it is (it fires
// for real) or lowered (it has series, and as it is it has none), and
// which series only may it have.
type alertCase struct {
	phase phase
	lower *lowering
	only  func([]promSample) error
}

// only accepts series whose label is value, and no other.
func only(label, value string) func([]promSample) error {
	return func(ss []promSample) error {
		for _, s := range ss {
			if s.Metric[label] != value {
				return fmt.Errorf("fires for %s %q too, want %q only", label, s.Metric[label], value)
			}
		}
		return nil
	}
}

// alertCheck is the check of one case of an alert rule.
func alertCheck(prom *promServer, r alerts.Rule, ac alertCase) (*pending, error) {
	expr, what := r.Expr, "alert "+r.Alert
	if ac.lower != nil {
		if !strings.Contains(expr, ac.lower.from) {
			return nil, fmt.Errorf("%s: no %q in %q to lower", what, ac.lower.from, expr)
		}
		expr = strings.Replace(expr, ac.lower.from, ac.lower.to, 1)
		what += " lowered (" + ac.lower.to + ")"
	}
	return &pending{what: what + ": " + expr, check: func() error {
		ss, err := prom.query(expr)
		if err != nil {
			return err
		}
		if len(ss) == 0 {
			return fmt.Errorf("no series%s", explain(prom, expr))
		}
		if ac.only != nil {
			if err := ac.only(ss); err != nil {
				return err
			}
		}
		if ac.lower == nil {
			return nil
		}
		// The lowered expression has series: as it is, the alert is
		// quiet, nothing being wrong.
		if as, err := prom.query(r.Expr); err != nil || len(as) > 0 {
			return fmt.Errorf("as it is: %v %v", as, err)
		}
		return nil
	}}, nil
}

// explain shows both sides of a comparison written over two lines, as the
// alert rules write theirs, to tell why it holds for no series.
func explain(prom *promServer, expr string) string {
	left, right, ok := strings.Cut(expr, "\n  > ")
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, side := range []string{left, strings.TrimSuffix(right, "\n")} {
		ss, err := prom.query(side)
		fmt.Fprintf(&b, "; %s = %v %v", strings.TrimSpace(side), ss[:min(len(ss), 4)], err)
	}
	return b.String()
}
