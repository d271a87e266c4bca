package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

const agentA = "node-a"

// submission is one transaction a stream submitted, and where its result
// goes.
type submission struct {
	txn  kvraft.Txn
	done chan result
}

// fakeCommit records what streams submit; the test answers.
type fakeCommit struct {
	subs chan submission
	err  error
}

func (f *fakeCommit) submit(_ context.Context, txn kvraft.Txn) (<-chan result, error) {
	if f.err != nil {
		return nil, f.err
	}
	s := submission{txn: txn, done: make(chan result, 1)}
	f.subs <- s
	return s.done, nil
}

// next returns the next submission.
func (f *fakeCommit) next(t *testing.T) submission {
	t.Helper()
	select {
	case s := <-f.subs:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no transaction submitted")
		return submission{}
	}
}

// none checks that nothing was submitted.
func (f *fakeCommit) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-f.subs:
		t.Fatalf("unexpected transaction of %d ops", len(s.txn.Then))
	default:
	}
}

// fakeAcks decodes the acks a stream writes.
type fakeAcks chan wire.Ack

func (f fakeAcks) writeAck(b []byte) error {
	a, err := wire.DecodeAck(b)
	if err != nil {
		return err
	}
	f <- a
	return nil
}

func (f fakeAcks) next(t *testing.T) wire.Ack {
	t.Helper()
	select {
	case a := <-f:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no ack")
		return wire.Ack{}
	}
}

// now returns the ack written already.
func (f fakeAcks) now(t *testing.T) wire.Ack {
	t.Helper()
	select {
	case a := <-f:
		return a
	default:
		t.Fatal("no ack")
		return wire.Ack{}
	}
}

func (f fakeAcks) none(t *testing.T) {
	t.Helper()
	select {
	case a := <-f:
		t.Fatalf("unexpected ack %+v", a)
	default:
	}
}

var testNow = time.Unix(1700000100, 0)

// testIngest is an ingest with no store, for streams driven with fakes.
func testIngest(t *testing.T, tune func(*Config)) *Ingest {
	t.Helper()
	cfg := Config{Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)}
	if tune != nil {
		tune(&cfg)
	}
	cfg.Complete()
	m := newMetrics(nil)
	return &Ingest{cfg: cfg, log: cfg.Logger, m: m, bud: newBudget(cfg.MaxInflightBytes, m), closing: make(chan struct{})}
}

// newAgent loads a node the store holds nothing of.
func newAgent(_ context.Context, node string) (*model.NodeState, *wire.State, error) {
	ws, err := wire.NewState(wire.Limits{})
	return &model.NodeState{Node: node, Series: map[string]*model.Stored{}}, ws, err
}

// storedNode is what the store holds of a node: its keys, as the
// committed transactions left them.
type storedNode struct {
	node string
	kv   map[string][]byte
}

func (sn *storedNode) apply(txn kvraft.Txn) {
	for _, op := range txn.Then {
		if op.Type == kvraft.OpDelete {
			delete(sn.kv, string(op.Key))
		} else {
			sn.kv[string(op.Key)] = op.Value
		}
	}
}

// storedAgent loads sn, as a new stream after a reconnect would: a state
// of its own every time (a stream plans its state in place).
func storedAgent(sn *storedNode) func(context.Context, string) (*model.NodeState, *wire.State, error) {
	return func(_ context.Context, node string) (*model.NodeState, *wire.State, error) {
		if node != sn.node {
			return newAgent(context.Background(), node)
		}
		var items []kvraft.KV
		for _, k := range slices.Sorted(maps.Keys(sn.kv)) {
			items = append(items, kvraft.KV{Key: []byte(k), Value: sn.kv[k]})
		}
		ns, err := model.LoadNode(node, items)
		if err != nil {
			return nil, nil, err
		}
		ws, err := wireState(wire.Limits{}, ns)
		return ns, ws, err
	}
}

// testStream is a stream on fakes.
func testStream(in *Ingest, load func(context.Context, string) (*model.NodeState, *wire.State, error)) (*stream, *fakeCommit, fakeAcks) {
	c := &fakeCommit{subs: make(chan submission, 64)}
	acks := make(fakeAcks, 64)
	return &stream{in: in, commit: c, acks: acks, load: load, remote: "test"}, c, acks
}

// frames encodes n samples of agent's incarnation inc: a keyframe, then
// deltas in which both series grow.
func frames(t *testing.T, agent string, inc uint64, n int) []decoded {
	t.Helper()
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: agent, Incarnation: inc})
	if err != nil {
		t.Fatal(err)
	}
	var out []decoded
	for i := range n {
		snap := &wire.Snapshot{Time: testNow.Add(time.Duration(i-n) * time.Second), Interval: time.Second}
		for j, p := range []string{"/a", "/b"} {
			snap.Series = append(snap.Series, wire.SeriesState{Path: p, ID: uint64(j + 1), Meta: map[string]string{"pod": p},
				Values: wire.Values{Processes: 1, RSSBytes: int64(1000 * (i + 1)), RxBytes: uint64(100 * i)}})
		}
		b, err := enc.Encode(snap, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decode(t, b))
	}
	return out
}

func decode(t *testing.T, b []byte) decoded {
	t.Helper()
	rd, err := wire.NewReader(bytes.NewReader(b), wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	d := decoded{h: h}
	d.f, d.err = rd.Frame()
	return d
}

// committedState returns what the store holds once fs committed, in order.
func committedState(t *testing.T, fs []decoded) *storedNode {
	t.Helper()
	s, c, acks := testStream(testIngest(t, nil), newAgent)
	sn := &storedNode{node: fs[0].h.AgentID, kv: map[string][]byte{}}
	ctx := context.Background()
	for i := range fs {
		if err := s.frame(ctx, &fs[i]); err != nil {
			t.Fatal(err)
		}
		sub := c.next(t)
		sn.apply(sub.txn)
		sub.done <- result{succeeded: true}
		if err := s.settle(<-s.done); err != nil {
			t.Fatal(err)
		}
		if a := acks.next(t); a.Status != wire.StatusOK {
			t.Fatalf("frame %d: ack %+v", fs[i].h.Seq, a)
		}
	}
	return sn
}

func TestStreamFrame(t *testing.T) {
	inc1 := frames(t, agentA, 1, 6)
	inc2 := frames(t, agentA, 2, 2)
	other := frames(t, "node-b", 1, 1)
	bad := frames(t, "Node_B", 1, 1)
	corrupt, tooLarge := inc1[3], inc1[3]
	corrupt.f, corrupt.err = nil, fmt.Errorf("%w: bad body", wire.ErrCorrupt)
	tooLarge.f, tooLarge.err = nil, fmt.Errorf("%w: body", wire.ErrTooLarge)
	ack := func(inc, seq, applied uint64, st wire.Status, r wire.Reason) *wire.Ack {
		return &wire.Ack{Incarnation: inc, Seq: seq, Applied: applied, Status: st, Reason: r}
	}
	tests := []struct {
		name      string
		stored    int       // frames of inc1 the store holds
		pre       []decoded // handled first, each planned
		frame     decoded
		wantAck   *wire.Ack // nil: none (the frame is planned)
		wantErr   error     // from frame, matched with errors.Is
		wantTxns  int       // submitted in all
		wantAgent string    // the stream is bound to
	}{
		{name: "the first frame binds the agent and is submitted", frame: inc1[0], wantTxns: 1, wantAgent: agentA},
		{name: "a first frame after a reconnect starts from the store", stored: 3, frame: inc1[3], wantTxns: 1, wantAgent: agentA},
		{name: "duplicate", stored: 3, frame: inc1[1],
			wantAck: ack(1, 2, 3, wire.StatusDuplicate, wire.ReasonNone), wantAgent: agentA},
		{name: "duplicate keyframe", stored: 3, frame: inc1[0],
			wantAck: ack(1, 1, 3, wire.StatusDuplicate, wire.ReasonNone), wantAgent: agentA},
		{name: "gap", stored: 3, frame: inc1[4],
			wantAck: ack(1, 5, 3, wire.StatusGap, wire.ReasonNone), wantAgent: agentA},
		{name: "need keyframe: a delta of a new agent", frame: inc1[1],
			wantAck: ack(1, 2, 0, wire.StatusNeedKeyframe, wire.ReasonNone), wantAgent: agentA},
		{name: "need keyframe: a delta of a new incarnation", stored: 3, frame: inc2[1],
			wantAck: ack(2, 2, 0, wire.StatusNeedKeyframe, wire.ReasonNone), wantAgent: agentA},
		{name: "a keyframe of a new incarnation", stored: 3, frame: inc2[0], wantTxns: 1, wantAgent: agentA},
		{name: "corrupt body", stored: 3, frame: corrupt,
			wantAck: ack(1, 4, 3, wire.StatusRejected, wire.ReasonCorrupt), wantAgent: agentA},
		{name: "body over the limits", stored: 3, frame: tooLarge,
			wantAck: ack(1, 4, 3, wire.StatusRejected, wire.ReasonTooLarge), wantAgent: agentA},
		{name: "another agent on a bound stream", stored: 3, pre: inc1[3:4], frame: other[0],
			wantAck: ack(1, 1, 0, wire.StatusRejected, wire.ReasonAgentMismatch), wantErr: wire.ErrAgentMismatch,
			wantTxns: 1, wantAgent: agentA},
		{name: "an agent id that is no node name", frame: bad[0],
			wantAck: ack(1, 1, 0, wire.StatusRejected, wire.ReasonAgentMismatch), wantErr: model.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			load := newAgent
			if tt.stored > 0 {
				load = storedAgent(committedState(t, inc1[:tt.stored]))
			}
			s, c, acks := testStream(testIngest(t, nil), load)
			ctx := context.Background()
			for i := range tt.pre {
				if err := s.frame(ctx, &tt.pre[i]); err != nil {
					t.Fatal(err)
				}
			}
			err := s.frame(ctx, &tt.frame)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("frame: %v, want %v", err, tt.wantErr)
			}
			if tt.wantAck == nil {
				acks.none(t)
			} else if a := acks.next(t); a != *tt.wantAck {
				t.Errorf("ack %+v, want %+v", a, *tt.wantAck)
			}
			for range tt.wantTxns {
				c.next(t)
			}
			c.none(t)
			if s.agent != tt.wantAgent {
				t.Errorf("bound to %q, want %q", s.agent, tt.wantAgent)
			}
		})
	}
}

// agentSide feeds a running stream the frames its agent sends.
type agentSide struct {
	frames  chan decoded // unbuffered: a send returns once the stream took the frame
	readErr chan error
}

// run runs s until it ends.
func run(t *testing.T, s *stream) (*agentSide, <-chan error) {
	t.Helper()
	a := &agentSide{frames: make(chan decoded), readErr: make(chan error, 1)}
	done := make(chan error, 1)
	go func() { done <- s.run(context.Background(), a.frames, a.readErr) }()
	return a, done
}

// send hands d to the stream and returns once the stream took it: the
// stream has handled every frame before.
func (a *agentSide) send(t *testing.T, d decoded) {
	t.Helper()
	select {
	case a.frames <- d:
	case <-time.After(10 * time.Second):
		t.Fatalf("the stream did not read frame %d", d.h.Seq)
	}
}

// close ends the stream as the agent closing its side does.
func (a *agentSide) close() {
	a.readErr <- io.EOF
	close(a.frames)
}

func wait(t *testing.T, end <-chan error) error {
	t.Helper()
	select {
	case err := <-end:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
		return nil
	}
}

// agentRecord returns the agent record a transaction writes.
func agentRecord(t *testing.T, txn kvraft.Txn) *model.Agent {
	t.Helper()
	for _, op := range txn.Then {
		if bytes.Equal(op.Key, model.AgentKey(agentA)) {
			a, err := model.DecodeAgent(op.Value)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
	}
	t.Fatal("the transaction does not write the agent record")
	return nil
}

func TestStreamMergesFramesWhileOneIsInFlight(t *testing.T) {
	fs := frames(t, agentA, 1, 4)
	s, c, acks := testStream(testIngest(t, nil), newAgent)
	ag, end := run(t, s)

	ag.send(t, fs[0])
	first := c.next(t)
	if len(first.txn.If) != 1 || first.txn.If[0].Target != kvraft.TargetExists {
		t.Errorf("a new node's transaction is not conditioned on its record being absent: %+v", first.txn.If)
	}
	ag.send(t, fs[1])
	ag.send(t, fs[2]) // taken: frame 2 is planned, and frame 3 is before anything else
	c.none(t)
	acks.none(t)

	first.done <- result{succeeded: true, index: 7}
	if a := acks.next(t); a != (wire.Ack{Incarnation: 1, Seq: 1, Applied: 1, Status: wire.StatusOK}) {
		t.Errorf("ack of the first transaction %+v", a)
	}
	second := c.next(t)
	if got := agentRecord(t, second.txn).Seq; got != 3 {
		t.Errorf("second transaction ends at frame %d, want 3 (frames 2 and 3 merged)", got)
	}
	// Its condition is the record the first one writes (last: a single
	// frame's plan writes it last).
	if want := first.txn.Then[len(first.txn.Then)-1].Value; len(second.txn.If) != 1 ||
		!bytes.Equal(second.txn.If[0].Value, want) {
		t.Errorf("second transaction's condition %+v, want the record the first writes", second.txn.If)
	}
	keys := map[string]bool{}
	for _, op := range second.txn.Then {
		if keys[string(op.Key)] {
			t.Errorf("merged transaction writes %q twice", op.Key)
		}
		keys[string(op.Key)] = true
	}

	ag.send(t, fs[3])
	second.done <- result{succeeded: true, index: 8}
	if a := acks.next(t); a != (wire.Ack{Incarnation: 1, Seq: 3, Applied: 3, Status: wire.StatusOK}) {
		t.Errorf("ack of the merged transaction %+v", a)
	}
	third := c.next(t)
	third.done <- result{succeeded: true, index: 9}
	if a := acks.next(t); a.Applied != 4 {
		t.Errorf("ack of the third transaction %+v", a)
	}
	ag.close()
	if err := wait(t, end); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if got := testutil.ToFloat64(s.in.m.applied); got != 4 {
		t.Errorf("applied frames metric %v, want 4", got)
	}
}

func TestStreamBackpressure(t *testing.T) {
	fs := frames(t, agentA, 1, 4)
	s, c, acks := testStream(testIngest(t, func(c *Config) { c.MaxFramesPerTxn = 2 }), newAgent)
	ag, end := run(t, s)

	ag.send(t, fs[0])
	first := c.next(t)
	ag.send(t, fs[1])
	ag.send(t, fs[2])
	// The next transaction is full: the stream reads no more until the
	// one in flight settles.
	sent := make(chan struct{})
	go func() {
		ag.frames <- fs[3]
		close(sent)
	}()
	// Whether the test passes never depends on this wait; a stream that
	// read on would be caught in it, and by the second transaction's frames.
	select {
	case <-sent:
		t.Fatal("the stream read a frame while its next transaction was full")
	case <-time.After(20 * time.Millisecond):
	}
	first.done <- result{succeeded: true}
	if a := acks.next(t); a.Applied != 1 {
		t.Errorf("first ack %+v", a)
	}
	second := c.next(t)
	if got := agentRecord(t, second.txn).Seq; got != 3 {
		t.Errorf("second transaction ends at frame %d, want 3: no more than MaxFramesPerTxn frames", got)
	}
	<-sent
	second.done <- result{succeeded: true}
	if a := acks.next(t); a.Applied != 3 {
		t.Errorf("second ack %+v", a)
	}
	third := c.next(t)
	if got := agentRecord(t, third.txn).Seq; got != 4 {
		t.Errorf("third transaction ends at frame %d, want 4", got)
	}
	third.done <- result{succeeded: true}
	acks.next(t)
	ag.close()
	if err := wait(t, end); err != nil {
		t.Fatal(err)
	}
}

func TestStreamFull(t *testing.T) {
	in := testIngest(t, func(c *Config) { c.MaxFramesPerTxn = 2 })
	tests := []struct {
		name     string
		building *txn
		want     bool
	}{
		{"nothing building", nil, false},
		{"room for a frame", &txn{frames: make([]wire.Header, 1)}, false},
		{"MaxFramesPerTxn frames", &txn{frames: make([]wire.Header, 2)}, true},
	}
	for _, tt := range tests {
		s := &stream{in: in, building: tt.building}
		if got := s.full(); got != tt.want {
			t.Errorf("%s: full() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestStreamSettle(t *testing.T) {
	inc1 := frames(t, agentA, 1, 5)
	stored := committedState(t, inc1[:3])
	boom := errors.New("proposal lost")
	tests := []struct {
		name        string
		load        func(context.Context, string) (*model.NodeState, *wire.State, error)
		frames      []decoded // the first is in flight, the others wait
		res         result
		wantAck     wire.Ack
		wantErr     error
		wantApplied uint64 // committed afterwards
	}{
		{name: "success acknowledges the last frame applied", load: storedAgent(stored), frames: inc1[3:4],
			res:     result{succeeded: true},
			wantAck: wire.Ack{Incarnation: 1, Seq: 4, Applied: 4, Status: wire.StatusOK}, wantApplied: 4},
		{name: "conflict says what is durable", load: storedAgent(stored), frames: inc1[3:5],
			res:     result{succeeded: false},
			wantAck: wire.Ack{Incarnation: 1, Seq: 4, Applied: 3, Status: wire.StatusGap}, wantErr: errConflict, wantApplied: 3},
		{name: "conflict of a new agent asks for a keyframe", load: newAgent, frames: inc1[0:1],
			res:     result{succeeded: false},
			wantAck: wire.Ack{Incarnation: 1, Seq: 1, Status: wire.StatusNeedKeyframe}, wantErr: errConflict},
		{name: "proposal error says what is durable", load: storedAgent(stored), frames: inc1[3:4],
			res:     result{err: boom},
			wantAck: wire.Ack{Incarnation: 1, Seq: 4, Applied: 3, Status: wire.StatusGap}, wantErr: boom, wantApplied: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, acks := testStream(testIngest(t, nil), tt.load)
			ctx := context.Background()
			for i := range tt.frames {
				if err := s.frame(ctx, &tt.frames[i]); err != nil {
					t.Fatal(err)
				}
			}
			c.next(t).done <- tt.res
			err := s.settle(<-s.done)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("settle: %v, want %v", err, tt.wantErr)
			}
			if a := acks.next(t); a != tt.wantAck {
				t.Errorf("ack %+v, want %+v", a, tt.wantAck)
			}
			acks.none(t)
			if s.committed.seq != tt.wantApplied {
				t.Errorf("committed seq %d, want %d", s.committed.seq, tt.wantApplied)
			}
			wantConflicts := 0.0
			if tt.wantErr != nil {
				wantConflicts = 1
			}
			if got := testutil.ToFloat64(s.in.m.conflicts); got != wantConflicts {
				t.Errorf("conflicts metric %v, want %v", got, wantConflicts)
			}
		})
	}
}

func TestStreamFinishWaitsForInFlight(t *testing.T) {
	fs := frames(t, agentA, 1, 2)
	for _, how := range []string{"the agent closes its side", "the ingest closes its streams"} {
		t.Run(how, func(t *testing.T) {
			ing := testIngest(t, nil)
			s, c, acks := testStream(ing, newAgent)
			ag, end := run(t, s)
			ag.send(t, fs[0])
			first := c.next(t)
			ag.send(t, fs[1])
			if how == "the agent closes its side" {
				ag.close()
			} else {
				ing.CloseStreams()
			}
			first.done <- result{succeeded: true}
			second := c.next(t) // frame 2 was waiting: it is submitted too
			second.done <- result{succeeded: true}
			if err := wait(t, end); err != nil {
				t.Fatalf("stream: %v", err)
			}
			var got []uint64
			for range 2 {
				got = append(got, acks.next(t).Applied)
			}
			if !slices.Equal(got, []uint64{1, 2}) {
				t.Errorf("acks applied %v, want [1 2]: every frame in flight acknowledged before the end", got)
			}
			if how != "the agent closes its side" {
				ag.close()
			}
		})
	}
}

func TestStreamEnds(t *testing.T) {
	fs := frames(t, agentA, 1, 1)
	t.Run("read error", func(t *testing.T) {
		s, _, _ := testStream(testIngest(t, nil), newAgent)
		ch, readErr := make(chan decoded), make(chan error, 1)
		readErr <- fmt.Errorf("%w: frame of 5 GB", wire.ErrTooLarge)
		close(ch)
		if err := s.run(context.Background(), ch, readErr); !errors.Is(err, wire.ErrTooLarge) {
			t.Errorf("run: %v, want the read error", err)
		}
		if got := testutil.ToFloat64(s.in.m.rejected.WithLabelValues("too_large")); got != 1 {
			t.Errorf("rejected{too_large} = %v, want 1", got)
		}
	})
	t.Run("context done", func(t *testing.T) {
		s, _, _ := testStream(testIngest(t, nil), newAgent)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.run(ctx, make(chan decoded), make(chan error)); !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v, want context.Canceled", err)
		}
	})
	t.Run("submit error", func(t *testing.T) {
		s, c, _ := testStream(testIngest(t, nil), newAgent)
		c.err = ErrStopped
		if err := s.frame(context.Background(), &fs[0]); !errors.Is(err, ErrStopped) {
			t.Errorf("frame: %v, want ErrStopped", err)
		}
	})
}

// keyframe encodes a keyframe of n series under prefix, with metadata.
func keyframe(t *testing.T, enc *wire.Encoder, prefix string, n int) decoded {
	t.Helper()
	snap := &wire.Snapshot{Time: testNow, Interval: time.Second}
	for i := range n {
		p := fmt.Sprintf("%s/c%d", prefix, i)
		snap.Series = append(snap.Series, wire.SeriesState{Path: p, ID: uint64(len(prefix)<<32 + i + 1),
			Meta: map[string]string{"pod": p}, Values: wire.Values{Processes: 1, RSSBytes: int64(i)}})
	}
	b, err := enc.Encode(snap, true)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, b)
}

// TestStreamKeepsMergedTxnWithinLimits sends keyframes that each replace
// every series of the node while one transaction is in flight: merging
// two of them would break kvraft's limit on one transaction, so each is a
// transaction of its own, in order.
func TestStreamKeepsMergedTxnWithinLimits(t *testing.T) {
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: agentA, Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	fs := []decoded{
		keyframe(t, enc, "/a", model.MaxSeriesPerNode),
		keyframe(t, enc, "/b", model.MaxSeriesPerNode),
		keyframe(t, enc, "/c", model.MaxSeriesPerNode),
	}
	s, c, acks := testStream(testIngest(t, nil), newAgent)
	ctx := context.Background()
	for i := range fs {
		if err := s.frame(ctx, &fs[i]); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
	}
	if !s.full() {
		t.Error("the stream would read on while a planned frame waits for a transaction of its own")
	}
	for seq := uint64(1); seq <= 3; seq++ {
		sub := c.next(t)
		c.none(t)
		if n := len(sub.txn.If) + len(sub.txn.Then); n > kvraft.MaxTxnOps {
			t.Errorf("transaction %d: %d compares and ops, kvraft takes %d", seq, n, kvraft.MaxTxnOps)
		}
		if got := agentRecord(t, sub.txn).Seq; got != seq {
			t.Errorf("transaction %d ends at frame %d", seq, got)
		}
		sub.done <- result{succeeded: true}
		if err := s.settle(<-s.done); err != nil {
			t.Fatal(err)
		}
		if a := acks.now(t); a.Applied != seq {
			t.Errorf("ack %+v, want frame %d applied", a, seq)
		}
		if err := s.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c.none(t)
	if s.full() {
		t.Error("the stream still does not read")
	}
}

// TestStreamRejectsTxnOverLimits plans a frame into a transaction kvraft
// would refuse (a key over its limit): the committer refuses it when it is
// submitted, and the stream rejects the frame and ends.
func TestStreamRejectsTxnOverLimits(t *testing.T) {
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: agentA, Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("x", wire.DefaultMaxStringLen-1)
	b, err := enc.Encode(&wire.Snapshot{Time: testNow, Interval: time.Second,
		Series: []wire.SeriesState{{Path: long, ID: 1, Values: wire.Values{Processes: 1}}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, b)
	in := testIngest(t, nil)
	s, _, acks := testStream(in, newAgent)
	s.commit = newCommitter(&in.cfg, in.m) // checks at submit, no store needed
	if err := s.frame(context.Background(), &d); !errors.Is(err, errTxnLimits) {
		t.Errorf("frame: %v, want errTxnLimits", err)
	}
	want := wire.Ack{Incarnation: 1, Seq: 1, Status: wire.StatusRejected, Reason: wire.ReasonTooLarge}
	if a := acks.now(t); a != want {
		t.Errorf("ack %+v, want %+v", a, want)
	}
	if got := testutil.ToFloat64(in.m.rejected.WithLabelValues("too_large")); got != 1 {
		t.Errorf("rejected{too_large} = %v, want 1", got)
	}
}
