// Package costpolicy is the CostPolicy API (penny.dev/v1alpha1): a
// Kubernetes custom resource that asks Penny's aggregator cluster to scale
// one workload to the lowest cost per 1,000 requests that keeps a latency
// objective. The types mirror what `kubectl get costpolicy -o yaml` shows;
// Policy turns a spec into the decision's parameters (package scaler) or
// says, field by field, why it cannot, which the policy's Ready condition
// carries.
//
// The decisions themselves are package scaler's. Evaluating them on the
// Raft leader, publishing them as an external metric for the HPA, writing
// the status and the CustomResourceDefinition in the chart are the next
// steps of the cost-aware scaling work.
package costpolicy
