// Package faultnet is an in-memory kvraft transport for tests that injects
// network faults: message loss, delay, reordering (random delay jitter) and
// partitions. Messages are marshaled and unmarshaled on the way, as on a
// real wire, so replicas never share memory.
package faultnet
