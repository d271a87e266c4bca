package kvraft

// LogFirstIndex exposes the first index of the in-memory Raft log to tests.
func (n *Node) LogFirstIndex() uint64 {
	i, _ := n.storage.Raft().FirstIndex()
	return i
}
