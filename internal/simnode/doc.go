// Package simnode simulates the samples an agent takes on a Kubernetes
// node: a dozen systemd units and pods of three containers, each cgroup
// idle, light or busy, with counters that have the magnitudes of an agent
// running for a while: memory, page cache, TCP, network bytes by
// destination class, CPU time, throttling and pressure stall. The wire-size benchmark and the load generator use
// it; docs/wire.md states the model's numbers.
package simnode
