// Package cgtest runs test workloads in real cgroups: it creates cgroups in
// the host's layout (cgroup v2, plus the v1 memory hierarchy in hybrid mode),
// starts helper processes in them (the test binary itself, re-executed) and
// reads the ground truth the kernel reports for them.
//
// A test package that uses it calls MaybeHelper first thing in TestMain.
package cgtest
