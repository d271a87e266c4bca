package kvraft

// LogFirstIndex exposes the first index of the in-memory Raft log to tests.
func (n *Node) LogFirstIndex() uint64 {
	i, _ := n.storage.Raft().FirstIndex()
	return i
}

// Crash stops the node without a graceful leadership transfer, as close to
// a crash as an in-process node gets (every acknowledged write is already
// fsynced, so a real crash loses nothing more).
func (n *Node) Crash() {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.done
}
