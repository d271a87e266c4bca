// Package kvraft is a replicated, ordered key-value store on the Raft engine
// that etcd runs on (go.etcd.io/raft/v3).
//
// A Node is one replica. It persists the Raft log with etcd's write-ahead log
// and snapshotter (package storage), exchanges Raft messages through a
// pluggable Transport (package transport wraps etcd's rafthttp), and applies
// committed entries to an in-memory ordered map (package kvstore). Its loop
// follows the raft README: persist each Ready with one fsync, send, apply,
// Advance. The state machine is snapshotted every Config.SnapshotCount
// entries and the in-memory log compacted, so memory stays bounded under an
// endless stream of writes; followers that fall behind the compacted log
// receive the snapshot.
//
// Writes (Put, Delete, Batch, Txn, Txns) are Raft proposals and return the
// log index at which they committed. Any replica takes writes: a follower
// forwards the proposal to the leader through Raft and answers once it has
// applied the entry itself. Reads choose their consistency per call; see Consistency for
// the exact guarantee of each level.
//
// Every key carries its mod index, the index of the entry that last wrote
// it, and reads report it. A Txn writes conditionally, as etcd's Txn: its
// compares (on a key's existence, value or mod index) are evaluated when the
// entry is applied, identically on every replica, and decide whether its
// Then or Else ops are applied, atomically. Txns puts several independent
// transactions in one proposal and reports each one's outcome.
//
// Membership starts from a static list and changes at runtime one member at
// a time (AddMember, RemoveMember).
//
// kvraft knows nothing about what it stores.
package kvraft
