package recommend

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/scaler"
	"github.com/pennyhq/penny/internal/histogram"
)

// Response is the body of GET /v1/scaling/recommendations.
type Response struct {
	// Window is the span of history the costs and requests cover.
	Window   cost.Window `json:"window"`
	Currency string      `json:"currency"`
	// PodDisruptionBudgets is "known" in a cluster whose budgets the
	// replica follows, else "unknown" (outside Kubernetes, or not yet
	// listed): then no workload is known to tolerate interruption.
	PodDisruptionBudgets string     `json:"pod_disruption_budgets"`
	Workloads            []Workload `json:"workloads"`
	Warnings             []string   `json:"warnings,omitempty"`
}

// Whether PodDisruptionBudgets are known.
const (
	PDBsKnown   = "known"
	PDBsUnknown = "unknown"
)

// Workload is one workload's recommendation.
type Workload struct {
	Namespace string `json:"namespace"`
	// Kind and Name are the controller's, as cost.Controller names it
	// (a Deployment's ReplicaSet is the Deployment).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Replicas are its live pods; RecommendedReplicas its CostPolicy's
	// decision, or Replicas without a policy.
	Replicas            int    `json:"replicas"`
	RecommendedReplicas int    `json:"recommended_replicas"`
	Policy              string `json:"policy,omitempty"`
	DecisionReason      string `json:"decision_reason,omitempty"`
	// ObjectiveMetric and ObjectiveSeconds are the policy's latency
	// objective; LatencySeconds that metric now, over the last 10 s
	// (request_latency_p99_seconds without a policy): for request latency
	// the p99 of all the workload's requests, as the policy judges it,
	// otherwise its worst pod's.
	ObjectiveMetric  string   `json:"objective_metric"`
	ObjectiveSeconds *float64 `json:"objective_seconds"`
	LatencySeconds   *float64 `json:"latency_seconds"`
	// Cost, Requests and CostPer1kRequests are over the window, on every
	// node; OnDemand and Spot split them by the nodes' capacity type (a
	// node without facts counts as on-demand, as the pricing prices it).
	Cost              float64  `json:"cost"`
	Requests          float64  `json:"requests"`
	CostPer1kRequests *float64 `json:"cost_per_1k_requests"`
	OnDemand          Share    `json:"on_demand"`
	Spot              Share    `json:"spot"`
	// CostPerHour is what its live pods cost per hour now.
	CostPerHour *float64 `json:"cost_per_hour"`
	// PodDisruptionBudget says whether budgets select all its live pods
	// (null: unknown). InterruptionTolerant: at least 2 replicas and a
	// budget (null: budgets unknown).
	PodDisruptionBudget  *bool `json:"pod_disruption_budget"`
	InterruptionTolerant *bool `json:"interruption_tolerant"`
	// SpotSavingMonthly is SpotSaving of its on-demand part (null: nothing
	// on on-demand nodes, or nothing to compute it from); a saving for a
	// workload that does not tolerate interruption is what it would save,
	// not advice. SpotSavingBasis is BasisMeasured or BasisPrices.
	SpotSavingMonthly *float64 `json:"spot_saving_monthly"`
	SpotSavingBasis   string   `json:"spot_saving_basis,omitempty"`
	// ReplicaSavingMonthly is ReplicaSaving of the recommendation (null
	// unless it has fewer replicas).
	ReplicaSavingMonthly *float64 `json:"replica_saving_monthly"`
	// Advice says in words what to do, or why not.
	Advice []string `json:"advice"`
}

// key names a workload.
type key struct{ namespace, kind, name string }

// workload accumulates a workload's inputs.
type workload struct {
	od, spot Share
	// cpuRatio and ramRatio sum each on-demand node's spot ratio weighted
	// by the workload's CPU and memory cost there.
	cpuRatio, ramRatio float64
	pods               []*pods.Pod
	decision           *decision
}

// decision is a CostPolicy's decision and its policy.
type decision struct {
	policy string
	costpolicy.Record
}

// input is what Advise works from.
type input struct {
	window   cost.Window
	currency string
	// allocations are the model's by namespace, controller and node.
	allocations map[string]*cost.Allocation
	// spot says which nodes are spot; ratio gives an on-demand node's
	// spot ratio.
	spot  map[string]bool
	ratio func(node string) Ratio
	pods  []pods.Pod
	// decisions are the CostPolicy decisions, by store key.
	decisions []decision
	// covered reports whether PodDisruptionBudgets select a pod; nil
	// when budgets are unknown.
	covered func(p *pods.Pod) bool
}

// advise assembles the recommendations.
func advise(in *input) *Response {
	ws := map[key]*workload{}
	get := func(k key) *workload {
		w := ws[k]
		if w == nil {
			w = &workload{}
			ws[k] = w
		}
		return w
	}
	for _, a := range in.allocations {
		p := &a.Properties
		if a.IsIdle() || p.Controller == "" {
			continue // not a workload's
		}
		w := get(key{p.Namespace, p.ControllerKind, p.Controller})
		s := Share{Cost: a.TotalCost(), CPUCost: a.CPUCost, RAMCost: a.RAMCost, Requests: a.Requests,
			Hours: a.End.Sub(a.Start).Hours()}
		if in.spot[p.Node] {
			w.spot.add(&s)
			continue
		}
		w.od.add(&s)
		r := in.ratio(p.Node)
		w.cpuRatio += r.CPU * a.CPUCost
		w.ramRatio += r.RAM * a.RAMCost
	}
	for i := range in.pods {
		p := &in.pods[i]
		kind, name := cost.Controller(p.OwnerKind, p.OwnerName, p.Labels)
		if name == "" {
			continue
		}
		w := get(key{p.Namespace, kind, name})
		w.pods = append(w.pods, p)
	}
	for i := range in.decisions {
		d := &in.decisions[i]
		if d.TargetName == "" {
			continue // written before decisions named their target
		}
		kind, name := cost.Controller(d.TargetKind, d.TargetName, nil)
		w := get(key{d.namespace(), kind, name})
		w.decision = d
	}
	out := &Response{Window: in.window, Currency: in.currency, PodDisruptionBudgets: PDBsUnknown, Workloads: []Workload{}}
	if in.covered != nil {
		out.PodDisruptionBudgets = PDBsKnown
	}
	for k, w := range ws {
		out.Workloads = append(out.Workloads, w.advise(k, in.covered))
	}
	slices.SortFunc(out.Workloads, func(a, b Workload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// namespace is the decision's namespace, from the policy's key.
func (d *decision) namespace() string {
	ns, _, _ := cutKey(d.policy)
	return ns
}

func cutKey(k string) (namespace, name string, ok bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return "", k, false
}

func (w *workload) advise(k key, covered func(*pods.Pod) bool) Workload {
	out := Workload{Namespace: k.namespace, Kind: k.kind, Name: k.name, Replicas: len(w.pods), OnDemand: w.od, Spot: w.spot,
		ObjectiveMetric: scaler.MetricRequestLatencyP99}
	out.OnDemand.finish()
	out.Spot.finish()
	out.Cost = w.od.Cost + w.spot.Cost
	out.Requests = w.od.Requests + w.spot.Requests
	out.CostPer1kRequests = per1k(out.Cost, out.Requests)
	out.RecommendedReplicas = out.Replicas
	if d := w.decision; d != nil {
		_, out.Policy, _ = cutKey(d.policy)
		out.RecommendedReplicas, out.DecisionReason = d.Replicas, d.Reason
		if d.ObjectiveMetric != "" {
			out.ObjectiveMetric = d.ObjectiveMetric
		}
		if d.ObjectiveSeconds > 0 {
			v := d.ObjectiveSeconds
			out.ObjectiveSeconds = &v
		}
	}
	var costNow float64
	var costKnown bool
	var merged histogram.LogLinear
	for _, p := range w.pods {
		if v, ok := p.Metrics[out.ObjectiveMetric]; ok && !math.IsNaN(v) && (out.LatencySeconds == nil || v > *out.LatencySeconds) {
			out.LatencySeconds = &v
		}
		if out.ObjectiveMetric == scaler.MetricRequestLatencyP99 && p.RequestLatency.Count > 0 {
			merged.Add(&p.RequestLatency)
		}
		if v, ok := p.Metrics["cost_dollars_per_hour"]; ok {
			costNow += v
			costKnown = true
		}
	}
	if costKnown {
		out.CostPerHour = &costNow
	}
	// A request latency is the workload's, over all its requests, as its
	// policy judges it (docs/scaling.md).
	if us, ok := merged.Quantile(0.99); ok {
		v := us / 1e6
		out.LatencySeconds = &v
	}

	// Interruption tolerance.
	if covered != nil && len(w.pods) > 0 {
		all := true
		for _, p := range w.pods {
			all = all && covered(p)
		}
		tolerant := all && len(w.pods) >= 2
		out.PodDisruptionBudget, out.InterruptionTolerant = &all, &tolerant
	}

	// Spot.
	ratio := Ratio{CPU: math.NaN(), RAM: math.NaN()}
	if w.od.CPUCost > 0 || w.od.RAMCost > 0 {
		ratio = Ratio{CPU: safeDiv(w.cpuRatio, w.od.CPUCost), RAM: safeDiv(w.ramRatio, w.od.RAMCost)}
	}
	if s, basis, ok := SpotSaving(&out.OnDemand, &out.Spot, ratio); ok {
		out.SpotSavingMonthly, out.SpotSavingBasis = &s, basis
	}
	switch {
	case out.Cost == 0:
		out.Advice = append(out.Advice, "no cost in the window")
	case w.od.Cost == 0:
		out.Advice = append(out.Advice, "runs on spot already")
	case out.InterruptionTolerant == nil && covered == nil:
		out.Advice = append(out.Advice, "PodDisruptionBudgets unknown (outside Kubernetes): spot only if it tolerates interruption")
	case out.InterruptionTolerant == nil:
		out.Advice = append(out.Advice, "no live pods: interruption tolerance unknown")
	case !*out.InterruptionTolerant && !*out.PodDisruptionBudget:
		out.Advice = append(out.Advice, "not for spot: no PodDisruptionBudget selects its pods")
	case !*out.InterruptionTolerant:
		out.Advice = append(out.Advice, "not for spot: fewer than 2 replicas")
	case out.SpotSavingMonthly != nil && *out.SpotSavingMonthly > 0:
		out.Advice = append(out.Advice, "move to spot")
	default:
		out.Advice = append(out.Advice, "spot saves nothing here")
	}

	// Replicas.
	if s, ok := ReplicaSaving(out.Replicas, out.RecommendedReplicas, costNow); ok && costKnown {
		out.ReplicaSavingMonthly = &s
		out.Advice = append(out.Advice, "scale to the policy's decision")
	}
	if w.decision == nil {
		out.Advice = append(out.Advice, "no CostPolicy: replicas as they are")
	}
	return out
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// decodeDecision reads a decision record of the store; ok is false for a
// value that is not one.
func decodeDecision(policyKey string, b []byte) (decision, bool) {
	d := decision{policy: policyKey}
	if err := json.Unmarshal(b, &d.Record); err != nil || d.Replicas < 0 {
		return decision{}, false
	}
	return d, true
}
