package costpolicy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pennyhq/penny/aggregator/scaler"
)

// ErrInvalid means a CostPolicy's spec cannot be evaluated; the message
// names every field at fault.
var ErrInvalid = errors.New("costpolicy: invalid spec")

// Reasons of the Ready condition.
const (
	ReasonValid       = "Valid"
	ReasonInvalidSpec = "InvalidSpec"
)

// Policy returns the decision's parameters for the spec, completed with
// the defaults, or ErrInvalid with every field at fault.
func (s *Spec) Policy() (scaler.Policy, error) {
	var errs []string
	t := s.TargetRef
	switch {
	case t.Name == "":
		errs = append(errs, "targetRef.name is required")
	case t.APIVersion != "apps/v1" || (t.Kind != "Deployment" && t.Kind != "StatefulSet"):
		errs = append(errs, fmt.Sprintf("targetRef %s %s: want an apps/v1 Deployment or StatefulSet", t.APIVersion, t.Kind))
	}
	p := scaler.Policy{
		Objective:   scaler.Objective{Metric: s.Objective.Metric, Max: s.Objective.Max.Seconds()},
		MinReplicas: 1,
		MaxReplicas: int(s.MaxReplicas),
	}
	if p.Objective.Metric == "" {
		p.Objective.Metric = scaler.MetricRequestLatencyP99
	}
	if s.MinReplicas != nil {
		p.MinReplicas = int(*s.MinReplicas)
	}
	if b := s.Behavior; b != nil {
		set := func(dst *int, v *int32) {
			if v != nil {
				*dst = int(*v)
			}
		}
		set(&p.Behavior.ScaleUpStep, b.ScaleUpStep)
		set(&p.Behavior.ScaleDownStep, b.ScaleDownStep)
		if v := b.ScaleDownStabilizationSeconds; v != nil {
			if *v < 0 {
				errs = append(errs, fmt.Sprintf("behavior.scaleDownStabilizationSeconds %d: want 0 or more", *v))
			}
			// 0 means none: the smallest window, not the default.
			p.Behavior.ScaleDownStabilization = max(time.Duration(*v)*time.Second, time.Nanosecond)
		}
		if v := b.HeadroomPercent; v != nil {
			if *v < 1 || *v > 100 {
				errs = append(errs, fmt.Sprintf("behavior.headroomPercent %d: want 1 to 100", *v))
			}
			p.Behavior.Headroom = float64(*v) / 100
		}
		for _, st := range []struct {
			name string
			v    *int32
		}{{"scaleUpStep", b.ScaleUpStep}, {"scaleDownStep", b.ScaleDownStep}} {
			if st.v != nil && *st.v < 1 {
				errs = append(errs, fmt.Sprintf("behavior.%s %d: want at least 1", st.name, *st.v))
			}
		}
	}
	p.Complete()
	if len(errs) == 0 {
		if err := p.Validate(); err != nil {
			errs = append(errs, strings.TrimPrefix(err.Error(), scaler.ErrInvalidPolicy.Error()+": "))
		}
	}
	if len(errs) > 0 {
		return scaler.Policy{}, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return p, nil
}
