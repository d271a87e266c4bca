// Package local runs `penny local`: the eBPF agent on one host, without
// Kubernetes, printing live per-cgroup numbers and optionally serving them
// on /metrics.
package local
