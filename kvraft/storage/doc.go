// Package storage is the durable half of a kvraft replica's Raft log: etcd's
// write-ahead log (server/storage/wal) and snapshotter
// (server/etcdserver/api/snap) under one data directory, mirrored into a
// raft.MemoryStorage that the Raft node reads from.
//
// Save persists one raft.Ready with a single fsync (group commit). Snapshots
// are written to the snapshotter before their marker goes into the WAL, so a
// WAL snapshot marker always has its file. Open recovers from the newest
// snapshot that the WAL knows, repairs a torn WAL tail (a record cut short by
// a crash, which was never fsynced and so never acknowledged) by truncating
// it, and refuses to open a WAL whose records fail their CRC: those bytes were
// fsynced and then damaged, and serving from them could return corrupted data.
package storage
