// Package command defines the binary encoding of the proposals that kvraft
// replicates through Raft: atomic batches of puts and deletes, conditional
// transactions (compares on a key's existence, value or mod index, then or
// else ops), several independent transactions per proposal, and member
// attribute updates.
//
// Every field read from the wire is bounded before anything is allocated, so
// Decode is safe on untrusted input (it is fuzzed). The encoding is versioned
// by its first byte; a replica refuses an entry whose version it does not know
// rather than guessing.
package command
