package probe_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/probetest"
)

// TestClosed: once the probes are closed, a snapshot and a wait for an RSS
// change fail with ErrClosed (the agent's loop may sample while it is
// being closed), and a wait in progress returns.
func TestClosed(t *testing.T) {
	p := probetest.Load(t, cgtest.Layout(t), probe.Config{SkipRequests: true})
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
