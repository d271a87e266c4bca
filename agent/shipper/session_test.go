package shipper

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/wire"
)

// received is a frame as an aggregator stream got it.
type received struct {
	stream   int
	seq      uint64
	keyframe bool
}

// ackServer is an aggregator speaking the ack protocol over h2c: its first
// stream reads one frame and hangs up without acknowledging it; the next
// ones acknowledge every frame.
type ackServer struct {
	*httptest.Server
	streams atomic.Int32
	frames  chan received
}

func newAckServer(t *testing.T) *ackServer {
	t.Helper()
	a := &ackServer{frames: make(chan received, 64)}
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.Config.Protocols = new(http.Protocols)
	a.Config.Protocols.SetUnencryptedHTTP2(true)
	a.Start()
	t.Cleanup(a.Close)
	return a
}

func (a *ackServer) serve(w http.ResponseWriter, r *http.Request) {
	stream := int(a.streams.Add(1))
	if r.URL.Path != IngestPath || r.ProtoMajor != 2 {
		http.Error(w, "want HTTP/2 POST "+IngestPath, http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	rd, err := wire.NewReader(r.Body, wire.Limits{})
	if err != nil {
		return
	}
	for {
		h, err := rd.Next()
		if err != nil {
			return
		}
		if _, err := rd.Frame(); err != nil {
			return
		}
		a.frames <- received{stream: stream, seq: h.Seq, keyframe: h.Keyframe}
		if stream == 1 {
			return // the replica goes away before it acknowledges
		}
		b, err := (&wire.Ack{Incarnation: h.Incarnation, Seq: h.Seq, Applied: h.Seq, Status: wire.StatusOK}).AppendBinary(nil)
		if err != nil {
			panic(err)
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func (a *ackServer) next(t *testing.T) received {
	t.Helper()
	select {
	case f := <-a.frames:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("the aggregator got no frame")
		return received{}
	}
}

// waitAcked waits until no frame waits for an acknowledgement.
func waitAcked(t *testing.T, s *Shipper) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := s.Pending(); n == 0 {
			return
		}
		if time.Now().After(deadline) {
			n, _ := s.Pending()
			t.Fatalf("%d frames still wait for an acknowledgement", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestShipperOverHTTP2 runs a real Shipper against an h2c server that
// speaks the ack protocol: a frame not acknowledged when a replica goes
// away is resent on the next stream, and the next sample is a keyframe.
func TestShipperOverHTTP2(t *testing.T) {
	srv := newAckServer(t)
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{URLs: []string{srv.URL}, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond,
		KeyframeEvery: 1000}, enc)
	if err != nil {
		t.Fatal(err)
	}
	snap := func(rss int64) *wire.Snapshot {
		return &wire.Snapshot{Time: time.Unix(1700000000, 0), Interval: time.Second,
			Series: []wire.SeriesState{{Path: "/a", ID: 1, Values: wire.Values{Processes: 1, RSSBytes: rss}}}}
	}
	s.mu.Lock()
	s.sinceKey = 0
	s.mu.Unlock()
	if err := s.Submit(snap(1)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()

	if f := srv.next(t); f != (received{stream: 1, seq: 1, keyframe: true}) {
		t.Fatalf("first frame %+v", f)
	}
	if f := srv.next(t); f != (received{stream: 2, seq: 1, keyframe: true}) {
		t.Fatalf("after the first replica went away: %+v, want frame 1 resent", f)
	}
	waitAcked(t, s)
	if err := s.Submit(snap(2)); err != nil {
		t.Fatal(err)
	}
	if f := srv.next(t); f != (received{stream: 2, seq: 2, keyframe: true}) {
		t.Fatalf("next frame %+v, want a keyframe after the reconnect", f)
	}
	waitAcked(t, s)
	if err := s.Submit(snap(3)); err != nil {
		t.Fatal(err)
	}
	if f := srv.next(t); f != (received{stream: 2, seq: 3, keyframe: false}) {
		t.Fatalf("next frame %+v, want a delta", f)
	}
	waitAcked(t, s)

	for _, m := range []struct {
		name      string
		got, want float64
	}{
		{"resent frames", testutil.ToFloat64(s.metrics.resent.frames), 1},
		{"reconnects", testutil.ToFloat64(s.metrics.reconnects), 1},
		{"acked frames", testutil.ToFloat64(s.metrics.acked.frames), 3},
		{"connected", testutil.ToFloat64(s.metrics.connected), 1},
	} {
		if m.got != m.want {
			t.Errorf("%s metric %v, want %v", m.name, m.got, m.want)
		}
	}
}
