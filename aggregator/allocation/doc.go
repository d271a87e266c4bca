// Package allocation serves GET /v1/allocation on every replica: the cost
// of containers, pods, controllers, namespaces, labels, tenants, nodes or
// the cluster over a window of history, with OpenCost's query parameters,
// semantics and JSON, so that a client written for OpenCost's allocation
// API reads Penny's.
//
// A request is parsed by cost.ParseQuery (window, step, aggregate,
// accumulate, idle, shareIdle, filter, ...) plus the consistency
// parameters of every Penny read (consistency, max_staleness, index;
// bounded staleness by default, so every replica answers); the window's
// minute and hour rollups and node spans are read from the local replica
// by history.Reader.SpansByStep and priced by cost.Model. Bad parameters
// are a 400 that names the parameter and the reason, a read or a result
// too large a 413; every answer, errors included, is OpenCost's envelope.
// Computations run a few at a time and within a timeout, so that a burst
// of large queries cannot exhaust a replica's memory.
//
// The model, the query grammar and where Penny differs from OpenCost are in
// docs/cost.md.
package allocation
