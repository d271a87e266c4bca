package kvraft_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/kvraft"
)

const fdChildEnv = "KVRAFT_FDLIMIT_CHILD"

// runChild runs test name alone in a child process (it changes
// process-wide limits) and fails if the child does.
func runChild(t *testing.T, name string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+name)) {
		t.Fatalf("child %s: %v\n%s", name, err, out)
	}
}

// lowerFDLimit makes every new file descriptor fail with EMFILE (the soft
// limit becomes the lowest free descriptor number) and returns a function
// that restores the limit, and one that takes again the descriptors under
// the limit that were closed since (a file open meanwhile).
func lowerFDLimit(t *testing.T) (restore, fill func()) {
	t.Helper()
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	used := map[uint64]bool{}
	for _, e := range ents {
		if fd, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			used[fd] = true
		}
	}
	free := uint64(0)
	for used[free] {
		free++
	}
	low := syscall.Rlimit{Cur: free, Max: orig.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	// Fill the descriptors below the limit that are free (the one that
	// listed /proc/self/fd), so that no file opens.
	var held []*os.File
	restored := false
	restore = func() {
		if restored {
			return
		}
		restored = true
		for _, f := range held {
			f.Close()
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(restore)
	fill = func() {
		for {
			f, err := os.Open("/dev/null")
			if errors.Is(err, syscall.EMFILE) {
				return
			}
			if err != nil || len(held) > 256 {
				t.Fatalf("filling the descriptors under the limit: %v (%d held)", err, len(held))
			}
			held = append(held, f)
		}
	}
	fill()
	return restore, fill
}

// TestSnapshotsSurviveTheFDLimit runs TestFDLimitChild in a child process.
func TestSnapshotsSurviveTheFDLimit(t *testing.T) {
	if os.Getenv(fdChildEnv) != "" {
		return
	}
	runChild(t, "TestFDLimitChild")
}

// TestFDLimitChild (in a child process only) writes while no file can be
// opened: snapshots fail with EMFILE, are counted in
// penny_store_background_errors_total{loop="snapshot"} and retried, the
// replica keeps serving, and once files open again a snapshot is written.
// When snapshots keep failing while entries pile up, the replica stops
// with an error that says why, so its supervisor restarts it.
func TestFDLimitChild(t *testing.T) {
	if os.Getenv(fdChildEnv) == "" {
		return // run by TestSnapshotsSurviveTheFDLimit
	}
	const every = 20
	reg := prometheus.NewRegistry()
	c := newCluster(t, 1, func(cfg *kvraft.Config) {
		cfg.SnapshotCount = every
		cfg.SnapshotCatchUpEntries = 5
		cfg.Registerer = reg
	})
	n := c.node(c.waitLeader())
	for i := range every + 5 {
		put(t, n, fmt.Sprint("a", i), "v")
	}
	snaps := func() float64 { return testutil.ToFloat64(collectorOf(t, reg, "penny_kvraft_snapshots_total")) }
	failures := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "penny_store_background_errors_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "snapshot" {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("a first snapshot", func() bool { return snaps() >= 1 })

	restore, fill := lowerFDLimit(t)
	// A one-member cluster has a Ready, and a snapshot check, only when
	// it is written to.
	i := 0
	waitFor("a failed snapshot", func() bool {
		fill()
		put(t, n, fmt.Sprint("b", i), "v")
		i++
		return i > every && failures() >= 1
	})
	restore()
	before := snaps()
	select {
	case <-n.Done():
		t.Fatalf("the replica stopped on a failed snapshot: %v", n.Err())
	default:
	}
	waitFor("a snapshot after the limit was restored", func() bool {
		put(t, n, "c", "v")
		return snaps() > before
	})
	if r := get(t, n, "b7", linearizable); !r.Found {
		t.Fatal("a write made at the fd limit is gone")
	}

	// Snapshots failing for good while entries pile up: the replica stops
	// and says why.
	restore, fill = lowerFDLimit(t)
	defer restore()
	for i := 0; ; i++ {
		fill()
		if _, err := n.Put(t.Context(), []byte(fmt.Sprint("d", i)), []byte("v")); err != nil {
			break
		}
		if i > 100*every {
			t.Fatal("the replica kept going with snapshots failing")
		}
		time.Sleep(time.Millisecond)
	}
	<-n.Done()
	err := n.Err()
	if err == nil || !errors.Is(err, syscall.EMFILE) || !strings.Contains(err.Error(), "snapshots keep failing") {
		t.Fatalf("stopped with %v, want the failing snapshots and EMFILE", err)
	}
}
