package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

// submitter takes a stream's transactions: the committer, or a fake in
// tests.
type submitter interface {
	// submit queues txn and returns the channel its result arrives on.
	submit(ctx context.Context, txn kvraft.Txn) (<-chan result, error)
}

// ackWriter sends acknowledgements down a stream: the HTTP response, or a
// fake in tests.
type ackWriter interface {
	writeAck(b []byte) error
}

// httpAcks writes acknowledgements into an HTTP response, each flushed at
// once.
type httpAcks struct {
	w  io.Writer
	rc *http.ResponseController
}

func (h httpAcks) writeAck(b []byte) error {
	if _, err := h.w.Write(b); err != nil {
		return fmt.Errorf("write ack: %w", err)
	}
	if err := h.rc.Flush(); err != nil {
		return fmt.Errorf("flush ack: %w", err)
	}
	return nil
}

// stream is one agent's connection.
type stream struct {
	in     *Ingest
	commit submitter
	acks   ackWriter
	// load reads what the store holds for an agent (Ingest.load).
	load   func(ctx context.Context, node string) (*model.NodeState, *wire.State, error)
	remote string
	agent  string

	// What the store holds for the agent, as far as this stream knows:
	// committed is durable; ws and ns run ahead by the frames planned but
	// not committed yet.
	committed committed
	ws        *wire.State
	ns        *model.NodeState

	building *txn // frames planned on top of the transaction in flight
	// after holds a frame planned on top of building that did not fit in
	// it: the stream reads no more until building is submitted.
	after    *txn
	inflight *txn // submitted, waiting for its result
	done     <-chan result
	// held is the frame bytes this stream holds against the replica's
	// in-flight budget: those of its frames not committed or refused yet.
	held int64
}

type committed struct {
	inc, seq uint64
}

// txn merges the plans of consecutive frames of one agent.
type txn struct {
	expect []byte // the agent record before the first frame
	// ops are the writes, one per key, in the order their keys were first
	// written; a later frame's write of a key replaces the earlier one in
	// place. index finds a key's write; it is built only once a second
	// frame merges in (most transactions carry one frame, whose plan has
	// one write per key).
	ops    []model.Op
	index  map[string]int
	frames []wire.Header
	last   committed
	bytes  int64 // of its frames, held against the in-flight budget
}

type decoded struct {
	h     wire.Header
	f     *wire.Frame
	err   error // from decoding the body: this frame only
	bytes int64 // the frame's size, held against the in-flight budget
}

// serve reads the frames of body until the stream ends. deadline sets the
// body's read deadline (nil: none).
func (s *stream) serve(ctx context.Context, body io.Reader, deadline func(time.Time) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mb := &meteredBody{r: body, ctx: ctx, b: s.in.bud, wait: s.in.cfg.InflightWait, idle: s.in.cfg.IdleTimeout,
		timeout: s.in.cfg.FrameTimeout, deadline: deadline}
	rd, err := wire.NewReader(mb, s.in.cfg.Limits)
	if err != nil {
		return err
	}
	frames := make(chan decoded)
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	// The reader decodes ahead while the stream waits for a commit. It
	// gives up what it holds (a partial frame, a frame not handed over)
	// when it returns; the stream gives up the rest when run returns.
	go func() {
		defer close(readerDone)
		defer close(frames)
		for {
			mb.arm()
			h, err := rd.Next()
			if err != nil {
				s.in.bud.release(mb.take())
				readErr <- err
				return
			}
			d := decoded{h: h}
			d.f, d.err = rd.Frame()
			d.bytes = mb.take()
			mb.disarm()
			select {
			case frames <- d:
			case <-ctx.Done():
				s.in.bud.release(d.bytes)
				return
			}
		}
	}()
	defer func() {
		// The body is read by the reader only while the handler runs.
		cancel()
		mb.stop()
		<-readerDone
		s.drop(s.held)
	}()
	return s.run(ctx, frames, readErr)
}

// drop gives n bytes of the stream's frames back to the in-flight budget.
func (s *stream) drop(n int64) {
	s.held -= n
	s.in.bud.release(n)
}

// run handles the frames decoded from the stream, the results of its
// transactions and the ingest closing, until the stream ends. frames is
// closed when the stream ends, and its reason is then on readErr.
func (s *stream) run(ctx context.Context, frames <-chan decoded, readErr <-chan error) error {
	for {
		// Stop reading while the next transaction is full: the agent's
		// frames wait in its buffer and in flow control.
		next := frames
		if s.full() {
			next = nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.in.closing:
			return s.finish(ctx)
		case d, ok := <-next:
			if !ok {
				err := <-readErr
				if errors.Is(err, io.EOF) {
					return s.finish(ctx)
				}
				s.in.m.rejected.WithLabelValues(rejectReason(err)).Inc()
				if reason := closeReason(err); reason != "" {
					s.in.m.closed.WithLabelValues(reason).Inc()
				}
				return fmt.Errorf("read frame: %w", err)
			}
			if err := s.frame(ctx, &d); err != nil {
				return err
			}
		case res := <-s.done:
			if err := s.settle(res); err != nil {
				return err
			}
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// full reports whether the transactions being built take no more frames,
// or the stream holds as many as it may.
func (s *stream) full() bool {
	held := 0
	for _, t := range []*txn{s.building, s.after, s.inflight} {
		if t != nil {
			held += len(t.frames)
		}
	}
	return s.after != nil || s.building != nil && len(s.building.frames) >= s.in.cfg.MaxFramesPerTxn ||
		held >= s.in.cfg.MaxFramesHeld
}

// finish waits for what is in flight once the agent closed its side.
func (s *stream) finish(ctx context.Context) error {
	for s.inflight != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case res := <-s.done:
			if err := s.settle(res); err != nil {
				return err
			}
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// frame handles one frame: acknowledges it at once if it will not be
// applied, plans it otherwise.
func (s *stream) frame(ctx context.Context, d *decoded) error {
	if err := s.checkNode(ctx, &d.h); err != nil {
		return err
	}
	s.held += d.bytes
	s.in.m.frames.Inc()
	s.in.m.frameBytes.Add(float64(wire.HeaderSize + len(d.h.AgentID) + d.h.BodyLen))
	if s.agent == "" {
		if err := s.bind(ctx, &d.h); err != nil {
			return err
		}
	} else if d.h.AgentID != s.agent {
		err := fmt.Errorf("%w: %q on the stream of %q", wire.ErrAgentMismatch, d.h.AgentID, s.agent)
		s.in.m.rejected.WithLabelValues(rejectReason(err)).Inc()
		_ = s.ack(wire.Ack{Incarnation: d.h.Incarnation, Seq: d.h.Seq, Status: wire.StatusRejected, Reason: wire.ReasonAgentMismatch})
		return err
	}
	err := d.err
	var removed []string
	if err == nil && !d.f.Keyframe {
		removed, err = s.removedPaths(d.f)
	}
	if err == nil {
		err = s.ws.Apply(d.f)
	}
	if err != nil {
		s.drop(d.bytes)
		return s.refuse(&d.h, err)
	}
	u, err := s.update(d.f, removed)
	if err == nil {
		err = s.plan(u, &d.h)
	}
	if err == nil {
		// The frame's bytes go with the transaction that took it.
		t := s.building
		if s.after != nil {
			t = s.after
		}
		t.bytes += d.bytes
	}
	if err != nil {
		// The wire state took the frame but the model refused it: the two
		// disagree now; start over from the store.
		_ = s.refuse(&d.h, err)
		return fmt.Errorf("frame %d: %w", d.h.Seq, err)
	}
	if s.inflight == nil {
		return s.flush(ctx)
	}
	return nil
}

// refuse acknowledges a frame that will not be applied.
func (s *stream) refuse(h *wire.Header, err error) error {
	reason := rejectReason(err)
	s.in.m.rejected.WithLabelValues(reason).Inc()
	a := wire.Ack{Incarnation: h.Incarnation, Seq: h.Seq, Status: wire.StatusRejected}
	if h.Incarnation == s.committed.inc {
		a.Applied = s.committed.seq
	}
	switch {
	case errors.Is(err, wire.ErrDuplicate):
		a.Status = wire.StatusDuplicate
	case errors.Is(err, wire.ErrGap):
		a.Status = wire.StatusGap
	case errors.Is(err, wire.ErrNeedKeyframe):
		a.Status = wire.StatusNeedKeyframe
	case errors.Is(err, wire.ErrTooLarge):
		a.Reason = wire.ReasonTooLarge
	case errors.Is(err, wire.ErrBadMagic), errors.Is(err, wire.ErrVersion):
		a.Reason = wire.ReasonVersion
	case errors.Is(err, wire.ErrInconsistent), errors.Is(err, model.ErrInvalid), errors.Is(err, model.ErrStale):
		a.Reason = wire.ReasonInconsistent
	default:
		a.Reason = wire.ReasonCorrupt
	}
	if a.Status == wire.StatusDuplicate && a.Applied == 0 {
		a.Applied = h.Seq // applied by an earlier stream
	}
	if a.Status != wire.StatusDuplicate {
		s.in.log.Debug("frame refused", "agent", s.agent, "seq", h.Seq, "reason", err)
	}
	return s.ack(a)
}

// plan adds a frame's writes to the transaction being built. The node's
// state is planned in place: the stream holds no other state than s.ns,
// and ends when a plan fails (its state then spent), or when a transaction
// fails (its frames' states are then ahead of the store); the next stream
// starts over from the store.
func (s *stream) plan(u *model.Update, h *wire.Header) error {
	p, err := model.PlanUpdateInPlace(s.ns, u, s.in.cfg.Now())
	if err != nil {
		return err
	}
	t := s.building
	if t != nil && !t.fits(p.Ops) {
		if s.after != nil {
			return fmt.Errorf("%w: frame %d planned while the stream was full", wire.ErrInconsistent, h.Seq)
		}
		t = nil
	}
	if t == nil {
		t = &txn{expect: s.ns.AgentValue}
		if s.building == nil {
			s.building = t
		} else {
			s.after = t
		}
	}
	t.merge(p.Ops)
	t.frames = append(t.frames, *h)
	t.last = committed{inc: u.Incarnation, seq: u.Seq}
	s.ns = p.Next
	return nil
}

// merge adds a plan's writes (one per key) to t.
func (t *txn) merge(ops []model.Op) {
	if len(t.frames) == 0 {
		t.ops = ops
		return
	}
	idx := t.indexed()
	for _, op := range ops {
		if i, ok := idx[string(op.Key)]; ok {
			t.ops[i] = op
			continue
		}
		idx[string(op.Key)] = len(t.ops)
		t.ops = append(t.ops, op)
	}
}

// indexed returns t's index of keys, built on first use.
func (t *txn) indexed() map[string]int {
	if t.index == nil {
		t.index = make(map[string]int, 2*len(t.ops))
		for i, op := range t.ops {
			t.index[string(op.Key)] = i
		}
	}
	return t.index
}

// fits reports whether t with ops merged in stays one transaction kvraft
// takes: its condition and one op per key.
func (t *txn) fits(ops []model.Op) bool {
	idx := t.indexed()
	n := 1 + len(t.ops)
	for _, op := range ops {
		if _, ok := idx[string(op.Key)]; !ok {
			n++
		}
	}
	return n <= kvraft.MaxTxnOps
}

// flush submits the transaction being built when none is in flight.
func (s *stream) flush(ctx context.Context) error {
	if s.inflight != nil || s.building == nil {
		return nil
	}
	t := s.building
	done, err := s.commit.submit(ctx, model.Txn(s.agent, t.expect, t.ops))
	if errors.Is(err, errTxnLimits) {
		// The frames cannot be stored; the agent starts over from a
		// fresh keyframe.
		s.in.m.rejected.WithLabelValues(rejectReason(err)).Add(float64(len(t.frames)))
		last := t.frames[len(t.frames)-1]
		a := wire.Ack{Incarnation: last.Incarnation, Seq: last.Seq, Status: wire.StatusRejected, Reason: wire.ReasonTooLarge}
		if last.Incarnation == s.committed.inc {
			a.Applied = s.committed.seq
		}
		_ = s.ack(a)
		return fmt.Errorf("frame %d: %w", last.Seq, err)
	}
	if err != nil {
		return err
	}
	s.inflight, s.building, s.after, s.done = t, s.after, nil, done
	return nil
}

// settle handles the result of the transaction in flight.
func (s *stream) settle(res result) error {
	t := s.inflight
	s.inflight, s.done = nil, nil
	s.drop(t.bytes)
	if res.err == nil && !res.succeeded {
		res.err = conflictf("agent %s", s.agent)
	}
	if res.err != nil {
		// Tell the agent what is durable; it resends the rest on its next
		// connection, which starts from the store.
		s.in.m.conflicts.Inc()
		last := t.frames[len(t.frames)-1]
		a := wire.Ack{Incarnation: last.Incarnation, Seq: last.Seq, Status: wire.StatusGap}
		if last.Incarnation == s.committed.inc {
			a.Applied = s.committed.seq
		}
		if a.Applied == 0 {
			a.Status = wire.StatusNeedKeyframe
		}
		_ = s.ack(a)
		return res.err
	}
	s.committed = t.last
	s.in.m.applied.Add(float64(len(t.frames)))
	last := t.frames[len(t.frames)-1]
	return s.ack(wire.Ack{Incarnation: last.Incarnation, Seq: last.Seq, Applied: last.Seq, Status: wire.StatusOK})
}

func (s *stream) ack(a wire.Ack) error {
	b, err := a.AppendBinary(nil)
	if err != nil {
		return err
	}
	return s.acks.writeAck(b)
}
