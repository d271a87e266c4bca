package shipper

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/wire"
)

// fakeEncoder makes frames of size bytes that start with their seq.
type fakeEncoder struct {
	inc  uint64
	seq  uint64
	size int
	keys []bool // the keyframe argument of every Encode call
	err  error
}

func (e *fakeEncoder) Encode(_ *wire.Snapshot, keyframe bool) ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	e.seq++
	e.keys = append(e.keys, keyframe)
	b := make([]byte, max(e.size, 8))
	binary.BigEndian.PutUint64(b, e.seq)
	return b, nil
}

func (e *fakeEncoder) Seq() uint64         { return e.seq }
func (e *fakeEncoder) Incarnation() uint64 { return e.inc }

const testInc = 7

// newTest returns a shipper on a fake encoder of 100-byte frames whose
// buffer holds bufferBytes, with no periodic keyframes in sight.
func newTest(t *testing.T, bufferBytes int) (*Shipper, *fakeEncoder) {
	t.Helper()
	enc := &fakeEncoder{inc: testInc, size: 100}
	s, err := newShipper(Config{URLs: []string{"http://agg:1"}, BufferBytes: bufferBytes, KeyframeEvery: 1000}, enc)
	if err != nil {
		t.Fatal(err)
	}
	s.sinceKey = 0
	return s, enc
}

// submit queues one sample per letter of plan: K a keyframe, d a delta.
func submit(t *testing.T, s *Shipper, plan string) {
	t.Helper()
	for _, c := range plan {
		if c == 'K' {
			s.mu.Lock()
			s.forceKey = true
			s.mu.Unlock()
		}
		if err := s.Submit(&wire.Snapshot{}); err != nil {
			t.Fatal(err)
		}
	}
}

// buffered returns the seqs buffered and which of them are keyframes.
func buffered(s *Shipper) (all, keys []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, keys = []uint64{}, []uint64{}
	for _, f := range s.buf.frames {
		all = append(all, f.seq)
		if f.keyframe {
			keys = append(keys, f.seq)
		}
	}
	return all, keys
}

func TestHandleAck(t *testing.T) {
	ok := func(applied uint64) wire.Ack {
		return wire.Ack{Incarnation: testInc, Seq: applied, Applied: applied, Status: wire.StatusOK}
	}
	tests := []struct {
		name   string
		plan   string     // frames queued before the acks: K keyframe, d delta
		before []wire.Ack // handled first, each without error
		ack    wire.Ack
		// wantErr: "" for none, "resend" for errResend, else a substring.
		wantErr     string
		wantBuf     []uint64
		wantKeys    []uint64 // keyframes among wantBuf
		wantApplied uint64
		wantDropped float64
		wantAcked   float64
	}{
		{
			name: "ok acknowledges up to applied", plan: "Kdddd",
			ack:     ok(3),
			wantBuf: []uint64{4, 5}, wantKeys: []uint64{}, wantApplied: 3, wantAcked: 3,
		},
		{
			name: "ok older than what is acknowledged changes nothing", plan: "Kdddd",
			before: []wire.Ack{ok(3)}, ack: ok(2),
			wantBuf: []uint64{4, 5}, wantKeys: []uint64{}, wantApplied: 3, wantAcked: 3,
		},
		{
			name: "duplicate acknowledges like ok", plan: "Kdddd",
			ack:     wire.Ack{Incarnation: testInc, Seq: 2, Applied: 2, Status: wire.StatusDuplicate},
			wantBuf: []uint64{3, 4, 5}, wantKeys: []uint64{}, wantApplied: 2, wantAcked: 2,
		},
		{
			name: "gap with the next frame buffered resends from it", plan: "Kdddd",
			ack:     wire.Ack{Incarnation: testInc, Seq: 4, Applied: 2, Status: wire.StatusGap},
			wantErr: "resend", wantBuf: []uint64{3, 4, 5}, wantKeys: []uint64{}, wantApplied: 2, wantAcked: 2,
		},
		{
			name: "gap with the next frame gone restarts from the newest buffered keyframe", plan: "KdKdd",
			before: []wire.Ack{ok(1)}, ack: wire.Ack{Incarnation: testInc, Seq: 5, Status: wire.StatusGap},
			wantErr: "resend", wantBuf: []uint64{3, 4, 5}, wantKeys: []uint64{3}, wantApplied: 0, wantDropped: 1, wantAcked: 1,
		},
		{
			name: "gap with no keyframe buffered encodes a fresh one", plan: "Kddd",
			before: []wire.Ack{ok(1)}, ack: wire.Ack{Incarnation: testInc, Seq: 4, Status: wire.StatusGap},
			wantErr: "resend", wantBuf: []uint64{5}, wantKeys: []uint64{5}, wantApplied: 0, wantDropped: 3, wantAcked: 1,
		},
		{
			name: "need keyframe restarts from the newest buffered keyframe", plan: "KdKd",
			ack:     wire.Ack{Incarnation: testInc, Seq: 4, Status: wire.StatusNeedKeyframe},
			wantErr: "resend", wantBuf: []uint64{3, 4}, wantKeys: []uint64{3}, wantDropped: 2,
		},
		{
			name: "need keyframe with no keyframe buffered encodes one", plan: "Kdd",
			before: []wire.Ack{ok(1)}, ack: wire.Ack{Incarnation: testInc, Seq: 3, Status: wire.StatusNeedKeyframe},
			wantErr: "resend", wantBuf: []uint64{4}, wantKeys: []uint64{4}, wantDropped: 2, wantAcked: 1,
		},
		{
			name: "rejected drops every frame for a fresh keyframe", plan: "KdKd",
			ack:     wire.Ack{Incarnation: testInc, Seq: 4, Status: wire.StatusRejected, Reason: wire.ReasonCorrupt},
			wantErr: "resend", wantBuf: []uint64{5}, wantKeys: []uint64{5}, wantDropped: 4,
		},
		{
			name: "rejected after acknowledgements starts over from nothing applied", plan: "Kdd",
			before:  []wire.Ack{ok(2)},
			ack:     wire.Ack{Incarnation: testInc, Seq: 3, Applied: 2, Status: wire.StatusRejected, Reason: wire.ReasonInconsistent},
			wantErr: "resend", wantBuf: []uint64{4}, wantKeys: []uint64{4}, wantDropped: 1, wantAcked: 2,
		},
		{
			name: "overloaded keeps every frame for the next replica", plan: "Kdd",
			ack:     wire.Ack{Incarnation: testInc, Seq: 3, Status: wire.StatusRejected, Reason: wire.ReasonOverloaded},
			wantErr: "overloaded", wantBuf: []uint64{1, 2, 3}, wantKeys: []uint64{1},
		},
		{
			name: "unknown status ends the session and changes nothing", plan: "Kdd",
			ack:     wire.Ack{Incarnation: testInc, Seq: 3, Applied: 3, Status: wire.Status(42)},
			wantErr: "unknown ack status", wantBuf: []uint64{1, 2, 3}, wantKeys: []uint64{1},
		},
		{
			name: "another incarnation is ignored", plan: "Kdd",
			ack:     wire.Ack{Incarnation: testInc + 1, Seq: 3, Applied: 3, Status: wire.StatusNeedKeyframe},
			wantBuf: []uint64{1, 2, 3}, wantKeys: []uint64{1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTest(t, 1<<20)
			submit(t, s, tt.plan)
			for _, a := range tt.before {
				if err := s.handleAck(a); err != nil {
					t.Fatalf("ack %+v: %v", a, err)
				}
			}
			err := s.handleAck(tt.ack)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr == "resend" && !errors.Is(err, errResend):
				t.Errorf("error %v, want errResend", err)
			case tt.wantErr != "" && tt.wantErr != "resend" &&
				(err == nil || errors.Is(err, errResend) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one saying %q and no resend", err, tt.wantErr)
			}
			all, keys := buffered(s)
			if !slices.Equal(all, tt.wantBuf) || !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("buffered %v with keyframes %v, want %v with %v", all, keys, tt.wantBuf, tt.wantKeys)
			}
			if s.applied != tt.wantApplied {
				t.Errorf("applied %d, want %d", s.applied, tt.wantApplied)
			}
			if got := s.Dropped(); got != tt.wantDropped {
				t.Errorf("dropped %v, want %v", got, tt.wantDropped)
			}
			if got := testutil.ToFloat64(s.metrics.dropped.frames); got != tt.wantDropped {
				t.Errorf("dropped frames metric %v, want %v", got, tt.wantDropped)
			}
			if got := testutil.ToFloat64(s.metrics.acked.frames); got != tt.wantAcked {
				t.Errorf("acked frames metric %v, want %v", got, tt.wantAcked)
			}
			if got := testutil.ToFloat64(s.metrics.acks.WithLabelValues(tt.ack.Status.String())); got < 1 {
				t.Errorf("acks{status=%q} = %v, want it counted", tt.ack.Status, got)
			}
			frames, bytes := s.Pending()
			if frames != len(tt.wantBuf) || bytes != 100*len(tt.wantBuf) {
				t.Errorf("pending %d frames, %d bytes; want %d, %d", frames, bytes, len(tt.wantBuf), 100*len(tt.wantBuf))
			}
		})
	}
}

func TestSubmitKeyframes(t *testing.T) {
	tests := []struct {
		name   string
		every  int
		buffer int
		frames int
		setup  func(s *Shipper) // before the last frame
		want   []bool           // keyframe or not, per frame
	}{
		{"the first frame", 1000, 1 << 20, 3, nil, []bool{true, false, false}},
		{"every KeyframeEvery deltas", 2, 1 << 20, 6, nil, []bool{true, false, false, true, false, false}},
		{"after a reconnect", 1000, 1 << 20, 3, (*Shipper).reconnected, []bool{true, false, true}},
		{"after frames were dropped", 1000, 250, 4, nil, []bool{true, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTest(t, tt.buffer)
			s.cfg.KeyframeEvery = tt.every
			got := make([]bool, 0, tt.frames)
			for i := range tt.frames {
				if i == tt.frames-1 && tt.setup != nil {
					tt.setup(s)
				}
				submit(t, s, "d")
				got = append(got, s.buf.frames[len(s.buf.frames)-1].keyframe)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("keyframes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBufferFullDropsAndCounts(t *testing.T) {
	s, enc := newTest(t, 250) // two 100-byte frames
	submit(t, s, "Kdd")
	if all, _ := buffered(s); !slices.Equal(all, []uint64{2, 3}) {
		t.Fatalf("buffered %v, want [2 3]", all)
	}
	if s.Dropped() != 1 || testutil.ToFloat64(s.metrics.dropped.frames) != 1 || testutil.ToFloat64(s.metrics.dropped.bytes) != 100 {
		t.Errorf("dropped %v (metrics: %v frames, %v bytes), want 1 frame of 100 bytes", s.Dropped(),
			testutil.ToFloat64(s.metrics.dropped.frames), testutil.ToFloat64(s.metrics.dropped.bytes))
	}
	if got := testutil.ToFloat64(s.metrics.bufferBytes); got != 200 {
		t.Errorf("buffer bytes metric %v, want 200", got)
	}
	// Frame 3 chains from frame 1, which the aggregators may never see:
	// the next frame restarts the chain.
	submit(t, s, "d")
	if !enc.keys[3] {
		t.Errorf("the frame after a drop was encoded as a delta")
	}
	if _, keys := buffered(s); !slices.Equal(keys, []uint64{4}) {
		t.Errorf("keyframes buffered %v, want [4]", keys)
	}
}

func TestSubmitEncodeError(t *testing.T) {
	s, enc := newTest(t, 1<<20)
	submit(t, s, "Kd")
	enc.err = errors.New("boom")
	if err := s.Submit(&wire.Snapshot{}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Submit: %v, want the encoder's error", err)
	}
	if all, _ := buffered(s); !slices.Equal(all, []uint64{1, 2}) {
		t.Errorf("buffered %v after a failed encode, want [1 2]", all)
	}
	// Nothing left to restart the chain from: the keyframe a rejection asks
	// for cannot be made, and the buffer empties without a panic.
	if err := s.handleAck(wire.Ack{Incarnation: testInc, Seq: 2, Status: wire.StatusRejected, Reason: wire.ReasonCorrupt}); !errors.Is(err, errResend) {
		t.Fatalf("rejection: %v", err)
	}
	if all, _ := buffered(s); len(all) != 0 {
		t.Errorf("buffered %v, want nothing", all)
	}
}

// frameWriter hands every frame written to it to the test.
type frameWriter chan uint64

func (w frameWriter) Write(b []byte) (int, error) {
	w <- binary.BigEndian.Uint64(b)
	return len(b), nil
}

// next returns the seq of the next frame written.
func (w frameWriter) next(t *testing.T) uint64 {
	t.Helper()
	select {
	case seq := <-w:
		return seq
	case <-time.After(10 * time.Second):
		t.Fatal("no frame written")
		return 0
	}
}

// startSend runs send on a new writer until the returned stop is called.
func startSend(t *testing.T, s *Shipper) (w frameWriter, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w = make(frameWriter)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.send(ctx, w); !errors.Is(err, context.Canceled) {
			t.Errorf("send: %v", err)
		}
	})
	return w, func() { cancel(); wg.Wait() }
}

func TestSessionResendsUnacknowledgedInOrder(t *testing.T) {
	s, enc := newTest(t, 1<<20)
	submit(t, s, "Kdd")
	w, stop := startSend(t, s)
	for want := uint64(1); want <= 3; want++ {
		if got := w.next(t); got != want {
			t.Fatalf("first session wrote frame %d, want %d", got, want)
		}
	}
	if err := s.handleAck(wire.Ack{Incarnation: testInc, Seq: 1, Applied: 1, Status: wire.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if !s.waiting() {
		t.Error("frames 2 and 3 were sent and not acknowledged, yet nothing waits")
	}
	stop()

	s.reconnected()
	w, stop = startSend(t, s)
	defer stop()
	for want := uint64(2); want <= 3; want++ {
		if got := w.next(t); got != want {
			t.Fatalf("second session wrote frame %d, want %d", got, want)
		}
	}
	submit(t, s, "d")
	if got := w.next(t); got != 4 {
		t.Fatalf("second session wrote frame %d, want 4", got)
	}
	if !enc.keys[3] {
		t.Error("the first new frame after a reconnect was encoded as a delta")
	}
	if got := testutil.ToFloat64(s.metrics.resent.frames); got != 2 {
		t.Errorf("resent frames metric %v, want 2", got)
	}
	if got := testutil.ToFloat64(s.metrics.resent.bytes); got != 200 {
		t.Errorf("resent bytes metric %v, want 200", got)
	}
	if got := testutil.ToFloat64(s.metrics.sent.frames); got != 6 {
		t.Errorf("sent frames metric %v, want 6 (resends included)", got)
	}
}

func TestSendSkipsAcknowledged(t *testing.T) {
	s, _ := newTest(t, 1<<20)
	submit(t, s, "Kddd")
	if err := s.handleAck(wire.Ack{Incarnation: testInc, Seq: 2, Applied: 2, Status: wire.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if s.waiting() {
		t.Error("nothing was sent, yet frames wait for an acknowledgement")
	}
	w, stop := startSend(t, s)
	defer stop()
	for want := uint64(3); want <= 4; want++ {
		if got := w.next(t); got != want {
			t.Fatalf("wrote frame %d, want %d", got, want)
		}
	}
	if got := testutil.ToFloat64(s.metrics.resent.frames); got != 0 {
		t.Errorf("resent frames metric %v, want 0", got)
	}
}

func TestSendError(t *testing.T) {
	s, _ := newTest(t, 1<<20)
	submit(t, s, "K")
	pr, pw := io.Pipe()
	pr.CloseWithError(errors.New("connection reset"))
	if err := s.send(context.Background(), pw); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("send: %v, want the writer's error", err)
	}
}
