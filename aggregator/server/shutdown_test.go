package server_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/wire"
)

// TestShutdownIsNotHeldByAgents stops a replica that an agent streams to,
// or streamed to until it stopped: the shutdown must not wait out its grace
// period for the agent's stream or connection and then close the server
// under them. The grace is shorter than the second an HTTP/2 server gives
// a client to hang up after GOAWAY: a connection the agent left open would
// be waited out, and noticed.
func TestShutdownIsNotHeldByAgents(t *testing.T) {
	for _, tc := range []struct {
		name           string
		stopAgentFirst bool
	}{
		{"agent streaming", false},
		{"agent stopped first", true}, // penny local's order
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncBuffer
			cfg := config(t.TempDir(), "127.0.0.1:0")
			cfg.ShutdownGrace = 500 * time.Millisecond
			cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
			s, err := server.Start(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: "node-1"})
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			sh, err := shipper.New(shipper.Config{URLs: []string{"http://" + s.Addr.String()}, Registerer: reg}, enc)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				_ = sh.Run(ctx)
			}()
			if err := sh.Submit(snapshot(time.Now(), 100, 1000, "/a")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the frame acknowledged", func() bool { return testutil.ToFloat64(acked(reg)) == 1 })

			if tc.stopAgentFirst {
				cancel()
				<-stopped
			}
			s.Stop()
			if strings.Contains(log.String(), "api server shutdown") {
				t.Fatalf("the shutdown waited for the agent:\n%s", log.String())
			}
		})
	}
}

// TestStopWaitsForTheJanitor holds the janitor after it saw the shutdown:
// Stop must not return before it does.
func TestStopWaitsForTheJanitor(t *testing.T) {
	blocked, release, waiting := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // also when the test fails
	server.SetTestHooks(t, func(ctx context.Context, run func(context.Context)) {
		run(ctx)
		close(blocked)
		<-release
	}, func() { close(waiting) })
	s, err := server.Start(context.Background(), config(t.TempDir(), "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.Stop()
	}()
	<-blocked // the janitor returned from Run and is held
	select {
	case <-stopped:
		t.Fatal("Stop returned while the janitor was still running")
	case <-waiting: // the shutdown waits for the goroutines
	}
	releaseOnce.Do(func() { close(release) })
	<-stopped
}
