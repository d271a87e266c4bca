// Package recommend answers GET /v1/scaling/recommendations: for every
// workload (a pod's controller as cost.Controller names it), its replicas
// now and the replicas its CostPolicy decided, its cost per 1,000 requests
// over a window of history, split by the capacity type (spot or on-demand)
// of the nodes its pods ran on, its request latency against its objective,
// and the monthly saving of moving it to spot and of running the replicas
// its policy recommends.
//
// The arithmetic (Workload, Advise) is pure; Handler reads the history,
// the live pods, the decisions in the store and the PodDisruptionBudgets
// (PDBLister, from Kubernetes) and serves it.
package recommend
