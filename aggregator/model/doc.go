// Package model is the aggregator's metrics model on top of kvraft: how the
// state that agents stream is laid out as keys and values, how one agent
// update becomes a conditional transaction, and how stored series are read
// back as containers with per-interval and windowed values.
//
// Keys (all under "penny/v1/nodes/<node>/", so that one range reads a
// node's records at one index):
//
//	agent            the agent record: incarnation, last applied frame,
//	                 sample time; the condition of every update
//	series/<path>    one cgroup: latest gauges, cumulative counters and
//	                 histograms, the last interval's increments, and
//	                 checkpoints for windowed values
//	meta/<path>      the cgroup's metadata (its pod), written when it
//	                 changes: it is large and changes rarely
//
// A series that ends (removed, left out of a keyframe, ended by its agent's
// restart) leaves a final record outside the node's range, under
// "penny/v1/gone/<node>/", for the history of costs (gone.go), which
// deletes it once rolled up. Series values and agent records carry
// accruals for that history: observed time and exact integrals of the
// gauges, sample and hold, and what accrued since the last minute boundary
// (accrual.go).
//
// Values are msgpack with short field names; unknown fields are ignored, so
// fields can be added. Every update of a node is one transaction whose
// condition is the node's agent record as the writer last saw it, so two
// replicas that both believe they serve an agent (after a failover) cannot
// apply the same frame twice or interleave: the second one's condition fails.
package model
