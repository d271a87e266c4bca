package pods_test

import (
	"os"
	"regexp"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pennyhq/penny/admission"
	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/custommetrics"
	"github.com/pennyhq/penny/aggregator/pods"
)

// TestREADMEAutoscalers checks the manifests the README shows: each
// HorizontalPodAutoscaler is a valid autoscaling/v2 object (no unknown
// field) that scales on a metric Penny serves, and the README covers both
// the memory and the latency example the docs promise; the webhook's rules
// ConfigMap holds rules the webhook takes. Any other manifest fails.
func TestREADMEAutoscalers(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1)
	seen := map[string]bool{}
	for _, m := range blocks {
		var kind metav1.TypeMeta
		if err := yaml.Unmarshal(m[1], &kind); err != nil {
			t.Fatalf("README manifest:\n%s\n%v", m[1], err)
		}
		if kind.APIVersion == "v1" && kind.Kind == "ConfigMap" {
			var cm corev1.ConfigMap
			if err := yaml.UnmarshalStrict(m[1], &cm); err != nil {
				t.Fatalf("README ConfigMap:\n%s\n%v", m[1], err)
			}
			if _, err := admission.ParseRules([]byte(cm.Data["rules.yaml"])); err != nil || cm.Data["rules.yaml"] == "" {
				t.Errorf("README ConfigMap %s: rules.yaml: %v", cm.Name, err)
			}
			continue
		}
		if kind.APIVersion == "penny.dev/v1alpha1" && kind.Kind == "CostPolicy" {
			var cp costpolicy.CostPolicy
			if err := yaml.UnmarshalStrict(m[1], &cp); err != nil {
				t.Fatalf("README CostPolicy:\n%s\n%v", m[1], err)
			}
			if _, err := cp.Spec.Policy(); err != nil {
				t.Errorf("README CostPolicy %s: %v", cp.Name, err)
			}
			continue
		}
		var hpa autoscalingv2.HorizontalPodAutoscaler
		if err := yaml.UnmarshalStrict(m[1], &hpa); err != nil {
			t.Fatalf("README manifest:\n%s\n%v", m[1], err)
		}
		if hpa.APIVersion != "autoscaling/v2" || hpa.Kind != "HorizontalPodAutoscaler" || hpa.Namespace == "" {
			t.Errorf("%s: not a namespaced autoscaling/v2 HorizontalPodAutoscaler", hpa.Name)
		}
		for _, ms := range hpa.Spec.Metrics {
			if ms.Type == autoscalingv2.ExternalMetricSourceType && ms.External != nil {
				// A CostPolicy's decision, carried out as is.
				e := ms.External
				if e.Metric.Name != custommetrics.ExternalDesiredReplicas || e.Metric.Selector == nil ||
					e.Metric.Selector.MatchLabels[custommetrics.LabelCostPolicy] == "" ||
					e.Target.Type != autoscalingv2.AverageValueMetricType || e.Target.AverageValue == nil || e.Target.AverageValue.Value() != 1 {
					t.Errorf("%s: an External metric must be %s{%s=NAME} with an AverageValue target of 1", hpa.Name,
						custommetrics.ExternalDesiredReplicas, custommetrics.LabelCostPolicy)
				}
				continue
			}
			if ms.Type != autoscalingv2.PodsMetricSourceType || ms.Pods == nil {
				t.Errorf("%s: metric of type %s, want Pods", hpa.Name, ms.Type)
				continue
			}
			if _, ok := pods.Lookup(ms.Pods.Metric.Name); !ok {
				t.Errorf("%s: Penny serves no metric %q", hpa.Name, ms.Pods.Metric.Name)
			}
			if ms.Pods.Target.AverageValue == nil || ms.Pods.Target.AverageValue.Sign() <= 0 {
				t.Errorf("%s: no positive averageValue target", hpa.Name)
			}
			seen[ms.Pods.Metric.Name] = true
		}
	}
	for _, want := range []string{pods.MemoryRSSBytes, pods.TCPSRTTP99Seconds} {
		if !seen[want] {
			t.Errorf("README has no HorizontalPodAutoscaler on %s", want)
		}
	}
}
