// Package sampler turns the eBPF maps into per-cgroup values for each
// interval.
//
// Each Sample reads the maps once, sums processes into cgroups, maps memory
// cgroups to cgroup v2 paths, computes what happened since the previous
// sample (counters and histograms are cumulative in the kernel) and forgets
// cgroups, processes and address spaces that are gone, in user space and in
// the maps.
//
// CPU time, throttling, pressure stall and the working set come from
// cgroupfs (see usage.go), read for the cgroups with processes or activity
// and made each cgroup's own, as its other numbers are.
//
// Absolute values the kernel only reports as changes are seeded: the RSS of
// processes that existed before the programs were attached from
// /proc/<pid>/status, and each memory cgroup's page cache from its
// memory.stat (again every ReseedEvery, which bounds any drift).
package sampler
