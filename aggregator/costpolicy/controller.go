package costpolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/scaler"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/kvraft"
)

// GVR is the CostPolicy resource.
var GVR = GroupVersion.WithResource(Resource)

// Defaults of Config.
const (
	DefaultEvery = 5 * time.Second
	// DefaultWindow is the span of the pods' rates and latency a decision
	// reads: short, because the request rate of a workload is the sum of
	// its live pods' and, for a window after its size changed, misses the
	// requests of the pods that went or had not come yet (30 s read a
	// rising load at 40 req/s where it was 92 in the e2e scenario).
	DefaultWindow = 10 * time.Second
	// statusEvery is how often an unchanged decision refreshes the status
	// (its lastDecisionTime).
	statusEvery = 30 * time.Second
	// maxPolicies bounds the decisions one cleanup reads.
	maxPolicies = 10000
	// stateEvery is how often the leader saves what it learned of a
	// workload, for the next leader.
	stateEvery = time.Minute
)

// More reasons of the Ready condition.
const (
	ReasonTargetNotFound = "TargetNotFound"
	ReasonTargetError    = "TargetUnreadable"
)

// The metrics of pods a decision reads (package pods).
const (
	metricRequestsPerSecond = "requests_per_second"
	metricCostPerHour       = "cost_dollars_per_hour"
)

// Store is the replicated store decisions are written to, and where the
// leader is known.
type Store interface {
	Status() kvraft.Status
	Put(ctx context.Context, key, value []byte) (uint64, error)
	Delete(ctx context.Context, key []byte) (uint64, error)
	Range(ctx context.Context, req kvraft.RangeRequest, opts kvraft.ReadOptions) (kvraft.RangeResult, error)
}

// PodReader reads the pods of a workload (a *query.Reader).
type PodReader interface {
	Pods(ctx context.Context, req query.Request) (*query.Pods, error)
}

// Config configures a Controller.
type Config struct {
	Store   Store
	Pods    PodReader
	Dynamic dynamic.Interface
	Kube    kubernetes.Interface
	// Every is the time between evaluations; Window the span of the pods'
	// rates and quantiles.
	Every, Window time.Duration
	// Read is the consistency of the pods' reads (bounded staleness).
	Read   kvraft.ReadOptions
	Logger *slog.Logger
	Now    func() time.Time
}

// Controller evaluates every CostPolicy on the Raft leader, writes each
// decision to the store (where every replica's external metrics API reads
// it) and to the policy's status.
type Controller struct {
	cfg   Config
	evals map[types.UID]*scaler.Evaluator
	last  map[types.UID]Status  // the status last written
	saved map[types.UID]savedAt // when the learned state was last saved, and its capacity
}

// New returns a controller of cfg.
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil || cfg.Pods == nil || cfg.Dynamic == nil || cfg.Kube == nil {
		return nil, errors.New("costpolicy: controller needs a store, a pod reader and Kubernetes clients")
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Controller{cfg: cfg, evals: map[types.UID]*scaler.Evaluator{}, last: map[types.UID]Status{},
		saved: map[types.UID]savedAt{}}, nil
}

// Run watches CostPolicies and evaluates them every cfg.Every while this
// replica leads, until ctx is done.
func (c *Controller) Run(ctx context.Context) {
	f := dynamicinformer.NewDynamicSharedInformerFactory(c.cfg.Dynamic, 0)
	inf := f.ForResource(GVR)
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return
	}
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if st := c.cfg.Store.Status(); st.Leader != st.ID || st.ID == 0 {
			// A follower forgets: the next leader's view starts from its own.
			clear(c.evals)
			clear(c.last)
			clear(c.saved)
			continue
		}
		objs, err := inf.Lister().List(labels.Everything())
		if err != nil {
			c.cfg.Logger.Warn("cost policies not listed", "err", err)
			continue
		}
		seen := map[types.UID]bool{}
		for _, o := range objs {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			seen[u.GetUID()] = true
			if err := c.Evaluate(ctx, u); err != nil && ctx.Err() == nil {
				c.cfg.Logger.Warn("cost policy not evaluated", "namespace", u.GetNamespace(), "name", u.GetName(), "err", err)
			}
		}
		for uid := range c.evals {
			if !seen[uid] {
				delete(c.evals, uid)
				delete(c.last, uid)
				delete(c.saved, uid)
			}
		}
		if err := c.forget(ctx, objs); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("decisions of deleted cost policies not removed", "err", err)
		}
	}
}

// forget deletes the decisions of policies that no longer exist, so that
// no HPA acts on a decision nobody makes any more.
func (c *Controller) forget(ctx context.Context, objs []runtime.Object) error {
	live := map[string]bool{}
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			live[string(DecisionKey(u.GetNamespace(), u.GetName()))] = true
			live[string(StateKey(u.GetNamespace(), u.GetName()))] = true
		}
	}
	for _, prefix := range []string{DecisionPrefix, StatePrefix} {
		res, err := c.cfg.Store.Range(ctx, kvraft.RangeRequest{Prefix: []byte(prefix), Limit: maxPolicies},
			kvraft.ReadOptions{Consistency: kvraft.Linearizable})
		if err != nil {
			return err
		}
		for _, kv := range res.Items {
			if !live[string(kv.Key)] {
				if _, err := c.cfg.Store.Delete(ctx, kv.Key); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// StatePrefix is where the leader keeps what it learned of each workload
// (scaler.Snapshot, JSON); StateKey is one policy's.
const StatePrefix = "penny/v1/scaling/state/"

// StateKey is the store key of a policy's learned state.
func StateKey(namespace, name string) []byte {
	return []byte(StatePrefix + namespace + "/" + name)
}

// evaluator is the policy's evaluator: this leader's, else the one the
// previous leader saved, else a new one.
func (c *Controller) evaluator(ctx context.Context, cp *CostPolicy) *scaler.Evaluator {
	if e := c.evals[cp.UID]; e != nil {
		return e
	}
	e := &scaler.Evaluator{}
	res, err := c.cfg.Store.Range(ctx, kvraft.RangeRequest{Prefix: StateKey(cp.Namespace, cp.Name), Limit: 1},
		kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err == nil && len(res.Items) == 1 && string(res.Items[0].Key) == string(StateKey(cp.Namespace, cp.Name)) {
		var st savedState
		if err := json.Unmarshal(res.Items[0].Value, &st); err == nil && st.UID == string(cp.UID) {
			e = scaler.Restore(st.Snapshot)
			c.cfg.Logger.Info("cost policy resumed from the previous leader's state", "namespace", cp.Namespace, "name", cp.Name)
		}
	}
	c.evals[cp.UID] = e
	return e
}

// savedState is a policy's learned state in the store: the policy it
// belongs to (a policy deleted and created again starts afresh).
type savedState struct {
	UID      string          `json:"uid"`
	Snapshot scaler.Snapshot `json:"snapshot"`
}

// save writes e's state every stateEvery, and at once when the capacity
// per pod it plans for changed (a breach learned, a higher rate held): a
// new leader must not relearn a breach its predecessor paid for.
func (c *Controller) save(ctx context.Context, cp *CostPolicy, e *scaler.Evaluator, now time.Time, capacity float64) error {
	if last := c.saved[cp.UID]; now.Sub(last.time) < stateEvery && capacity == last.capacity {
		return nil
	}
	b, err := json.Marshal(savedState{UID: string(cp.UID), Snapshot: e.Snapshot(now)})
	if err != nil {
		return err
	}
	if _, err := c.cfg.Store.Put(ctx, StateKey(cp.Namespace, cp.Name), b); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	c.saved[cp.UID] = savedAt{now, capacity}
	return nil
}

// savedAt is when a policy's state was last saved, and the capacity per
// pod it had then.
type savedAt struct {
	time     time.Time
	capacity float64
}

// Record is a decision as the store keeps it, with what it was decided
// for: the target and the objective (absent in records written before
// they were kept), so that every replica can show it beside the workload.
type Record struct {
	UID              string    `json:"uid"`
	Replicas         int       `json:"replicas"`
	Reason           string    `json:"reason"`
	Time             time.Time `json:"time"`
	TargetKind       string    `json:"targetKind,omitempty"`
	TargetName       string    `json:"targetName,omitempty"`
	ObjectiveMetric  string    `json:"objectiveMetric,omitempty"`
	ObjectiveSeconds float64   `json:"objectiveSeconds,omitempty"`
}

// DecisionPrefix is where decisions live in the store; DecisionKey is one
// policy's.
const DecisionPrefix = "penny/v1/scaling/decisions/"

// DecisionKey is the store key of a policy's decision.
func DecisionKey(namespace, name string) []byte {
	return []byte(DecisionPrefix + namespace + "/" + name)
}

// Evaluate decides for one policy now: a valid policy on an existing
// workload gets a decision in the store and in its status; any other gets
// a Ready condition that says why, and no decision (so nothing scales).
func (c *Controller) Evaluate(ctx context.Context, u *unstructured.Unstructured) error {
	var cp CostPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cp); err != nil {
		return c.refuse(ctx, u, &cp, ReasonInvalidSpec, fmt.Sprintf("the spec does not decode: %v", err))
	}
	p, err := cp.Spec.Policy()
	if err != nil {
		return c.refuse(ctx, u, &cp, ReasonInvalidSpec, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	replicas, selector, err := c.target(ctx, cp.Namespace, cp.Spec.TargetRef)
	switch {
	case apierrors.IsNotFound(err):
		return c.refuse(ctx, u, &cp, ReasonTargetNotFound, fmt.Sprintf("%s %s/%s does not exist", cp.Spec.TargetRef.Kind,
			cp.Namespace, cp.Spec.TargetRef.Name))
	case err != nil:
		return c.refuse(ctx, u, &cp, ReasonTargetError, err.Error())
	}
	o, err := c.observe(ctx, cp.Namespace, selector, replicas, p.Objective)
	if err != nil {
		return err
	}
	e := c.evaluator(ctx, &cp)
	d := e.Decide(p, o)
	if err := c.save(ctx, &cp, e, o.At, d.CapacityPerPod); err != nil {
		return err
	}
	rec, err := json.Marshal(Record{UID: string(cp.UID), Replicas: d.Replicas, Reason: d.Reason, Time: o.At,
		TargetKind: cp.Spec.TargetRef.Kind, TargetName: cp.Spec.TargetRef.Name, ObjectiveMetric: p.Objective.Metric,
		ObjectiveSeconds: p.Objective.Max})
	if err != nil {
		return err
	}
	if _, err := c.cfg.Store.Put(ctx, DecisionKey(cp.Namespace, cp.Name), rec); err != nil {
		return fmt.Errorf("write decision: %w", err)
	}
	st := cp.Status
	st.ObservedGeneration = cp.Generation
	st.CurrentReplicas, st.DesiredReplicas = int32(replicas), int32(d.Replicas)
	st.Inputs = &Inputs{RequestsPerSecond: decimal(o.RequestsPerSecond), LatencySeconds: decimal(o.Latency),
		CapacityPerPod: decimal(d.CapacityPerPod), CapacitySource: d.CapacitySource, CostPer1kRequests: decimal(d.CostPer1kRequests)}
	setCondition(&st, cp.Generation, ConditionReady, metav1.ConditionTrue, ReasonValid, "the policy is valid and its target exists")
	setCondition(&st, cp.Generation, ConditionDecided, metav1.ConditionTrue, d.Reason, d.Message)
	return c.writeStatus(ctx, u, &cp, st)
}

// refuse says in the policy's status why it is not evaluated, and removes
// its decision: the HPA that reads it gets none, and keeps the workload as
// it is.
func (c *Controller) refuse(ctx context.Context, u *unstructured.Unstructured, cp *CostPolicy, reason, msg string) error {
	delete(c.evals, u.GetUID())
	st := cp.Status
	st.ObservedGeneration = u.GetGeneration()
	st.DesiredReplicas, st.Inputs = 0, nil
	setCondition(&st, u.GetGeneration(), ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(&st, u.GetGeneration(), ConditionDecided, metav1.ConditionFalse, reason, "no decision: "+msg)
	if prev, ok := c.last[u.GetUID()]; ok && sameStatus(prev, st) {
		return nil // refused already, and its decision removed
	}
	if _, err := c.cfg.Store.Delete(ctx, DecisionKey(u.GetNamespace(), u.GetName())); err != nil {
		return fmt.Errorf("delete decision: %w", err)
	}
	return c.writeStatus(ctx, u, cp, st)
}

// writeStatus writes st when it changed, or every statusEvery.
func (c *Controller) writeStatus(ctx context.Context, u *unstructured.Unstructured, cp *CostPolicy, st Status) error {
	now := metav1.NewTime(c.cfg.Now())
	prev, ok := c.last[u.GetUID()]
	if ok && prev.LastDecisionTime != nil && now.Sub(prev.LastDecisionTime.Time) < statusEvery && sameStatus(prev, st) {
		return nil
	}
	st.LastDecisionTime = &now
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return err
	}
	next := u.DeepCopy()
	if err := unstructured.SetNestedField(next.Object, obj, "status"); err != nil {
		return err
	}
	if _, err := c.cfg.Dynamic.Resource(GVR).Namespace(u.GetNamespace()).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	c.last[u.GetUID()] = st
	return nil
}

// sameStatus compares what a decision changes, not when it was made.
func sameStatus(a, b Status) bool {
	if a.DesiredReplicas != b.DesiredReplicas || a.CurrentReplicas != b.CurrentReplicas || a.ObservedGeneration != b.ObservedGeneration ||
		len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason {
			return false
		}
	}
	return true
}

func setCondition(st *Status, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: gen})
}

// target reads the workload's replicas and pod selector.
func (c *Controller) target(ctx context.Context, ns string, ref TargetRef) (int, labels.Selector, error) {
	var (
		replicas int32
		sel      *metav1.LabelSelector
	)
	switch ref.Kind {
	case "Deployment":
		d, err := c.cfg.Kube.AppsV1().Deployments(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return 0, nil, err
		}
		replicas, sel = specReplicas(d.Spec.Replicas), d.Spec.Selector
	case "StatefulSet":
		s, err := c.cfg.Kube.AppsV1().StatefulSets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return 0, nil, err
		}
		replicas, sel = specReplicas(s.Spec.Replicas), s.Spec.Selector
	default:
		return 0, nil, fmt.Errorf("kind %s: want Deployment or StatefulSet", ref.Kind)
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return 0, nil, fmt.Errorf("selector: %w", err)
	}
	return int(replicas), s, nil
}

func specReplicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// observe reads the workload's pods: their request rate (summed), their
// cost per pod-hour (the mean) and the objective's metric. A request
// latency objective is judged on all the workload's requests of the
// window, as a service level objective is: the 99th percentile of the
// pods' histograms merged, with the number of requests over the objective;
// any other metric is its worst pod's. The request rate is the pods' last
// interval's (a second, the agent's default): a window's rate misses,
// for as long as it spans a change of size, the share of the pods that
// went or had not come yet, and reads a climb half a window late.
func (c *Controller) observe(ctx context.Context, ns string, sel labels.Selector, replicas int, obj scaler.Objective) (scaler.Observation, error) {
	o := scaler.Observation{At: c.cfg.Now(), Replicas: replicas, RequestsPerSecond: math.NaN(), Latency: math.NaN(),
		CostPerPodHour: math.NaN(), SlowRequests: math.NaN(), Window: c.cfg.Window}
	q := pods.Query{Namespace: ns, Selector: sel}
	res, err := c.cfg.Pods.Pods(ctx, query.Request{Window: c.cfg.Window, Read: c.cfg.Read, Pods: q})
	if err != nil {
		return o, fmt.Errorf("read pods: %w", err)
	}
	now, err := c.cfg.Pods.Pods(ctx, query.Request{Read: c.cfg.Read, Pods: q})
	if err != nil {
		return o, fmt.Errorf("read pods: %w", err)
	}
	var rate, cost, span float64
	var nRate, nCost int
	for _, p := range now.Pods {
		if v, ok := p.Metrics[metricRequestsPerSecond]; ok {
			rate += v
			nRate++
			span = max(span, p.WindowSeconds)
		}
	}
	lat := math.NaN()
	var merged histogram.LogLinear
	var latSpan float64 // the longest window a pod's latency covers
	for _, p := range res.Pods {
		if v, ok := p.Metrics[obj.Metric]; ok {
			if math.IsNaN(lat) || v > lat {
				lat = v
			}
			latSpan = max(latSpan, p.WindowSeconds)
		}
		if v, ok := p.Metrics[metricCostPerHour]; ok {
			cost += v
			nCost++
		}
		if obj.Metric == scaler.MetricRequestLatencyP99 && p.RequestLatency.Count > 0 {
			merged.Add(&p.RequestLatency)
			latSpan = max(latSpan, p.WindowSeconds)
		}
	}
	if merged.Count > 0 {
		if us, ok := merged.Quantile(0.99); ok {
			lat = us / 1e6
			o.SlowRequests = merged.Above(obj.Max * 1e6)
		}
	}
	if nRate > 0 {
		o.RequestsPerSecond, o.Pods = rate, nRate
		o.RateWindow = seconds(span)
	}
	if latSpan > 0 {
		// The store's windows start at a checkpoint (model.MarkEvery
		// apart): 10 s asked is 10 to 25 s read. The decision takes the
		// span the latency covers, for what a change of size still shows.
		o.Window = seconds(latSpan)
	}
	if !math.IsNaN(lat) {
		o.Latency = lat
	} else if nRate > 0 && rate == 0 {
		o.Latency = 0 // no requests, no latency: the objective holds
	}
	if nCost > 0 {
		o.CostPerPodHour = cost / float64(nCost)
	}
	return o, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// decimal formats a number for the status; "" when unknown.
func decimal(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
