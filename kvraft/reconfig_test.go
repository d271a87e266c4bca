package kvraft_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/pennyhq/penny/kvraft"
)

// TestStrictReconfiguration replays the membership attacks: adds of
// members that never start can never take the cluster's quorum away, a
// change that would lose quorum with one member down is refused, and so
// are a duplicate peer URL and an ID in use. Writes keep working.
func TestStrictReconfiguration(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	ctx := context.Background()
	via := c.node(lead%3 + 1) // a follower, as an anonymous client would pick

	// Three adds of unreachable peers: the first two keep a reachable
	// quorum (3 of 4, 3 of 5); the third would not (3 of 6).
	for i, id := range []uint64{11, 12, 13} {
		_, err := via.AddMember(ctx, kvraft.Member{ID: id, PeerURL: "http://unreachable-" + string(rune('a'+i)) + ":1"})
		if i < 2 && err != nil {
			t.Fatalf("add %d: %v", id, err)
		}
		if i == 2 && !errors.Is(err, kvraft.ErrReconfig) {
			t.Fatalf("third add of an unreachable member: %v, want ErrReconfig", err)
		}
	}
	idx := put(t, via, "still", "writable")
	c.waitApplied(idx)
	// Removing a running member now would leave 2 reachable of 4.
	if _, err := via.RemoveMember(ctx, lead); !errors.Is(err, kvraft.ErrReconfig) {
		t.Fatalf("removing a running member with two unreachable: %v, want ErrReconfig", err)
	}
	// Removing the unreachable ones is allowed, and heals the cluster.
	for _, id := range []uint64{11, 12} {
		if _, err := via.RemoveMember(ctx, id); err != nil {
			t.Fatalf("remove unreachable %d: %v", id, err)
		}
	}

	// A member with another member's peer URL (spelled differently) and
	// one with an ID in use are refused.
	for _, tt := range []struct {
		m    kvraft.Member
		want error
	}{
		{kvraft.Member{ID: 20, PeerURL: "HTTP://Node1:1/"}, kvraft.ErrPeerURLExists},
		{kvraft.Member{ID: 2, PeerURL: "http://fresh:1"}, kvraft.ErrMemberExists},
		{kvraft.Member{ID: 11, PeerURL: "http://fresh:1"}, kvraft.ErrIDRemoved},
	} {
		if _, err := via.AddMember(ctx, tt.m); !errors.Is(err, tt.want) {
			t.Fatalf("add %+v: %v, want %v", tt.m, err, tt.want)
		}
	}

	// One member down: adding an unreachable member (2 reachable of 4)
	// and removing a running one (1 of 2) are refused; removing the
	// member that is down (2 of 2) is not.
	down := uint64(1)
	if down == lead {
		down = 2
	}
	c.crash(down)
	lead = c.waitLeader()
	via = c.node(lead)
	if _, err := via.AddMember(ctx, kvraft.Member{ID: 30, PeerURL: "http://unreachable-d:1"}); !errors.Is(err, kvraft.ErrReconfig) {
		t.Fatalf("add with a member down: %v, want ErrReconfig", err)
	}
	var other uint64
	for _, n := range c.running() {
		if n.ID() != lead {
			other = n.ID()
		}
	}
	if _, err := via.RemoveMember(ctx, other); !errors.Is(err, kvraft.ErrReconfig) {
		t.Fatalf("remove a running member with one down: %v, want ErrReconfig", err)
	}
	if _, err := via.RemoveMember(ctx, down); err != nil {
		t.Fatalf("remove the member that is down: %v", err)
	}
	idx = put(t, via, "after", "changes")
	c.waitApplied(idx)
	if st := via.Status(); len(st.Members) != 2 {
		t.Fatalf("%d members at the end: %+v", len(st.Members), st.Members)
	}
}

// TestConcurrentChangesCancelled: two changes checked against the same
// membership, proposed through different replicas, cannot both apply; the
// second is cancelled on every replica alike, and a change checked against
// the current membership applies.
func TestConcurrentChangesCancelled(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	ctx := context.Background()
	a, b := c.node(lead), c.node(lead%3+1)
	seen := a.MembershipView()
	if _, err := a.AddMember(ctx, kvraft.Member{ID: 11, PeerURL: "http://unreachable-a:1"}); err != nil {
		t.Fatalf("first add: %v", err)
	}
	// The second was checked through b before the first applied.
	_, err := b.AddMemberCheckedAt(ctx, kvraft.Member{ID: 12, PeerURL: "http://unreachable-b:1"}, seen)
	if !errors.Is(err, kvraft.ErrMembershipChange) {
		t.Fatalf("a change checked before another applied: %v, want ErrMembershipChange", err)
	}
	idx := put(t, b, "after", "changes")
	c.waitApplied(idx)
	now := a.MembershipView()
	if now == seen {
		t.Fatal("the view did not change with the membership")
	}
	for _, n := range c.running() {
		if ids := memberIDs(n.Status().Members); !slices.Equal(ids, []uint64{1, 2, 3, 11}) || n.MembershipView() != now {
			t.Fatalf("member %d: members %v, view %x; want [1 2 3 11] and %x", n.ID(), ids, n.MembershipView(), now)
		}
	}
	// Checked against the membership as it is now, it applies.
	if _, err := b.AddMemberCheckedAt(ctx, kvraft.Member{ID: 12, PeerURL: "http://unreachable-b:1"}, now); err != nil {
		t.Fatalf("a change checked against the current membership: %v", err)
	}
}

func memberIDs(ms []kvraft.Member) []uint64 {
	ids := make([]uint64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	return ids
}
