// Package janitor deletes the series of nodes whose agent went silent.
//
// An agent removes a cgroup's series itself when the cgroup goes away, and
// its keyframes drop whatever it no longer watches. A node that disappears
// with its agent (scaled down, replaced) sends nothing more: after a TTL
// without a frame, the janitor of the replica that leads deletes the node's
// agent record and series, in one transaction conditioned on the record
// being unchanged, so that an agent coming back meanwhile is not erased.
package janitor
