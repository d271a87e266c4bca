// Package custommetrics serves the Kubernetes custom metrics API
// (custom.metrics.k8s.io v1beta1 and v1beta2) from an aggregator replica,
// through sigs.k8s.io/custom-metrics-apiserver, the library that
// prometheus-adapter and KEDA use.
//
// Provider answers for two resources: pods (namespaced) and namespaces
// (root-scoped), each with every metric of package aggregator/pods. It reads
// the local replica with bounded staleness, so every replica answers, and
// groups containers into pods by the metadata the agents attached: a pod's
// labels come from its agent, not from a pod watch. A pod or namespace with
// no data for a metric has no value (the API's not-found error), never a
// zero. Timestamps are the oldest kernel sample that went into a value.
//
// Adapter runs the extension apiserver: secure serving, delegated
// authentication and authorization against kube-apiserver, audit, with the
// library's standard flags. Gatherer exposes the library's own freshness
// histogram for a Prometheus registry that is not the Kubernetes one.
package custommetrics
