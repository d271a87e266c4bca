// Package cgtest runs test workloads in real cgroups: it creates cgroups in
// the host's layout (cgroup v2, plus the v1 memory hierarchy in hybrid mode),
// starts helper processes in them (the test binary itself, re-executed) and
// reads the ground truth the kernel reports for them. Helpers run memory,
// page cache and network workloads, and servers and clients of HTTP/1.1,
// h2c, HTTPS, gRPC and plain TCP requests with a known service time
// (requests.go).
//
// A test package that uses it calls MaybeHelper first thing in TestMain.
package cgtest
