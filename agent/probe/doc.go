// Package probe loads Penny's eBPF programs into the kernel, attaches them,
// and reads their maps into plain Go values.
//
// Before loading it checks what a user can get wrong (privileges, kernel
// BTF, tracefs, missing tracepoints) and returns one error per problem whose
// text says what to do; each wraps one of the package's sentinel errors.
// It mounts tracefs and bpffs when they are missing and it may.
package probe
