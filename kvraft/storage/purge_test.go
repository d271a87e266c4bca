package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
)

// TestPurgeSurvivesErrors makes purging fail as at the fd limit (EMFILE):
// every failure is reported and the loop keeps going, so old files are
// purged once the error is gone (etcd's PurgeFile stops for good at its
// first error).
func TestPurgeSurvivesErrors(t *testing.T) {
	dir := t.TempDir()
	var failing atomic.Bool
	failing.Store(true)
	var mu sync.Mutex
	errs := map[string]int{}
	s, _, err := Open(Config{Dir: dir, PurgeInterval: time.Millisecond, MaxSnapshotFiles: 2,
		OnBackgroundError: func(loop string, err error) {
			mu.Lock()
			errs[loop]++
			mu.Unlock()
		},
		readDir: func(d string) ([]string, error) {
			if failing.Load() {
				return nil, fmt.Errorf("open %s: %w", d, syscall.EMFILE)
			}
			return fileutil.ReadDir(d)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return errs["purge"]
	}
	for deadline := time.Now().Add(10 * time.Second); count() < 4; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d purge errors reported, want at least 4 (both loops, retried)", count())
		}
	}
	for i := range 6 {
		name := filepath.Join(dir, "snap", fmt.Sprintf("%016x-%016x.snap", 1, i+1))
		if err := os.WriteFile(name, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	failing.Store(false)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		left, err := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d snapshot files left after the errors stopped, want 2", len(left))
		}
	}
}
