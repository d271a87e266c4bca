// Package nodemeta is what an agent says of its node: instance type,
// region, zone, capacity type (spot or on-demand), allocatable and
// capacity CPU and memory, the node's name and where the facts came from
// (Kubernetes' Node object, the agent's flags, the host).
//
// The facts travel as the agent metadata of wire frames (frame key 3, a
// flat string map), which the encoder sends whole in every keyframe and in
// a delta only when it changed, so a steady node sends them once per
// keyframe. The agent encodes them (agent/daemon, from agent/kube and its
// flags); the aggregator stores them in the node's agent record and
// decodes them for its readers (aggregator/query: GET /v1/nodes, the
// penny_node_* series, the cost model). Keys are part of the wire
// contract: docs/wire.md lists them.
//
// Decode never fails: a value that is malformed or out of bounds leaves
// its fact unknown, and is reported, so that one bad fact from one agent
// costs nothing but that fact.
package nodemeta
