package costpolicy

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of CostPolicy.
var GroupVersion = schema.GroupVersion{Group: "penny.dev", Version: "v1alpha1"}

// Resource is the plural resource name, as RBAC and the API paths name it.
const Resource = "costpolicies"

// CostPolicy asks for the lowest cost per 1,000 requests of one workload
// that keeps its latency objective.
type CostPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              Spec   `json:"spec"`
	Status            Status `json:"status,omitempty"`
}

// Spec is what the user asks for.
type Spec struct {
	// TargetRef is the workload to scale, in the policy's namespace: a
	// Deployment or a StatefulSet (apps/v1), as an HPA's scaleTargetRef.
	TargetRef TargetRef `json:"targetRef"`
	// Objective is the latency the workload must keep.
	Objective Objective `json:"objective"`
	// MinReplicas (default 1) and MaxReplicas bound the decision.
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	MaxReplicas int32  `json:"maxReplicas"`
	// Behavior is how fast the decision may move.
	Behavior *Behavior `json:"behavior,omitempty"`
}

// TargetRef names the workload.
type TargetRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

// Objective is a latency the workload must keep: Metric at most Max.
type Objective struct {
	// Metric is request_latency_p99_seconds (the default) or
	// tcp_srtt_p99_seconds.
	Metric string `json:"metric,omitempty"`
	// Max is the highest latency that meets the objective, e.g. 200ms.
	Max metav1.Duration `json:"max"`
}

// Behavior bounds the change of one decision.
type Behavior struct {
	ScaleUpStep                   *int32 `json:"scaleUpStep,omitempty"`
	ScaleDownStep                 *int32 `json:"scaleDownStep,omitempty"`
	ScaleDownStabilizationSeconds *int32 `json:"scaleDownStabilizationSeconds,omitempty"`
	// HeadroomPercent is the share of the learned per-pod capacity
	// planned for (1-100).
	HeadroomPercent *int32 `json:"headroomPercent,omitempty"`
}

// Status is what the leader decided, from what, and why.
type Status struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// CurrentReplicas and DesiredReplicas are the workload's pods and the
	// decision.
	CurrentReplicas  int32        `json:"currentReplicas,omitempty"`
	DesiredReplicas  int32        `json:"desiredReplicas,omitempty"`
	LastDecisionTime *metav1.Time `json:"lastDecisionTime,omitempty"`
	// Inputs are the numbers the decision was made from.
	Inputs *Inputs `json:"inputs,omitempty"`
	// Conditions: Ready (the spec is valid and the target exists) and
	// Decided (the last decision's reason and message).
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Inputs are a decision's numbers, as decimal strings (a CRD status has
// no floats that every client reads alike).
type Inputs struct {
	RequestsPerSecond string `json:"requestsPerSecond,omitempty"`
	LatencySeconds    string `json:"latencySeconds,omitempty"`
	CapacityPerPod    string `json:"capacityPerPod,omitempty"`
	// CapacitySource is where CapacityPerPod comes from: Breach (below
	// the lowest per-pod rate at which the objective broke: known) or
	// Exploring (past the highest at which it held: no breach yet).
	CapacitySource    string `json:"capacitySource,omitempty"`
	CostPer1kRequests string `json:"costPer1kRequests,omitempty"`
}

// Condition types.
const (
	ConditionReady   = "Ready"
	ConditionDecided = "Decided"
)
