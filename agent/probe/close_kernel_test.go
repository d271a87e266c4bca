package probe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/internal/cgtest"
)

// TestClosed: once the probes are closed, a snapshot and a wait for an RSS
// change fail with ErrClosed (the agent's loop may sample while it is
// being closed), and a wait in progress returns.
func TestClosed(t *testing.T) {
	cgtest.RequireRoot(t)
	l, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	p, err := probe.Load(context.Background(), probe.Config{CgroupV2: l.V2, SkipRequests: true})
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := p.RSSChange()
		waited <- err
	}()
	if _, err := p.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Snapshot(); !errors.Is(err, probe.ErrClosed) {
		t.Errorf("Snapshot after Close: %v, want ErrClosed", err)
	}
	select {
	case err := <-waited:
		if !errors.Is(err, probe.ErrClosed) {
			t.Errorf("RSSChange across Close: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("RSSChange still waiting after Close")
	}
}
