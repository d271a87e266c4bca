// Package local runs `penny local`: Penny on one host, without Kubernetes.
// The eBPF agent samples every cgroup and ships each sample to a
// single-member aggregator in the same process, over loopback, exactly as a
// cluster's agents do; the samples are shown live, and the aggregator's
// APIs (GET /v1/containers, the KV API) answer on a local port.
package local
