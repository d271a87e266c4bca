package podindex

import "github.com/pennyhq/penny/kvraft"

// Store is a replica with its pod index: what readers are given, so that
// package query finds the index the replica keeps (the node's
// Config.Watcher must be Index).
type Store struct {
	*kvraft.Node
	Index *Index
}

// PodIndex returns the index.
func (s Store) PodIndex() *Index { return s.Index }
