package storage

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func confEntry(t *testing.T, index uint64, typ raftpb.ConfChangeType, id uint64) *raftpb.Entry {
	t.Helper()
	data, err := proto.Marshal(&raftpb.ConfChange{Type: new(typ), NodeId: new(id)})
	if err != nil {
		t.Fatal(err)
	}
	return &raftpb.Entry{Index: new(index), Term: new(uint64(1)), Type: new(raftpb.EntryConfChange), Data: data}
}

// TestForceNewCluster checks the rewritten log: the whole log is kept and
// committed, the tail past the persisted commit index included, then one
// committed removal per other member of the configuration (as the changes
// in the log left it) follows, and it survives a reopen.
func TestForceNewCluster(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, dir)
	ents := []*raftpb.Entry{
		confEntry(t, 1, raftpb.ConfChangeAddNode, 1),
		confEntry(t, 2, raftpb.ConfChangeAddNode, 2),
		confEntry(t, 3, raftpb.ConfChangeAddNode, 3),
		confEntry(t, 4, raftpb.ConfChangeAddNode, 4),
		confEntry(t, 5, raftpb.ConfChangeRemoveNode, 4),
	}
	ents = append(ents, entries(6, 9, 1)...)
	ents = append(ents, confEntry(t, 10, raftpb.ConfChangeAddNode, 5)) // past the commit index
	if err := s.Save(&raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(uint64(8))}, ents, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, _ = openT(t, dir) // ForceNewCluster works on a log as Open recovered it
	removed, err := s.ForceNewCluster(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 3 || removed[0] != 1 || removed[1] != 3 || removed[2] != 5 {
		t.Fatalf("removed %v, want [1 3 5]", removed)
	}
	s.Close()

	s, rec := openT(t, dir)
	defer s.Close()
	if rec.LastIndex != 13 || rec.HardState.GetCommit() != 13 {
		t.Fatalf("after reopen: last %d, commit %d; want 13 and 13", rec.LastIndex, rec.HardState.GetCommit())
	}
	got, err := s.Raft().Entries(10, 14, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint64{1, 3, 5} {
		e := got[i+1]
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil || e.GetType() != raftpb.EntryConfChange ||
			cc.GetType() != raftpb.ConfChangeRemoveNode || cc.GetNodeId() != want {
			t.Fatalf("entry %d: %v %v (%v), want the removal of %d", e.GetIndex(), e.GetType(), cc, err, want)
		}
	}
	cc := &raftpb.ConfChange{}
	if err := proto.Unmarshal(got[0].GetData(), cc); err != nil || cc.GetNodeId() != 5 {
		t.Fatalf("entry 10 (past the old commit index) changed: %v, %v", cc, err)
	}
	if _, err := s.ForceNewCluster(7); err == nil {
		t.Fatal("forcing a new cluster for a member not in the configuration succeeded")
	}
}
