//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	emv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"

	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/scaler"
)

// costPolicies are the CostPolicies the test applies: one the HPA carries
// out, and three that must be refused with the reason, with an HPA on one
// of them that must not scale anything.
const costPolicies = `apiVersion: penny.dev/v1alpha1
kind: CostPolicy
metadata: {name: cp-web, namespace: shop}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: cp-web}
  objective: {metric: request_latency_p99_seconds, max: 200ms}
  minReplicas: 1
  maxReplicas: 5
  behavior: {scaleDownStabilizationSeconds: 0}
---
apiVersion: penny.dev/v1alpha1
kind: CostPolicy
metadata: {name: objective-zero, namespace: shop}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: cp-bad}
  objective: {max: 0s}
  maxReplicas: 5
---
apiVersion: penny.dev/v1alpha1
kind: CostPolicy
metadata: {name: min-over-max, namespace: shop}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: cp-bad}
  objective: {max: 200ms}
  minReplicas: 6
  maxReplicas: 2
---
apiVersion: penny.dev/v1alpha1
kind: CostPolicy
metadata: {name: no-such-workload, namespace: shop}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: nowhere}
  objective: {max: 200ms}
  maxReplicas: 5
`

// policyHPA is the HorizontalPodAutoscaler that carries a CostPolicy out:
// its decision as an external metric, with an AverageValue target of 1.
func policyHPA(name, target, policy string) string {
	return fmt.Sprintf(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: %[1]s, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: %[2]s}
  minReplicas: 1
  maxReplicas: 10
  behavior:
    scaleUp: {tolerance: "0"}
    scaleDown: {tolerance: "0", stabilizationWindowSeconds: 0}
  metrics:
    - type: External
      external:
        metric:
          name: penny_desired_replicas
          selector: {matchLabels: {costpolicy: %[3]s}}
        target: {type: AverageValue, averageValue: "1"}
`, name, target, policy)
}

// checkCostPolicies applies CostPolicies through the real API server: the
// leader refuses the bad ones with a condition that says why (and their
// HPA scales nothing), decides for the good one, and the HPA carries the
// decision out through external.metrics.k8s.io.
func (c *cluster) checkCostPolicies(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	// cp-web's pods are processes in cgroups the agent measures: serving no
	// request, the leader decides minReplicas, and the HPA scales down.
	threeOf := func(name string) string {
		d := strings.Replace(deploymentIn("shop", name), "replicas: 1", "replicas: 3", 1)
		return strings.Replace(d, "      labels: {app: "+name+"}", "      labels: {app: "+name+", "+workloadLabel+": \"true\"}", 1)
	}
	docs := []string{threeOf("cp-web"), threeOf("cp-bad"), costPolicies,
		policyHPA("cp-web", "cp-web", "cp-web"), policyHPA("cp-bad", "cp-bad", "min-over-max")}
	c.kubectl(t, "apply", "-f", c.cp.writeFile(t, "costpolicies.yaml", []byte(strings.Join(docs, "---\n"))))
	cfg, err := clientcmd.BuildConfigFromFlags("", c.cp.Admin)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	policy := func(name string) (*costpolicy.CostPolicy, error) {
		u, err := dyn.Resource(costpolicy.GVR).Namespace("shop").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		var cp costpolicy.CostPolicy
		b, err := json.Marshal(u.Object)
		if err == nil {
			err = json.Unmarshal(b, &cp)
		}
		return &cp, err
	}
	condition := func(cp *costpolicy.CostPolicy, typ string) *metav1.Condition {
		for i := range cp.Status.Conditions {
			if cp.Status.Conditions[i].Type == typ {
				return &cp.Status.Conditions[i]
			}
		}
		return nil
	}

	// The bad ones: Ready=False, with the reason.
	for _, tc := range []struct{ name, reason, message string }{
		{"objective-zero", costpolicy.ReasonInvalidSpec, "objective.max 0"},
		{"min-over-max", costpolicy.ReasonInvalidSpec, "maxReplicas 2 is below minReplicas 6"},
		{"no-such-workload", costpolicy.ReasonTargetNotFound, "Deployment shop/nowhere does not exist"},
	} {
		c.kubelet.wait(t, 60*time.Second, "CostPolicy "+tc.name+" refused", func() error {
			cp, err := policy(tc.name)
			if err != nil {
				return err
			}
			r := condition(cp, costpolicy.ConditionReady)
			if r == nil || r.Status != metav1.ConditionFalse || r.Reason != tc.reason || !strings.Contains(r.Message, tc.message) {
				return fmt.Errorf("Ready condition %+v, want False %s %q", r, tc.reason, tc.message)
			}
			return nil
		})
	}

	// The good one: decided, served as an external metric through
	// kube-apiserver, and carried out by its HPA.
	var desired int32
	c.kubelet.wait(t, 3*time.Minute, "CostPolicy cp-web decided, down to minReplicas, and carried out", func() error {
		cp, err := policy("cp-web")
		if err != nil {
			return err
		}
		if r := condition(cp, costpolicy.ConditionReady); r == nil || r.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v", r)
		}
		d := condition(cp, costpolicy.ConditionDecided)
		if d == nil || d.Status != metav1.ConditionTrue || cp.Status.DesiredReplicas != 1 || d.Reason != scaler.ReasonIdle {
			return fmt.Errorf("Decided %+v, desired %d: want 1, Idle", d, cp.Status.DesiredReplicas)
		}
		desired = cp.Status.DesiredReplicas
		out := c.kubectlQuiet("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/penny_desired_replicas?labelSelector=costpolicy%3Dcp-web")
		var list emv1beta1.ExternalMetricValueList
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 1 {
			return fmt.Errorf("external metric: %v: %s", err, out)
		}
		if v := list.Items[0].Value.Value(); v != int64(desired) {
			return fmt.Errorf("external metric %d, the policy's status says %d", v, desired)
		}
		dep, err := c.cp.Client.AppsV1().Deployments("shop").Get(ctx, "cp-web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *dep.Spec.Replicas != desired {
			hpa, err := c.cp.Client.AutoscalingV2().HorizontalPodAutoscalers("shop").Get(ctx, "cp-web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			return fmt.Errorf("cp-web runs %d replicas, the decision is %d (%s: %s); its autoscaler: %s", *dep.Spec.Replicas, desired,
				d.Reason, d.Message, hpaStatus(hpa))
		}
		return nil
	})
	// What the leader learned is in the store for the next leader.
	if b, err := c.getBody(apiURL(c.hosts[0]) + "/v1/kv/" + string(costpolicy.StateKey("shop", "cp-web"))); err != nil ||
		!strings.Contains(string(b), `"snapshot"`) {
		t.Errorf("the leader's learned state of cp-web: %v: %s", err, b)
	}
	t.Logf("kubectl -n shop get costpolicies\n%s", c.kubectlQuiet("-n", "shop", "get", "costpolicies"))
	t.Logf("kubectl -n shop describe costpolicy cp-web\n%s", c.kubectlQuiet("-n", "shop", "describe", "costpolicy", "cp-web"))

	// The HPA on a refused policy gets no metric and scales nothing.
	dep, err := c.cp.Client.AppsV1().Deployments("shop").Get(ctx, "cp-bad", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 3 {
		t.Errorf("cp-bad, whose policy is refused, runs %d replicas, want its 3", *dep.Spec.Replicas)
	}

	// A deleted policy's decision goes with it.
	c.kubectl(t, "-n", "shop", "delete", "costpolicy", "cp-web")
	c.kubelet.wait(t, 30*time.Second, "the deleted policy's decision gone", func() error {
		out := c.kubectlQuiet("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/penny_desired_replicas")
		var list emv1beta1.ExternalMetricValueList
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 0 {
			return fmt.Errorf("external metric: %v: %s", err, out)
		}
		return nil
	})
}
