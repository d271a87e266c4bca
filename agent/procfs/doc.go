// Package procfs reads the processes that exist when the agent starts from
// /proc: their resident memory and cgroup. The eBPF programs only see
// changes, so these values seed what the kernel has not reported yet.
package procfs
