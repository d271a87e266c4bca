// Package cost is Penny's allocation model: it turns what each container
// used and requested, and what each node offers at what price, into
// OpenCost-compatible allocations (cost, efficiency, idle) per container,
// pod, controller, namespace, label, tenant, node or cluster, over a window
// and in steps.
//
// The package is pure: no I/O, no clock, no store. Its inputs are
//
//   - Series: one container's identity (Container) and its Usage spans, a
//     minute or an hour each (CPU and memory used, requested and allocated,
//     egress bytes by class), written by the rollup writer with MinuteAlloc
//     and compacted with Usage.Add;
//   - NodeUsage: a node's allocatable CPU and memory, the hours it was
//     observed and its Rates over a span.
//
// Model.Compute prices them for a Query, which ParseQuery reads from the
// parameters of OpenCost's /allocation API (window, step, aggregate,
// accumulate, idle, shareIdle, filter and a few more), and returns a Result
// whose Response marshals to the JSON OpenCost returns, so a client written
// for OpenCost reads Penny's.
//
// The rules (max(request, usage) per minute, idle per node, shared idle in
// proportion to CPU and memory cost, proration of spans at the edges of a
// window or step) and where they differ from OpenCost's are in docs/cost.md.
package cost
