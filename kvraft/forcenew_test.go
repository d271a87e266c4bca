package kvraft_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pennyhq/penny/kvraft"
)

// TestForceNewClusterRecoversLostQuorum destroys two of three members for
// good: the survivor alone has no quorum; restarted with ForceNewCluster it
// becomes a one-member cluster that serves every committed write and
// takes new ones, and members can be added back.
func TestForceNewClusterRecoversLostQuorum(t *testing.T) {
	c := newCluster(t, 3, func(cfg *kvraft.Config) { cfg.SnapshotCount = 40; cfg.SnapshotCatchUpEntries = 10 })
	lead := c.waitLeader()
	idx := writeKeys(t, c.node(lead), "f", 200) // past a few snapshots, and entries after the last
	c.waitApplied(idx)
	const survivor = 2
	for _, m := range c.members {
		c.crash(m.ID)
	}
	for _, id := range []uint64{1, 3} {
		if err := os.RemoveAll(filepath.Join(c.dir, fmt.Sprint(id))); err != nil {
			t.Fatal(err)
		}
	}

	cfg := c.config(survivor)
	cfg.ForceNewCluster = true
	n := c.startWith(cfg)
	if l := c.waitLeader(); l != survivor {
		t.Fatalf("leader %d, want the survivor %d", l, survivor)
	}
	checkKeys(t, n, "f", 200, linearizable)
	put(t, n, "after", "force-new-cluster")
	if st := n.Status(); len(st.Members) != 1 || st.Members[0].ID != survivor {
		t.Fatalf("members after force new cluster: %+v", st.Members)
	}
	// The removed members' ids are gone for good.
	if _, err := n.AddMember(context.Background(), kvraft.Member{ID: 1, PeerURL: "http://node1:1"}); !errors.Is(err, kvraft.ErrIDRemoved) {
		t.Fatalf("re-adding a removed id: %v, want ErrIDRemoved", err)
	}

	// Restarted without the flag, it stays a one-member cluster.
	c.stop(survivor)
	n = c.start(survivor)
	c.waitLeader()
	checkKeys(t, n, "f", 200, linearizable)

	// Grow back: add member 4, start it with Join; it catches up.
	m4 := kvraft.Member{ID: 4, PeerURL: "http://node4:1"}
	if _, err := n.AddMember(context.Background(), m4); err != nil {
		t.Fatalf("add member 4: %v", err)
	}
	c.members = []kvraft.Member{c.members[survivor-1], m4}
	cfg4 := c.config(4)
	cfg4.Join = true
	n4 := c.startWith(cfg4)
	idx = put(t, n, "after", "grow")
	c.waitApplied(idx)
	checkKeys(t, n4, "f", 200, linearizable)
	if r := get(t, n4, "after", linearizable); string(r.Value) != "grow" {
		t.Fatalf("member 4 reads after = %q", r.Value)
	}
}
