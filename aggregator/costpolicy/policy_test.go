package costpolicy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pennyhq/penny/aggregator/scaler"
)

const example = `apiVersion: penny.dev/v1alpha1
kind: CostPolicy
metadata:
  name: web
  namespace: shop
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  objective:
    metric: request_latency_p99_seconds
    max: 200ms
  minReplicas: 2
  maxReplicas: 20
  behavior:
    scaleUpStep: 4
    scaleDownStabilizationSeconds: 120
`

func TestPolicy(t *testing.T) {
	var cp CostPolicy
	if err := yaml.UnmarshalStrict([]byte(example), &cp); err != nil {
		t.Fatal(err)
	}
	p, err := cp.Spec.Policy()
	if err != nil {
		t.Fatal(err)
	}
	want := scaler.Policy{Objective: scaler.Objective{Metric: scaler.MetricRequestLatencyP99, Max: 0.2}, MinReplicas: 2, MaxReplicas: 20,
		Behavior: scaler.Behavior{ScaleUpStep: 4, ScaleDownStep: scaler.DefaultScaleDownStep,
			ScaleDownStabilization: 2 * time.Minute, Headroom: scaler.DefaultHeadroom}}
	if p != want {
		t.Fatalf("policy\n%+v\nwant\n%+v", p, want)
	}
}

func TestPolicyRefuses(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"objective 0", "max: 200ms", "max: 0s", "objective.max 0"},
		{"min above max", "minReplicas: 2", "minReplicas: 30", "maxReplicas 20 is below minReplicas 30"},
		{"unknown metric", "metric: request_latency_p99_seconds", "metric: cpu", `objective.metric "cpu"`},
		{"no target", "    name: web\n  objective", "    name: \"\"\n  objective", "targetRef.name is required"},
		{"not a workload", "kind: Deployment", "kind: Service", "targetRef apps/v1 Service"},
		{"step 0", "scaleUpStep: 4", "scaleUpStep: 0", "behavior.scaleUpStep 0"},
		{"headroom", "scaleUpStep: 4", "headroomPercent: 150", "behavior.headroomPercent 150"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(example, tt.old, tt.new, 1)
			if doc == example {
				t.Fatalf("%q is not in the example", tt.old)
			}
			var cp CostPolicy
			if err := yaml.UnmarshalStrict([]byte(doc), &cp); err != nil {
				t.Fatal(err)
			}
			_, err := cp.Spec.Policy()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Policy: %v, want %q", err, tt.want)
			}
		})
	}
}
