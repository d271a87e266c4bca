package scaler

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrInvalidPolicy means a policy cannot be evaluated; the error says which
// field and why, and is what the policy's Ready condition shows.
var ErrInvalidPolicy = errors.New("scaler: invalid policy")

// The metrics a latency objective can be written on: the request latency
// the agent measures on the server side of the workload's connections,
// and the smoothed TCP round-trip time of its connections.
const (
	MetricRequestLatencyP99 = "request_latency_p99_seconds"
	MetricTCPSRTTP99        = "tcp_srtt_p99_seconds"
)

// Defaults of a policy's behaviour.
const (
	DefaultScaleUpStep            = 4
	DefaultScaleDownStep          = 1
	DefaultScaleDownStabilization = 2 * time.Minute
	// DefaultHeadroom is the share of the learned per-pod capacity the
	// decision plans for.
	DefaultHeadroom = 0.85
)

// Policy is what a CostPolicy asks for one workload: the fewest replicas
// (so the lowest cost per 1,000 requests) at which the latency objective
// holds, within MinReplicas and MaxReplicas, moving at most as fast as
// Behavior allows.
type Policy struct {
	// Objective is the latency the workload must keep: Metric at most Max
	// seconds.
	Objective Objective
	// MinReplicas and MaxReplicas bound the decision.
	MinReplicas, MaxReplicas int
	Behavior                 Behavior
}

// Objective is a latency objective: Metric <= Max.
type Objective struct {
	Metric string
	Max    float64 // seconds
}

// Behavior is how fast a decision may move.
type Behavior struct {
	// ScaleUpStep and ScaleDownStep bound the change of one decision, in
	// replicas; zero takes the defaults.
	ScaleUpStep, ScaleDownStep int
	// ScaleDownStabilization is how long every decision must have allowed
	// fewer replicas before the decision goes down (as the HPA's
	// stabilization window); zero takes the default.
	ScaleDownStabilization time.Duration
	// Headroom is the share of the learned per-pod capacity planned for,
	// in (0, 1]; zero takes the default.
	Headroom float64
}

// Complete fills in the behaviour's defaults.
func (p *Policy) Complete() {
	b := &p.Behavior
	if b.ScaleUpStep == 0 {
		b.ScaleUpStep = DefaultScaleUpStep
	}
	if b.ScaleDownStep == 0 {
		b.ScaleDownStep = DefaultScaleDownStep
	}
	if b.ScaleDownStabilization == 0 {
		b.ScaleDownStabilization = DefaultScaleDownStabilization
	}
	if b.Headroom == 0 {
		b.Headroom = DefaultHeadroom
	}
}

// Validate checks a completed policy; every problem is named.
func (p *Policy) Validate() error {
	var errs []string
	switch p.Objective.Metric {
	case MetricRequestLatencyP99, MetricTCPSRTTP99:
	default:
		errs = append(errs, fmt.Sprintf("objective.metric %q: want %s or %s", p.Objective.Metric, MetricRequestLatencyP99, MetricTCPSRTTP99))
	}
	if !(p.Objective.Max > 0) || math.IsInf(p.Objective.Max, 0) {
		errs = append(errs, fmt.Sprintf("objective.max %v: want a latency above 0", p.Objective.Max))
	}
	if p.MinReplicas < 1 {
		errs = append(errs, fmt.Sprintf("minReplicas %d: want at least 1", p.MinReplicas))
	}
	if p.MaxReplicas < p.MinReplicas {
		errs = append(errs, fmt.Sprintf("maxReplicas %d is below minReplicas %d", p.MaxReplicas, p.MinReplicas))
	}
	b := p.Behavior
	if b.ScaleUpStep < 1 || b.ScaleDownStep < 1 {
		errs = append(errs, "behavior: scale steps must be at least 1")
	}
	if b.ScaleDownStabilization < 0 {
		errs = append(errs, "behavior.scaleDownStabilization must not be negative")
	}
	if !(b.Headroom > 0 && b.Headroom <= 1) {
		errs = append(errs, fmt.Sprintf("behavior.headroom %v: want (0, 1]", b.Headroom))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, strings.Join(errs, "; "))
	}
	return nil
}
