// Package transport is kvraft's peer transport on etcd's rafthttp: one
// long-lived stream per peer for appends and heartbeats (pipelined, with
// rafthttp's msgappv2 encoding), a pool of HTTP pipelines for everything
// else, snapshots sent in full over a pipeline, and optional TLS with client
// certificates. Every request carries a cluster ID derived from a shared
// token, so replicas of different clusters refuse each other.
//
// The peer port must only be reachable by cluster members: rafthttp trusts
// its peers (it does not bound message sizes), as etcd does.
package transport
