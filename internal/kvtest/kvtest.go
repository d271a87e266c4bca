package kvtest

import (
	"context"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
)

// Start starts a one-member store in a temporary directory, waits until it
// leads, and stops it when the test ends. Each tune changes the config
// first.
func Start(t testing.TB, tune ...func(*kvraft.Config)) *kvraft.Node {
	t.Helper()
	cfg := kvraft.Config{
		ID: 1, DataDir: t.TempDir(),
		InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}},
		NewTransport:   kvraft.SingleMember,
		TickInterval:   10 * time.Millisecond,
	}
	for _, f := range tune {
		f(&cfg)
	}
	n, err := kvraft.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for n.Status().Leader != 1 {
		select {
		case <-ctx.Done():
			t.Fatal("single member never became leader")
		case <-time.After(5 * time.Millisecond):
		}
	}
	return n
}
