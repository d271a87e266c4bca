// Package podmeta is the Kubernetes metadata an agent attaches to a
// container's series: which pod and container the cgroup belongs to, and the
// pod's labels, owner, QoS class and the container's requests and limits.
//
// It travels as the series' metadata in wire frames (a flat string map, so
// the wire format needs no Kubernetes types), and the encoder sends it only
// when it changes. The agent encodes it (agent/kube); the aggregator decodes
// it to group containers into pods (aggregator/pods). Keys are part of the
// wire contract: docs/wire.md lists them.
package podmeta
