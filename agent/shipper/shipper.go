package shipper

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/wire"
)

// ErrStopped means the shipper was closed.
var ErrStopped = errors.New("shipper: stopped")

// IngestPath is where aggregators take frames.
const IngestPath = "/v1/ingest"

// Config configures a Shipper.
type Config struct {
	// URLs are the aggregator replicas, tried in order and then round robin.
	URLs []string
	// TLS configures https URLs; nil uses the system roots.
	TLS *tls.Config
	// Token, when set, returns the bearer token each connection sends
	// (bearer.File.Token: a ServiceAccount token that kubelet rotates).
	Token func() (string, error)
	// BufferBytes bounds the frames kept until acknowledged (64 MiB).
	BufferBytes int
	// KeyframeEvery is the number of frames between keyframes (60).
	KeyframeEvery int
	// DialTimeout bounds connecting to a replica (5s).
	DialTimeout time.Duration
	// AckTimeout is how long frames may wait for an acknowledgement before
	// the connection is given up (15s).
	AckTimeout time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential wait
	// between connection attempts (200ms, 10s).
	BackoffMin, BackoffMax time.Duration
	// Limits are the frame limits the aggregators enforce.
	Limits     wire.Limits
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, 5*time.Second)
	def(&c.AckTimeout, 15*time.Second)
	def(&c.BackoffMin, 200*time.Millisecond)
	def(&c.BackoffMax, 10*time.Second)
	if c.BufferBytes == 0 {
		c.BufferBytes = 64 << 20
	}
	if c.KeyframeEvery == 0 {
		c.KeyframeEvery = 60
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks a completed config: the URLs, sizes, timeouts and
// limits.
func (c *Config) Validate() error {
	if len(c.URLs) == 0 {
		return errors.New("shipper: no aggregator URL")
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("shipper: aggregator URL %q must be http(s)://host:port", u)
		}
	}
	if c.BufferBytes <= 0 || c.KeyframeEvery <= 0 || c.DialTimeout < 0 || c.AckTimeout < 0 ||
		c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		return errors.New("shipper: sizes and timeouts must be positive, backoff min at most max")
	}
	return c.Limits.Validate()
}

// Shipper streams frames to the aggregators. Submit and Run may be called
// from different goroutines.
type Shipper struct {
	cfg     Config
	log     *slog.Logger
	client  *http.Client
	conns   *conns
	metrics *metrics

	mu        sync.Mutex
	wake      chan struct{} // closed when frames are added or state changes
	enc       encoder
	buf       buffer
	last      *wire.Snapshot // newest sample, for a keyframe on demand
	forceKey  bool
	sinceKey  int
	applied   uint64 // highest seq acknowledged
	connected bool
	dropped   uint64
}

// encoder makes the frames: a *wire.Encoder, or a fake in tests.
type encoder interface {
	Encode(s *wire.Snapshot, keyframe bool) ([]byte, error)
	// Seq is the sequence number of the last frame encoded.
	Seq() uint64
	Incarnation() uint64
}

// New returns a shipper that encodes with enc.
func New(cfg Config, enc *wire.Encoder) (*Shipper, error) {
	return newShipper(cfg, enc)
}

func newShipper(cfg Config, enc encoder) (*Shipper, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cs := &conns{dial: (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 15 * time.Second}).DialContext}
	tr := &http.Transport{
		Protocols:             new(http.Protocols),
		TLSClientConfig:       cfg.TLS,
		DialContext:           cs.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.AckTimeout,
	}
	// h2c (HTTP/2 without TLS, prior knowledge) for http URLs, HTTP/2 over
	// TLS for https ones: one long bidirectional stream per connection.
	tr.Protocols.SetUnencryptedHTTP2(true)
	tr.Protocols.SetHTTP2(true)
	s := &Shipper{
		cfg: cfg, log: cfg.Logger, client: &http.Client{Transport: tr}, conns: cs,
		enc: enc, buf: buffer{limit: cfg.BufferBytes}, wake: make(chan struct{}),
		metrics: newMetrics(cfg.Registerer),
		// A random phase spreads the periodic keyframes of agents that
		// started together (a rollout) over KeyframeEvery intervals.
		sinceKey: rand.N(cfg.KeyframeEvery + 1),
	}
	return s, nil
}

// notify wakes whoever waits for a change; call with s.mu held.
func (s *Shipper) notify() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Submit encodes a sample into the next frame and queues it.
func (s *Shipper) Submit(snap *wire.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = snap
	return s.encodeLocked(s.forceKey || s.sinceKey >= s.cfg.KeyframeEvery)
}

func (s *Shipper) encodeLocked(keyframe bool) error {
	if s.last == nil {
		return nil
	}
	data, err := s.enc.Encode(s.last, keyframe)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	isKey := keyframe || s.enc.Seq() == 1
	if isKey {
		s.forceKey, s.sinceKey = false, 0
	} else {
		s.sinceKey++
	}
	dropped := s.buf.push(frame{seq: s.enc.Seq(), keyframe: isKey, data: data})
	if len(dropped) > 0 {
		s.dropLocked(dropped)
		// The frames after the dropped ones chain from frames the
		// aggregators may never see: the next frame restarts the chain.
		s.forceKey = true
		s.log.Warn("frame buffer full: dropped the oldest frames", "frames", len(dropped), "buffer_bytes", s.buf.limit)
	}
	s.metrics.bufferBytes.Set(float64(s.buf.bytes))
	s.metrics.bufferFrames.Set(float64(len(s.buf.frames)))
	s.notify()
	return nil
}

// Pending returns the frames and bytes waiting for an acknowledgement.
func (s *Shipper) Pending() (frames, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf.frames), s.buf.bytes
}

// Dropped returns the frames dropped unacknowledged so far.
func (s *Shipper) Dropped() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.dropped)
}

// dropLocked counts frames dropped unacknowledged.
func (s *Shipper) dropLocked(frames []frame) {
	for _, f := range frames {
		s.dropped++
		s.metrics.dropped.frames.Inc()
		s.metrics.dropped.bytes.Add(float64(len(f.data)))
	}
}

// Run connects to the aggregators and streams frames until ctx is done.
func (s *Shipper) Run(ctx context.Context) error {
	// A stopped shipper hangs up at once, rather than leaving its replica
	// a connection to wait out.
	defer s.conns.closeAll()
	backoff := s.cfg.BackoffMin
	for i := 0; ; i++ {
		u := strings.TrimSuffix(s.cfg.URLs[i%len(s.cfg.URLs)], "/")
		start := time.Now()
		err := s.session(ctx, u)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.metrics.reconnects.Inc()
		if time.Since(start) > 4*s.cfg.BackoffMax {
			backoff = s.cfg.BackoffMin // the connection was good for a while
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter: [b/2, b]
		s.log.Warn("aggregator connection lost", "url", u, "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.cfg.BackoffMax)
	}
}

// session streams to one replica until the connection fails.
func (s *Shipper) session(ctx context.Context, base string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+IngestPath, pr)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-penny-frames")
	if s.cfg.Token != nil {
		tok, err := s.cfg.Token()
		if tok == "" {
			return fmt.Errorf("bearer token: %w", err)
		}
		if err != nil {
			s.log.Warn("bearer token not read again: sending the last one", "err", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}

	s.reconnected()
	errc := make(chan error, 2)
	go func() { errc <- s.send(ctx, pw) }()
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("aggregator answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	s.setConnected(true)
	defer s.setConnected(false)
	s.log.Info("streaming to aggregator", "url", base)
	go func() { errc <- s.receive(ctx, resp.Body) }()
	err = <-errc
	cancel()
	pw.CloseWithError(err)
	return err
}

// reconnected prepares a new session: it resends what was not
// acknowledged, in order, and the next sample after a reconnect is a
// keyframe.
func (s *Shipper) reconnected() {
	s.mu.Lock()
	s.forceKey = true
	s.mu.Unlock()
}

func (s *Shipper) setConnected(c bool) {
	s.mu.Lock()
	s.connected = c
	s.mu.Unlock()
	if c {
		s.metrics.connected.Set(1)
	} else {
		s.metrics.connected.Set(0)
	}
}

// send writes every frame not acknowledged yet, oldest first, and then
// every new one as it comes.
func (s *Shipper) send(ctx context.Context, w io.Writer) error {
	var sent uint64 // seq of the last frame written on this connection
	for {
		s.mu.Lock()
		var todo []frame
		for i := range s.buf.frames {
			f := &s.buf.frames[i]
			if f.seq > sent && f.seq > s.applied {
				if f.sends > 0 {
					s.metrics.resent.frames.Inc()
					s.metrics.resent.bytes.Add(float64(len(f.data)))
				}
				f.sends++
				todo = append(todo, *f)
			}
		}
		wake := s.wake
		s.mu.Unlock()
		for _, f := range todo {
			if _, err := w.Write(f.data); err != nil {
				return fmt.Errorf("send frame %d: %w", f.seq, err)
			}
			sent = f.seq
			s.metrics.sent.frames.Inc()
			s.metrics.sent.bytes.Add(float64(len(f.data)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// receive reads acknowledgements and reacts to them.
func (s *Shipper) receive(ctx context.Context, body io.Reader) error {
	acks := make(chan wire.Ack)
	errc := make(chan error, 1)
	go func() {
		for {
			a, err := wire.ReadAck(body)
			if err != nil {
				errc <- err
				return
			}
			select {
			case acks <- a:
			case <-ctx.Done():
				return
			}
		}
	}()
	timer := time.NewTimer(s.cfg.AckTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return errors.New("aggregator closed the stream")
			}
			return fmt.Errorf("read acks: %w", err)
		case <-timer.C:
			if s.waiting() {
				return fmt.Errorf("no acknowledgement for %s", s.cfg.AckTimeout)
			}
			timer.Reset(s.cfg.AckTimeout)
		case a := <-acks:
			timer.Reset(s.cfg.AckTimeout)
			if err := s.handleAck(a); err != nil {
				return err
			}
		}
	}
}

// waiting reports whether frames wait for an acknowledgement.
func (s *Shipper) waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.buf.frames {
		if f.sends > 0 {
			return true
		}
	}
	return false
}

// errResend ends a session so that the next one resends from the buffer.
var errResend = errors.New("aggregator asks to resend")

func (s *Shipper) handleAck(a wire.Ack) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metrics.acks.WithLabelValues(a.Status.String()).Inc()
	if a.Incarnation != s.enc.Incarnation() {
		return nil // about an earlier run of this agent
	}
	switch a.Status {
	case wire.StatusOK, wire.StatusDuplicate:
		s.ackLocked(a.Applied)
		return nil
	case wire.StatusGap:
		s.ackLocked(a.Applied)
		if len(s.buf.frames) > 0 && s.buf.frames[0].seq == a.Applied+1 {
			return fmt.Errorf("%w from frame %d", errResend, a.Applied+1)
		}
		s.restartChainLocked(false)
		return fmt.Errorf("%w: frames after %d are gone, restarting from a keyframe", errResend, a.Applied)
	case wire.StatusNeedKeyframe:
		s.restartChainLocked(false)
		return fmt.Errorf("%w: the aggregator needs a keyframe", errResend)
	case wire.StatusRejected:
		s.log.Warn("aggregator rejected a frame", "seq", a.Seq, "reason", a.Reason)
		if a.Reason == wire.ReasonOverloaded {
			return errors.New("aggregator overloaded")
		}
		s.restartChainLocked(true)
		return fmt.Errorf("%w: frame %d rejected (%v)", errResend, a.Seq, a.Reason)
	}
	return fmt.Errorf("unknown ack status %v", a.Status)
}

func (s *Shipper) ackLocked(applied uint64) {
	if applied <= s.applied {
		return
	}
	s.applied = applied
	for _, f := range s.buf.ack(applied) {
		s.metrics.acked.frames.Inc()
		s.metrics.acked.bytes.Add(float64(len(f.data)))
	}
	s.metrics.bufferBytes.Set(float64(s.buf.bytes))
	s.metrics.bufferFrames.Set(float64(len(s.buf.frames)))
}

// restartChainLocked makes the next frames the aggregator sees start with
// a keyframe: the newest buffered one, dropping the frames before it, or
// when there is none (or fresh is set) a new one of the newest sample, in
// place of every buffered frame.
func (s *Shipper) restartChainLocked(fresh bool) {
	k := -1
	if !fresh {
		for i := len(s.buf.frames) - 1; i >= 0; i-- {
			if s.buf.frames[i].keyframe {
				k = i
				break
			}
		}
	}
	var gone []frame
	if k >= 0 {
		gone = s.buf.ack(s.buf.frames[k].seq - 1)
	} else {
		gone = s.buf.drain()
	}
	s.dropLocked(gone)
	s.applied = 0
	if k < 0 {
		if err := s.encodeLocked(true); err != nil {
			s.log.Error("encode keyframe", "err", err)
		}
	}
}
