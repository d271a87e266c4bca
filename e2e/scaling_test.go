//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/scaler"
	"github.com/pennyhq/penny/kvraft"
)

// The scaling scenario: two identical Deployments of HTTP servers that
// serve podThroughput requests per second each at their base time and
// slow down past it (cgtest.RateDelay: the objective breaks at about 1.5
// times it), under the same load. One is scaled by a CostPolicy through
// its HPA, the other by a plain HPA on CPU usage at 60% of its pods' CPU
// request, as a team that has nothing better sets it.
const (
	scaleNS         = "scale"
	podThroughput   = 25 // requests per second a pod answers at its base time
	baseServiceMs   = 20
	cpuPerRequestUs = 1000
	scaleObjective  = 100 * time.Millisecond
)

// scalePhases is the load on each Deployment: a rise to the peak and a
// hold there, which the policy learns from as it would in its first
// hours (exploring fewer pods until the objective breaks, one
// stabilization window per step; not measured), then a fall, a rise to
// the peak again (about five pods' throughput), a hold (during which the
// Raft leader is killed) and a fall, which are measured. The learning
// hold lasts until the policy has learned (learnedAt), from
// minLearning to its Dur: the breach came 3 to 3.5 minutes into it in
// the runs with a fixed hold, and one that came after the measured
// phases began put a CI run over the objective.
var scalePhases = []loadPhase{
	{Dur: 100 * time.Second, From: 5, To: 120},
	{Dur: 7 * time.Minute, From: 120, To: 120},
	{Dur: 50 * time.Second, From: 120, To: 30, Measured: true},
	{Dur: 60 * time.Second, From: 30, To: 120, Measured: true},
	{Dur: 40 * time.Second, From: 120, To: 120, Measured: true},
	{Dur: 40 * time.Second, From: 120, To: 40, Measured: true},
}

// The phases of scalePhases the test acts on.
const (
	learningPhase = 1
	peakPhase     = 4 // the Raft leader is killed 10 s into it
	minLearning   = time.Minute
	// recovered is how long the client must have seen the objective
	// held (under 1% of the requests over it) after the breach that
	// taught the capacity, before the learning ends.
	recovered = 20 * time.Second
)

func scaleManifests() string {
	dep := func(name string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  replicas: 2
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s, %[3]s: "true"}
    spec:
      containers:
        - name: server
          image: %[4]s
          resources:
            requests: {cpu: 25m, memory: 64Mi}
`, name, scaleNS, workloadLabel, pauseImg)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
%[2]s---
%[3]s---
apiVersion: penny.dev/v1alpha1
kind: CostPolicy
metadata: {name: cp-load, namespace: %[1]s}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: cp-load}
  objective: {metric: request_latency_p99_seconds, max: %[4]s}
  minReplicas: 2
  maxReplicas: 12
  behavior: {scaleDownStabilizationSeconds: 30}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: cp-load, namespace: %[1]s}
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: cp-load}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: cp-load, namespace: %[1]s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: cp-load}
  minReplicas: 2
  maxReplicas: 12
  behavior:
    scaleUp: {tolerance: "0"}
    scaleDown: {tolerance: "0", stabilizationWindowSeconds: 0}
  metrics:
    - type: External
      external:
        metric:
          name: penny_desired_replicas
          selector: {matchLabels: {costpolicy: cp-load}}
        target: {type: AverageValue, averageValue: "1"}
---
# CPU usage at 60%% of the pods' 25m request: what a Resource HPA with
# averageUtilization 60 does, on Penny's cpu_usage_cores (the harness runs
# no metrics-server).
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: cpu-load, namespace: %[1]s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: cpu-load}
  minReplicas: 2
  maxReplicas: 12
  metrics:
    - type: Pods
      pods:
        metric: {name: cpu_usage_cores}
        target: {type: AverageValue, averageValue: 15m}
`, scaleNS, dep("cp-load"), dep("cpu-load"), scaleObjective)
}

// scaleSide is what the harness and Penny saw of one Deployment over the
// measured phases.
type scaleSide struct {
	name, prefix string
	gen          *loadGen
	podSeconds   float64
	minPods      int
	maxPods      int
	// From Penny's /v1/pods every few seconds: dollars (cost per hour
	// times the span) and requests (requests per second times the span).
	pennyDollars, pennyRequests float64
	podPrice                    []float64 // cost per pod-hour seen
}

// checkCostAwareScaling runs the scenario: the cost-aware policy and the
// CPU autoscaler side by side under the same rising and falling load,
// with the Raft leader killed at the peak. The policy must keep the
// latency objective at least as well as the CPU autoscaler (its share of
// requests over the objective no higher, or within the objective's 1%)
// at a lower cost per 1,000 requests, and decisions must continue from
// the new leader within two evaluations.
func (c *cluster) checkCostAwareScaling(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := fmt.Sprintf("rateserve %d %d %d", podThroughput, baseServiceMs, cpuPerRequestUs)
	sides := []*scaleSide{{name: "cost-aware policy", prefix: scaleNS + "/cp-load-"},
		{name: "CPU HPA (60% of request)", prefix: scaleNS + "/cpu-load-"}}
	for _, s := range sides {
		c.kubelet.serve[s.prefix] = serve
		s.gen = newLoadGen(s.name, func() []string { return c.kubelet.backends.of(s.prefix) }, scaleObjective)
		s.minPods = math.MaxInt
	}
	c.kubectl(t, "apply", "-f", c.cp.writeFile(t, "scaling.yaml", []byte(scaleManifests())))
	c.kubelet.wait(t, 60*time.Second, "two serving pods of each Deployment", func() error {
		for _, s := range sides {
			if n := len(c.kubelet.backends.of(s.prefix)); n != 2 {
				return fmt.Errorf("%s: %d serving pods", s.prefix, n)
			}
		}
		return nil
	})

	driven := make(chan struct{})
	start := time.Now()
	sched := newSchedule(scalePhases)
	go func() {
		defer close(driven)
		drive(ctx, sched, start, sides[0].gen, sides[1].gen)
	}()
	leader := &leaderKill{killed: -1}
	lastPenny, lastTick := time.Time{}, start
	decisions := c.followDecisions(t, scaleNS, "cp-load", sched)
	for done := false; !done; {
		select {
		case <-driven:
			done = true
		case <-time.After(500 * time.Millisecond):
		}
		c.kubelet.sync(t)
		now := time.Now()
		_, measured, phase, _ := sched.at(now.Sub(start))
		if phase == learningPhase && now.Sub(start)-sched.startOf(phase) >= minLearning {
			if why := learned(decisions.latest(), sides[0].gen, now); why != "" {
				sched.end(phase, now.Sub(start))
				t.Logf("learning ended %s into the hold at the peak: %s", (now.Sub(start) - sched.startOf(phase)).Round(time.Second), why)
			}
		}
		for _, s := range sides {
			n := len(c.kubelet.backends.of(s.prefix))
			if measured {
				s.podSeconds += float64(n) * now.Sub(lastTick).Seconds()
				s.minPods, s.maxPods = min(s.minPods, n), max(s.maxPods, n)
			}
		}
		lastTick = now
		if measured && now.Sub(lastPenny) >= 5*time.Second {
			span := 5.0
			if lastPenny.IsZero() {
				span = 0 // the first sample starts the sums
			}
			c.samplePennyScaling(t, sides, span, leader.killed)
			lastPenny = now
		}
		leader.step(t, c, now.Sub(start), sched.startOf(peakPhase)+10*time.Second)
		decisions.poll(now.Sub(start))
	}
	t.Logf("the policy's decisions (time from the start of the load, load then):\n%s", decisions)
	if d := sched.startOf(learningPhase + 1); d == scalePhases[learningPhase].Dur+sched.startOf(learningPhase) {
		t.Logf("the policy learned no capacity from a breach in the %s hold", scalePhases[learningPhase].Dur)
	}
	if t.Failed() {
		return
	}
	leader.check(t)
	c.restartAggregator(t, leader.killed)

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	res := make([]loadResult, len(sides))
	per1k := make([][2]float64, len(sides)) // Penny's, the harness's
	fmt.Fprintf(tw, "\t%s\t%s\t\n", sides[0].name, sides[1].name)
	for i, s := range sides {
		res[i] = s.gen.result()
		price := median(s.podPrice)
		per1k[i] = [2]float64{s.pennyDollars / s.pennyRequests * 1000, s.podSeconds / 3600 * price / float64(res[i].Answered) * 1000}
	}
	row := func(name string, f func(i int) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", name, f(0), f(1))
	}
	row("requests answered (client)", func(i int) string { return fmt.Sprint(res[i].Answered) })
	row("requests counted (Penny)", func(i int) string { return fmt.Sprintf("%.0f", sides[i].pennyRequests) })
	row("failed", func(i int) string { return fmt.Sprint(res[i].Errors) })
	row(fmt.Sprintf("over the objective (%s)", scaleObjective), func(i int) string { return fmt.Sprintf("%.2f%%", 100*res[i].SlowShare()) })
	row("latency p50 (client)", func(i int) string { return res[i].P50.Round(time.Millisecond).String() })
	row("latency p99 (client)", func(i int) string { return res[i].P99.Round(time.Millisecond).String() })
	row("pods (min-max)", func(i int) string { return fmt.Sprintf("%d-%d", sides[i].minPods, sides[i].maxPods) })
	row("pod-minutes", func(i int) string { return fmt.Sprintf("%.1f", sides[i].podSeconds/60) })
	row("cost per 1k requests (Penny)", func(i int) string { return fmt.Sprintf("$%.6f", per1k[i][0]) })
	row("cost per 1k requests (harness)", func(i int) string { return fmt.Sprintf("$%.6f", per1k[i][1]) })
	tw.Flush()
	t.Logf("cost-aware scaling against CPU, the same load (%d req/s per pod at %d ms, objective p99 <= %s), measured phases:\n%s",
		podThroughput, baseServiceMs, scaleObjective, b.String())
	t.Logf("kubectl -n %s describe costpolicy cp-load\n%s", scaleNS, c.kubectlQuiet("-n", scaleNS, "describe", "costpolicy", "cp-load"))
	// What Penny recommends for both, as a user asks for it.
	args := append([]string{"scale", "recommend", "--aggregator", apiURL(c.hosts[(leader.killed+1)%len(c.hosts)]), "-n", scaleNS,
		"--window", "10m"}, c.pki.adminArgs()...)
	out, err := execOutput(c.penny, args...)
	if err != nil || !strings.Contains(out, scaleNS+"/deployment:cp-load") || !strings.Contains(out, scaleNS+"/deployment:cpu-load") {
		t.Errorf("penny %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("penny %s\n%s", strings.Join(args[:8], " "), out)

	if p, cpu := res[0].SlowShare(), res[1].SlowShare(); p > math.Max(cpu, 0.01) {
		t.Errorf("the policy missed the objective for %.2f%% of requests, the CPU autoscaler for %.2f%% (last error: %v)",
			100*p, 100*cpu, res[0].LastErr)
	}
	for j, src := range []string{"Penny", "harness"} {
		if !(per1k[0][j] < per1k[1][j]) {
			t.Errorf("cost per 1k requests (%s): the policy's $%.6f is not below the CPU autoscaler's $%.6f", src, per1k[0][j], per1k[1][j])
		}
	}
	c.checkScalingAllocation(t, sides, start)
}

// checkScalingAllocation checks the whole run's requests as the cost
// allocation API counts them (the history's minutes, from the agents'
// request counters) against the clients' answered requests: the window
// of whole minutes from before the load's start to after its last answer
// holds every request of the run, so the two must agree within 1% (the
// kernel tests' bound), deleted pods included. It prints each
// Deployment's cost per 1,000 requests over the run, as `penny cost`
// reads it.
func (c *cluster) checkScalingAllocation(t *testing.T, sides []*scaleSide, start time.Time) {
	t.Helper()
	totals := make([]int, len(sides))
	var last time.Time
	for i, s := range sides {
		var at time.Time
		totals[i], at = s.gen.total()
		if at.After(last) {
			last = at
		}
	}
	from, to := start.UTC().Truncate(time.Minute), last.UTC().Truncate(time.Minute).Add(time.Minute)
	window := from.Format(time.RFC3339) + "," + to.Format(time.RFC3339)
	params := url.Values{"window": {window}, "aggregate": {"controller"}, "accumulate": {"true"},
		"filter": {`namespace:"` + scaleNS + `"`}, "consistency": {"linearizable"}}
	var resp cost.Response
	c.kubelet.wait(t, 2*time.Minute, "the scaling window "+window+" rolled up", func() error {
		if err := c.getJSON(apiURL(c.hosts[0])+"/v1/allocation?"+params.Encode(), &resp); err != nil {
			return err
		}
		if len(resp.Data) != 1 {
			return fmt.Errorf("%d sets", len(resp.Data))
		}
		for _, s := range sides {
			// The Deployments keep pods after the load: their data
			// reaches the window's end once its last minute is rolled.
			if a := resp.Data[0][deploymentKey(s.prefix)]; a == nil || a.End.Before(to) {
				return fmt.Errorf("%s: %v", s.prefix, a)
			}
		}
		return nil
	})
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\t%s\t%s\t\n", sides[0].name, sides[1].name)
	allocs := make([]*cost.Allocation, len(sides))
	for i, s := range sides {
		allocs[i] = resp.Data[0][deploymentKey(s.prefix)]
	}
	row := func(name string, f func(i int) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", name, f(0), f(1))
	}
	row("requests answered (client)", func(i int) string { return fmt.Sprint(totals[i]) })
	row("requests (allocation API)", func(i int) string { return fmt.Sprintf("%.0f", allocs[i].Requests) })
	row("total cost", func(i int) string { return fmt.Sprintf("$%.6f", allocs[i].TotalCost()) })
	row("cost per 1k requests", func(i int) string {
		v, _ := allocs[i].CostPer1kRequests()
		return fmt.Sprintf("$%.6f", v)
	})
	tw.Flush()
	t.Logf("the whole run (learning included), GET /v1/allocation?window=%s&aggregate=controller:\n%s", window, b.String())
	bad := false
	for i, s := range sides {
		got, want := allocs[i].Requests, float64(totals[i])
		if math.Abs(got-want) > 0.01*want {
			bad = true
			t.Errorf("%s: the allocation API counts %.0f requests over %s, the clients had %d answered (%+.2f%%)",
				s.name, got, window, totals[i], 100*(got/want-1))
		}
	}
	if bad {
		c.logRequestsByMinute(t, sides, params, from, to)
	}
}

// logRequestsByMinute prints, minute by minute, the requests the clients
// had answered and the allocation API's count (step=1m).
func (c *cluster) logRequestsByMinute(t *testing.T, sides []*scaleSide, params url.Values, from, to time.Time) {
	t.Helper()
	params.Set("accumulate", "false")
	params.Set("step", "1m")
	var resp cost.Response
	if err := c.getJSON(apiURL(c.hosts[0])+"/v1/allocation?"+params.Encode(), &resp); err != nil {
		t.Logf("requests by minute: %v", err)
		return
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "minute\t%s client\tPenny\t%s client\tPenny\t\n", sides[0].name, sides[1].name)
	for i, m := 0, from; m.Before(to); i, m = i+1, m.Add(time.Minute) {
		fmt.Fprintf(tw, "%s", m.Format("15:04"))
		for _, s := range sides {
			penny := "-"
			if i < len(resp.Data) {
				if a := resp.Data[i][deploymentKey(s.prefix)]; a != nil {
					penny = fmt.Sprintf("%.0f", a.Requests)
				}
			}
			fmt.Fprintf(tw, "\t%d\t%s", s.gen.answeredIn(m), penny)
		}
		fmt.Fprintln(tw, "\t")
	}
	tw.Flush()
	t.Logf("requests by minute:\n%s", b.String())
}

// deploymentKey is the allocation API's key of a Deployment aggregated by
// controller, from its pods' prefix ("scale/cp-load-").
func deploymentKey(prefix string) string {
	return "deployment:" + strings.TrimSuffix(strings.TrimPrefix(prefix, scaleNS+"/"), "-")
}

// samplePennyScaling reads both Deployments' pods from Penny (any live
// replica) and adds span seconds of their cost and requests.
func (c *cluster) samplePennyScaling(t *testing.T, sides []*scaleSide, span float64, dead int) {
	t.Helper()
	var pods query.Pods
	var err error
	for i, h := range c.hosts {
		if i == dead {
			continue
		}
		if err = c.getJSON(apiURL(h)+"/v1/pods?namespace="+scaleNS, &pods); err == nil {
			break
		}
	}
	if err != nil {
		t.Logf("penny's pods of %s: %v", scaleNS, err)
		return
	}
	for _, s := range sides {
		name := strings.TrimPrefix(s.prefix, scaleNS+"/")
		for _, p := range pods.Pods {
			if !strings.HasPrefix(p.Name, name) {
				continue
			}
			cost, rps := p.Metrics["cost_dollars_per_hour"], p.Metrics["requests_per_second"]
			s.pennyDollars += cost * span / 3600
			s.pennyRequests += rps * span
			if cost > 0 {
				s.podPrice = append(s.podPrice, cost)
			}
		}
	}
}

// learned says how the policy has learned its capacity, as its status
// shows it (planned from a breach, and no breach under way), once the
// client of its Deployment has seen the objective held for recovered;
// "" until then.
func learned(cp *costpolicy.CostPolicy, gen *loadGen, now time.Time) string {
	if cp == nil || cp.Status.Inputs == nil || cp.Status.Inputs.CapacitySource != scaler.CapacityBreach {
		return ""
	}
	for _, cond := range cp.Status.Conditions {
		if cond.Type == costpolicy.ConditionDecided && cond.Reason == scaler.ReasonBreached {
			return ""
		}
	}
	missed, n := gen.missedSince(now.Add(-recovered))
	if n == 0 || missed >= 0.01 {
		return ""
	}
	return fmt.Sprintf("%s req/s per pod planned from a breach, %.2f%% of the last %s's requests over the objective",
		cp.Status.Inputs.CapacityPerPod, 100*missed, recovered)
}

// leaderKill kills the Raft leader at a time given to step and follows
// what comes after: when a new leader is known, and when it first
// decides.
type leaderKill struct {
	killed            int // index in hosts; -1 before
	at, elected, next time.Time
	nextReason        string
	started           bool
}

func (l *leaderKill) step(t *testing.T, c *cluster, elapsed, killAt time.Duration) {
	t.Helper()
	switch {
	case !l.started && elapsed >= killAt:
		l.started = true
		var st kvraft.Status
		if err := c.getJSON(apiURL(c.hosts[0])+"/v1/cluster", &st); err != nil || st.Leader == 0 {
			t.Fatalf("who leads: %v (%+v)", err, st)
		}
		l.killed = int(st.Leader) - 1
		l.at = time.Now()
		if err := c.aggregators[l.killed].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-c.aggregators[l.killed].done
		t.Logf("killed the Raft leader, replica %d (%s), with SIGKILL", st.Leader, c.hosts[l.killed].IP)
	case l.started && l.elected.IsZero():
		h := c.hosts[(l.killed+1)%len(c.hosts)]
		var st kvraft.Status
		if err := c.getJSON(apiURL(h)+"/v1/cluster", &st); err == nil && st.Leader != 0 && int(st.Leader)-1 != l.killed {
			l.elected = time.Now()
		}
	case !l.elected.IsZero() && l.next.IsZero():
		h := c.hosts[(l.killed+1)%len(c.hosts)]
		b, err := c.getBody(apiURL(h) + "/v1/kv/" + string(costpolicy.DecisionKey(scaleNS, "cp-load")))
		var rec costpolicy.Record
		if err == nil && json.Unmarshal(b, &rec) == nil && rec.Time.After(l.elected) {
			l.next, l.nextReason = rec.Time, rec.Reason
		}
	}
}

// check: decisions went on from the new leader within two evaluations
// of its election, from what the old one had learned.
func (l *leaderKill) check(t *testing.T) {
	t.Helper()
	if l.elected.IsZero() || l.next.IsZero() {
		t.Fatalf("after the leader was killed at %s: new leader at %s, first decision at %s", l.at.Format(time.TimeOnly),
			l.elected.Format(time.TimeOnly), l.next.Format(time.TimeOnly))
	}
	t.Logf("leader killed: a new leader known after %s, its first decision %s later (%s)", l.elected.Sub(l.at).Round(time.Millisecond),
		l.next.Sub(l.elected).Round(time.Millisecond), l.nextReason)
	if gap := l.next.Sub(l.elected); gap > 2*costpolicy.DefaultEvery {
		t.Errorf("the new leader's first decision came %s after its election, want within two evaluations (%s)", gap,
			2*costpolicy.DefaultEvery)
	}
	if l.nextReason == scaler.ReasonLearning || l.nextReason == scaler.ReasonMissingData {
		t.Errorf("the new leader's first decision is %s: it did not resume from what the old one learned", l.nextReason)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestCostAwareScaling installs Penny as TestAutoscaling does and runs the
// scaling scenario on its own control plane (checkCostAwareScaling).
func TestCostAwareScaling(t *testing.T) {
	c := setUp(t)
	c.checkCostAwareScaling(t)
}

// decisionLog follows a CostPolicy's decisions as its status shows them.
type decisionLog struct {
	get   func() (*costpolicy.CostPolicy, error)
	sched *schedule
	cp    *costpolicy.CostPolicy // as last read
	last  string
	b     strings.Builder
}

func (c *cluster) followDecisions(t *testing.T, ns, name string, sched *schedule) *decisionLog {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.cp.Admin)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &decisionLog{sched: sched, get: func() (*costpolicy.CostPolicy, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u, err := dyn.Resource(costpolicy.GVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		var cp costpolicy.CostPolicy
		return &cp, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cp)
	}}
}

// poll records the decision when it changed.
func (d *decisionLog) poll(elapsed time.Duration) {
	cp, err := d.get()
	if err != nil {
		return
	}
	d.cp = cp
	for _, cond := range cp.Status.Conditions {
		if cond.Type != costpolicy.ConditionDecided {
			continue
		}
		line := fmt.Sprintf("%d -> %d %s: %s", cp.Status.CurrentReplicas, cp.Status.DesiredReplicas, cond.Reason, cond.Message)
		if in := cp.Status.Inputs; in != nil && in.CapacitySource != "" {
			line += " [capacity: " + in.CapacitySource + "]"
		}
		if line != d.last {
			rate, _, _, _ := d.sched.at(elapsed)
			fmt.Fprintf(&d.b, "%6.1fs %5.1f req/s  %s\n", elapsed.Seconds(), rate, line)
			d.last = line
		}
	}
}

// latest is the policy as poll last read it; nil before.
func (d *decisionLog) latest() *costpolicy.CostPolicy { return d.cp }

func (d *decisionLog) String() string { return d.b.String() }
