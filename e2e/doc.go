// Package e2e proves Penny the way a cluster uses it: a real kube-apiserver
// and kube-controller-manager (built from k8s.io/kubernetes by
// hack/kube-binaries.sh), the Helm chart installed into them, the
// aggregator replicas registered as the custom metrics APIService, and the
// real horizontal-pod-autoscaler scaling Deployments on Penny's numbers.
//
// The tests carry the build tag e2e and need root: `make e2e` builds what
// they need and runs them. The harness plays the parts a test machine has
// no room for: the kubelet (it binds pods to its node, starts a real
// process in a real cgroup at the kubelet's path for each workload pod and
// reports its status) and the network (each aggregator replica runs in a
// network namespace of its own on a test bridge, as a pod would, because
// kube-apiserver refuses loopback endpoints).
package e2e
