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

// TestForceNewCluster checks the rewritten log: the uncommitted tail is
// dropped, one committed removal per other member of the configuration
// (as the committed changes left it) follows, and it survives a reopen.
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
	ents = append(ents, confEntry(t, 10, raftpb.ConfChangeAddNode, 5)) // not committed
	if err := s.Save(&raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(uint64(8))}, ents, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, _ = openT(t, dir) // ForceNewCluster works on a log as Open recovered it
	removed, err := s.ForceNewCluster(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0] != 1 || removed[1] != 3 {
		t.Fatalf("removed %v, want [1 3]", removed)
	}
	s.Close()

	s, rec := openT(t, dir)
	defer s.Close()
	if rec.LastIndex != 10 || rec.HardState.GetCommit() != 10 {
		t.Fatalf("after reopen: last %d, commit %d; want 10 and 10", rec.LastIndex, rec.HardState.GetCommit())
	}
	got, err := s.Raft().Entries(9, 11, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint64{1, 3} {
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(got[i].GetData(), cc); err != nil || got[i].GetType() != raftpb.EntryConfChange ||
			cc.GetType() != raftpb.ConfChangeRemoveNode || cc.GetNodeId() != want {
			t.Fatalf("entry %d: %v %v (%v), want the removal of %d", 9+i, got[i].GetType(), cc, err, want)
		}
	}
	if _, err := s.ForceNewCluster(7); err == nil {
		t.Fatal("forcing a new cluster for a member not in the configuration succeeded")
	}
}
