package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// waitExit waits for r to exit and checks it failed.
func waitExit(t *testing.T, r *replica, what string) {
	t.Helper()
	select {
	case err := <-r.exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("%s: replica %d exited with %v, want a failure", what, r.id, err)
		}
		r.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: replica %d kept running", what, r.id)
	}
}

// TestAggregatorForceNewCluster loses two of three replicas for good and
// restarts the third with --force-new-cluster: it serves every write and
// takes new ones as a one-member cluster.
func TestAggregatorForceNewCluster(t *testing.T) {
	c := newProcCluster(t, 3)
	c.waitHealthy(c.replicas...)
	lead := c.leader()
	ctx := context.Background()
	for i := range 20 {
		if _, err := client(lead).Put(ctx, fmt.Appendf(nil, "k%02d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	survivor := c.replicas[1]
	c.waitCaughtUp(survivor, lead)
	for _, r := range c.replicas {
		c.kill(r)
	}
	for _, r := range []*replica{c.replicas[0], c.replicas[2]} {
		if err := os.RemoveAll(r.dir); err != nil {
			t.Fatal(err)
		}
	}
	args := survivor.args
	survivor.args = append(append([]string(nil), args...), "--force-new-cluster")
	c.start(survivor)
	c.waitHealthy(survivor)
	for i := range 20 {
		r, err := client(survivor).Get(ctx, fmt.Appendf(nil, "k%02d", i), kvraft.ReadOptions{Consistency: kvraft.Linearizable})
		if err != nil || !r.Found {
			t.Fatalf("k%02d after force new cluster: %+v, %v", i, r, err)
		}
	}
	if _, err := client(survivor).Put(ctx, []byte("after"), []byte("v")); err != nil {
		t.Fatalf("write after force new cluster: %v", err)
	}
	st, err := client(survivor).Cluster(ctx)
	if err != nil || len(st.Members) != 1 {
		t.Fatalf("cluster after force new cluster: %+v, %v", st, err)
	}
	logs, _ := os.ReadFile(survivor.logPath)
	if !bytes.Contains(logs, []byte("forcing a new one-member cluster")) {
		t.Fatal("no log line about forcing a new cluster")
	}
}

// TestAggregatorRefusesLostTail cuts a follower's WAL inside a record it
// had acknowledged: the restarted replica exits with a line that names the
// WAL file and what to do, and so does every later start; never a panic.
func TestAggregatorRefusesLostTail(t *testing.T) {
	c := newProcCluster(t, 3)
	c.waitHealthy(c.replicas...)
	lead := c.leader()
	if _, err := client(lead).Put(context.Background(), []byte("acked"), []byte("ACKED-MARKER-0123456789")); err != nil {
		t.Fatal(err)
	}
	var f *replica
	for _, r := range c.replicas {
		if r != lead {
			f = r
			break
		}
	}
	c.waitCaughtUp(f, lead)
	c.kill(f)
	names, _ := filepath.Glob(filepath.Join(f.dir, "wal", "*.wal"))
	if len(names) == 0 {
		t.Fatal("no wal file")
	}
	wal := names[len(names)-1]
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte("ACKED-MARKER"))
	if i < 0 {
		t.Fatal("acknowledged value not found in the wal")
	}
	if err := os.Truncate(wal, int64(i+4)); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		c.start(f)
		waitExit(t, f, fmt.Sprintf("start %d after the cut", attempt+1))
		f.cmd = nil
	}
	logs, _ := os.ReadFile(f.logPath)
	for _, want := range []string{"lost log entries it had acknowledged", wal, "replace this member", "REFUSED"} {
		if !bytes.Contains(logs, []byte(want)) {
			t.Fatalf("the logs do not say %q:\n%s", want, logs)
		}
	}
	if bytes.Contains(logs, []byte("panic")) {
		t.Fatalf("the replica panicked:\n%s", logs)
	}
	if _, err := client(lead).Put(context.Background(), []byte("still"), []byte("serving")); err != nil {
		t.Fatalf("the others stopped serving: %v", err)
	}
}

// TestAggregatorQuota fills a replica's store to --quota-bytes over HTTP:
// 507 with a JSON error that says what to do; deletes still work.
func TestAggregatorQuota(t *testing.T) {
	c := newProcCluster(t, 1, "--quota-bytes", "65536")
	r := c.replicas[0]
	c.waitHealthy(r)
	ctx := context.Background()
	value := []byte(strings.Repeat("v", 1000))
	var err error
	for i := range 100 {
		if _, err = client(r).Put(ctx, fmt.Appendf(nil, "k%03d", i), value); err != nil {
			break
		}
	}
	var he *kvhttp.Error
	if !errors.As(err, &he) || he.Status != http.StatusInsufficientStorage || !strings.Contains(he.Message, "store quota of 65536 bytes reached") {
		t.Fatalf("put past the quota: %v, want 507 and the quota's message", err)
	}
	if _, err := client(r).Delete(ctx, []byte("k000")); err != nil {
		t.Fatalf("delete at the quota: %v", err)
	}
	st, err := client(r).Cluster(ctx)
	if err != nil || st.QuotaBytes != 65536 || st.StoreBytes > 65536 {
		t.Fatalf("cluster status: %+v, %v", st, err)
	}
}
