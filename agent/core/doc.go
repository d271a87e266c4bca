// Package core starts what every agent mode shares: the eBPF programs, the
// sampler over them, and the node-local /metrics and /healthz endpoints.
// `penny local` adds a display, `penny agent` a shipper.
package core
