// Package kvstore is the in-memory state machine of kvraft: an ordered map
// from byte keys to byte values, each with its mod index (the index of the
// log entry that last wrote it), with atomic batches, conditional
// transactions evaluated against the current state, point reads, range
// reads and a compact snapshot encoding.
//
// The map is a copy-on-write B-tree, so Clone is O(1) and a snapshot can be
// serialized from a clone while writes continue on the original. A Store is
// safe for concurrent use. It knows nothing about Raft: the caller applies
// batches and transactions in log order, passing each entry's index, and
// tracks the applied index.
package kvstore
