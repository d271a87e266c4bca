// Package admission is Penny's mutating admission webhook: it stamps cost
// labels (tenant, service tier, owner and, when asked, the version a
// workload runs) on every pod at creation, from the pod's namespace, its
// owner, its own labels and images, or a default, so that cost allocation
// by tenant works without changing any manifest.
//
// The rules say which labels to stamp and where each value comes from
// (Rules, parsed from the rules ConfigMap's file and read again when it
// changes; a file that does not parse keeps the last good rules). Patch
// computes the JSON patch for one pod: a label the pod already has is
// kept, never overwritten, and a pod that has every label gets no patch,
// so a second invocation (reinvocationPolicy: IfNeeded) changes nothing.
// Values are made valid label values before they are stamped: a patch
// that Kubernetes would refuse would refuse the pod.
//
// Server serves the AdmissionReview API (admission.k8s.io/v1) over TLS
// with bounded request sizes and timeouts, /healthz and /metrics. It runs
// as a Deployment of its own, apart from the aggregator cluster
// (docs/admission.md says why).
package admission
