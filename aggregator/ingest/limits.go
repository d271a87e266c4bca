package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Default limits of the frames a replica holds.
const (
	// DefaultMaxInflightBytes bounds the bytes of frames received and not
	// yet committed or refused, partial frames included, across every
	// stream of a replica (64 MiB).
	DefaultMaxInflightBytes = 64 << 20
	// DefaultMaxFramesHeld bounds the frames one stream holds decoded and
	// not yet committed: two full transactions (128).
	DefaultMaxFramesHeld = 128
	// DefaultFrameTimeout bounds the time from a frame's first byte to its
	// last (1m): a frame that stalls or trickles closes its stream.
	DefaultFrameTimeout = time.Minute
	// DefaultIdleTimeout bounds the wait for the next frame's first byte
	// (10m; agents send one every interval, 1s by default).
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultInflightWait bounds a stream's wait for room under
	// MaxInflightBytes before it is closed (30s).
	DefaultInflightWait = 30 * time.Second
)

// errOverloaded closes a stream that waited too long for room under the
// in-flight bytes cap; its agent backs off and resends.
var errOverloaded = errors.New("ingest: replica overloaded: no room for more in-flight frame bytes")

// budget counts the frame bytes a replica holds against its cap.
type budget struct {
	cap int64
	m   *metrics

	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed and replaced whenever bytes are released
}

func newBudget(limit int64, m *metrics) *budget {
	return &budget{cap: limit, m: m, freed: make(chan struct{})}
}

// tryAcquire takes n bytes if they fit, or returns the channel closed at
// the next release.
func (b *budget) tryAcquire(n int64) (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.cap {
		return false, b.freed
	}
	b.used += n
	b.m.inflightBytes.Set(float64(b.used))
	return true, nil
}

// acquire takes n bytes, waiting for room until wait has passed (then
// errOverloaded) or ctx is done.
func (b *budget) acquire(ctx context.Context, n int64, wait time.Duration) error {
	ok, freed := b.tryAcquire(n)
	if ok {
		return nil
	}
	b.m.inflightWaits.Inc()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("%w (%d bytes held, cap %d)", errOverloaded, b.inUse(), b.cap)
		case <-freed:
		}
		if ok, freed = b.tryAcquire(n); ok {
			return nil
		}
	}
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.m.inflightBytes.Set(float64(b.used))
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// meteredBody reads a stream's body within the replica's budget: every
// byte is counted before it is read, and stays counted until the frame it
// belongs to is committed or refused. It also keeps the body's read
// deadline: IdleTimeout while the next frame is awaited, FrameTimeout from
// its first byte, none while the stream does not read or waits for room
// (backpressure is not the agent's fault).
type meteredBody struct {
	r        io.Reader
	ctx      context.Context
	b        *budget
	wait     time.Duration
	idle     time.Duration
	timeout  time.Duration
	deadline func(time.Time) error // nil: no deadlines (tests)
	// pending is what was read of the frame being read.
	pending int64

	// mu orders the deadline calls of the reader and of stop: once the
	// stream stopped, the reader may no longer push the deadline out.
	mu      sync.Mutex
	stopped bool
}

const meteredChunk = 64 << 10

// arm sets the deadline of what is awaited: the next frame's first byte
// (IdleTimeout) or the rest of the frame (FrameTimeout); disarm lifts it.
func (mb *meteredBody) arm() {
	d := mb.idle
	if mb.pending > 0 {
		d = mb.timeout
	}
	mb.setDeadline(time.Now().Add(d))
}

func (mb *meteredBody) disarm() { mb.setDeadline(time.Time{}) }

func (mb *meteredBody) setDeadline(t time.Time) {
	if mb.deadline == nil {
		return
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if !mb.stopped {
		_ = mb.deadline(t)
	}
}

// stop ends a read in progress (the deadline passes now) and keeps the
// reader from setting another one. The handler calls it, and waits for
// the reader, before it returns: neither the body nor the response
// controller may be used after that.
func (mb *meteredBody) stop() {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.stopped = true
	if mb.deadline != nil {
		_ = mb.deadline(time.Now())
	}
}

func (mb *meteredBody) Read(p []byte) (int, error) {
	if len(p) > meteredChunk {
		p = p[:meteredChunk]
	}
	n := int64(len(p))
	if ok, _ := mb.b.tryAcquire(n); !ok {
		mb.disarm()
		if err := mb.b.acquire(mb.ctx, n, mb.wait); err != nil {
			return 0, err
		}
		mb.arm()
	}
	got, err := mb.r.Read(p)
	mb.b.release(n - int64(got))
	first := mb.pending == 0 && got > 0
	mb.pending += int64(got)
	if first {
		mb.arm() // a frame has started: the rest within FrameTimeout
	}
	return got, err
}

// take hands the bytes read since the last call to the frame they form.
func (mb *meteredBody) take() int64 {
	n := mb.pending
	mb.pending = 0
	return n
}
