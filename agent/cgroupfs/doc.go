// Package cgroupfs finds the cgroup hierarchies of a host and resolves the
// cgroup ids that eBPF programs report to cgroup paths.
//
// Two layouts are common:
//
//   - unified: one cgroup v2 hierarchy (usually at /sys/fs/cgroup) with every
//     controller, the memory controller included. A page's memory cgroup is a
//     v2 cgroup, so page cache is per v2 cgroup.
//   - hybrid: cgroup v2 at /sys/fs/cgroup/unified without controllers, and the
//     controllers (memory among them) on cgroup v1 hierarchies. Processes are
//     still placed in v2 cgroups, and bpf_get_current_cgroup_id() and socket
//     cgroups name v2 cgroups, but a page's memory cgroup is a v1 memory cgroup
//     with ids of its own. Penny maps each v1 memory cgroup to the v2 cgroup
//     with the same path (the layout systemd and container runtimes create),
//     or to its nearest v2 ancestor.
//
// A cgroup id is the inode number of the cgroup's directory in its hierarchy
// (kernfs node id), so resolving an id means finding that directory.
//
// StatReader reads what cgroupfs counts per cgroup: CPU time and throttling
// (cpu.stat), pressure stall information (*.pressure, cgroup v2 only, in
// every v2 cgroup with or without controllers) and memory usage for the
// working set, without allocating, keeping the files of the cgroups it
// follows open.
package cgroupfs
