// Package daemon runs `penny agent`: the agent core sampling every interval
// and a shipper streaming each sample to the aggregator cluster. On
// Kubernetes each cgroup's series carries its pod (agent/kube), and every
// frame's agent metadata the node's facts (package nodemeta): the command
// line's over the Node object's over the host's.
package daemon
