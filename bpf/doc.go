// Package bpf holds Penny's eBPF programs and the Go bindings that bpf2go
// generates for them.
//
// The C sources (one .bpf.c per concern: memory, pagecache, net, requests)
// are compiled once against vmlinux.h with CO-RE relocations, and the
// resulting objects are committed, so building Penny needs no clang.
// Regenerate with `make generate` after changing a .bpf.c file or penny.h;
// `make vmlinux` refreshes vmlinux.h from the running kernel's BTF.
//
// Only tracepoints, raw tracepoints and cgroup programs (cgroup_skb,
// sock_ops) are used: no kprobes and no fentry, which many kernels (Penny's
// CI kernel among them) lack.
package bpf
