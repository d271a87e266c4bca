package kvraft_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/storage"
)

func lastWALFile(t *testing.T, dataDir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dataDir, "wal", "*.wal"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no wal files in %s: %v", dataDir, err)
	}
	sort.Strings(names)
	return names[len(names)-1]
}

// TestTornAcknowledgedTailRefused cuts a follower's WAL inside the record
// of an entry it had acknowledged (and that committed), then restarts it:
// it must stop with ErrLostEntries, naming the WAL and what to do, and
// refuse to start again, rather than panic in Raft ("tocommit out of
// range") at every restart. The cluster keeps serving.
func TestTornAcknowledgedTailRefused(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	f := lead%3 + 1
	idx := put(t, c.node(lead), "acked", "MARKER-VALUE-0123456789")
	c.waitApplied(idx)
	c.crash(f)

	dir := filepath.Join(c.dir, fmt.Sprint(f))
	name := lastWALFile(t, dir)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte("MARKER-VALUE"))
	if i < 0 {
		t.Fatalf("acknowledged value not found in %s", name)
	}
	if err := os.Truncate(name, int64(i+4)); err != nil {
		t.Fatal(err)
	}

	n, err := kvraft.Start(context.Background(), c.config(f))
	if err != nil {
		t.Fatalf("start after the cut: %v", err)
	}
	select {
	case <-n.Done():
	case <-time.After(20 * time.Second):
		n.Stop()
		t.Fatal("a member that lost acknowledged entries kept running")
	}
	err = n.Err()
	if !errors.Is(err, kvraft.ErrLostEntries) {
		t.Fatalf("stopped with %v, want ErrLostEntries", err)
	}
	for _, want := range []string{name, "replace this member", "wipe " + dir} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	// Every later start refuses at once, without joining the cluster.
	for range 2 {
		if _, err := kvraft.Start(context.Background(), c.config(f)); !errors.Is(err, kvraft.ErrLostEntries) {
			t.Fatalf("restart: %v, want ErrLostEntries", err)
		}
	}
	idx = put(t, c.node(lead), "still", "serving")
	c.waitApplied(idx)
}

// TestStartRefusesCommitBeyondLog: a log whose hard state commits entries
// it no longer holds is refused by Start with ErrLostEntries (and
// storage.ErrCorrupt), before Raft would panic on it.
func TestStartRefusesCommitBeyondLog(t *testing.T) {
	c := newCluster(t, 1, nil)
	n := c.node(c.waitLeader())
	for i := range 10 {
		put(t, n, fmt.Sprint("k", i), "v")
	}
	c.stop(1)
	dir := filepath.Join(c.dir, "1")
	st, rec, err := storage.Open(storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// An entry at a lower index replaces the tail when the WAL is read
	// back: the log ends below the commit index it recorded.
	at, term := rec.HardState.GetCommit()-3, rec.HardState.GetTerm()
	e := &raftpb.Entry{Index: &at, Term: &term, Type: new(raftpb.EntryNormal)}
	if err := st.Save(rec.HardState, []*raftpb.Entry{e}, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = kvraft.Start(context.Background(), c.config(1))
	if !errors.Is(err, kvraft.ErrLostEntries) || !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "replace this member") {
		t.Fatalf("start: %v, want ErrLostEntries", err)
	}
}
