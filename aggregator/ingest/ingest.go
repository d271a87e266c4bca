package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

// Config configures the ingest of one aggregator replica.
type Config struct {
	Node *kvraft.Node
	// Limits bound the frames accepted.
	Limits wire.Limits
	// BatchWait is how long the committer lets a batch form (1ms).
	BatchWait time.Duration
	// MaxBatchTxns, MaxBatchOps and MaxBatchBytes bound one proposal
	// (256 transactions, 40000 operations, kvraft.BatchBytes: 1 MiB; at
	// most kvraft.MaxTxnsBytes, as a proposal is one Raft entry).
	MaxBatchTxns, MaxBatchOps, MaxBatchBytes int
	// MaxInflight bounds the proposals in flight at once (4).
	MaxInflight int
	// QueueBytes bounds the transactions waiting for a proposal (64 MiB);
	// beyond it, streams wait: backpressure.
	QueueBytes int
	// MaxFramesPerTxn bounds the frames of one agent merged into one
	// transaction (64).
	MaxFramesPerTxn int
	// LoadTimeout bounds loading an agent's state at stream start (10s).
	LoadTimeout time.Duration
	// MaxInflightBytes bounds the frame bytes received and not yet
	// committed or refused, partial frames included, across every stream
	// (DefaultMaxInflightBytes, 64 MiB; at least the frame limit). A
	// stream reads no byte without room for it: it waits (the agent is
	// slowed by flow control) up to InflightWait (30s), then is closed and
	// counted (penny_ingest_streams_refused_total{reason="overloaded"}).
	MaxInflightBytes int64
	InflightWait     time.Duration
	// MaxFramesHeld bounds the frames one stream holds decoded and not yet
	// committed (DefaultMaxFramesHeld, 128); past it the stream stops
	// reading until a transaction commits.
	MaxFramesHeld int
	// FrameTimeout bounds the time from a frame's first byte to its last
	// (DefaultFrameTimeout, 1m), IdleTimeout the wait for a frame's first
	// byte once the stream is ready for it (DefaultIdleTimeout, 10m; it must
	// exceed the agents' interval). A stream that trickles or stalls is
	// closed and counted
	// (penny_ingest_streams_refused_total{reason="frame_timeout"}). Neither
	// runs while the stream itself waits (backpressure, room under
	// MaxInflightBytes).
	FrameTimeout time.Duration
	IdleTimeout  time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defInt(&c.MaxBatchTxns, 256)
	defInt(&c.MaxBatchOps, 40000)
	defInt(&c.MaxBatchBytes, kvraft.BatchBytes)
	defInt(&c.MaxInflight, 4)
	defInt(&c.QueueBytes, 64<<20)
	defInt(&c.MaxFramesPerTxn, 64)
	defInt(&c.MaxFramesHeld, DefaultMaxFramesHeld)
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.InflightWait == 0 {
		c.InflightWait = DefaultInflightWait
	}
	if c.FrameTimeout == 0 {
		c.FrameTimeout = DefaultFrameTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.BatchWait == 0 {
		c.BatchWait = time.Millisecond
	}
	if c.LoadTimeout == 0 {
		c.LoadTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks a completed config: the store, the batch limits (within
// kvraft's) and the frame limits.
func (c *Config) Validate() error {
	if c.Node == nil {
		return errors.New("ingest: no store")
	}
	if c.MaxBatchTxns < 1 || c.MaxBatchTxns > kvraft.MaxTxns || c.MaxBatchOps < 1 || c.MaxBatchOps > kvraft.MaxTxnsOps ||
		c.MaxBatchBytes < 1 || c.MaxBatchBytes > kvraft.MaxTxnsBytes || c.MaxInflight < 1 || c.QueueBytes < 1 || c.MaxFramesPerTxn < 1 || c.BatchWait < 0 {
		return errors.New("ingest: batch limits out of range")
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	frame := int64(c.Limits.MaxFrameBytes)
	if frame == 0 {
		frame = wire.DefaultMaxFrameBytes
	}
	if c.MaxInflightBytes < frame {
		return fmt.Errorf("ingest: max in-flight bytes %d below the frame limit %d", c.MaxInflightBytes, frame)
	}
	if c.MaxFramesHeld < 1 || c.InflightWait < 0 || c.FrameTimeout < 0 || c.IdleTimeout < 0 {
		return errors.New("ingest: frames held, in-flight wait and frame timeout out of range")
	}
	return nil
}

// Path is where agents stream.
const Path = "/v1/ingest"

// Ingest serves POST /v1/ingest.
type Ingest struct {
	cfg Config
	log *slog.Logger
	c   *committer
	m   *metrics
	bud *budget

	closing   chan struct{}
	closeOnce sync.Once
}

// New returns an ingest; Run must run for it to commit anything.
func New(cfg Config) (*Ingest, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newMetrics(cfg.Registerer)
	return &Ingest{cfg: cfg, log: cfg.Logger, c: newCommitter(&cfg, m), m: m, bud: newBudget(cfg.MaxInflightBytes, m),
		closing: make(chan struct{})}, nil
}

// CloseStreams ends every agent stream, now and to come, as a server
// shutting down must: a stream lasts as long as its agent, so HTTP/2's
// graceful shutdown would wait for it forever. Each stream stops reading,
// acknowledges what it has in flight (Run must still be running) and ends;
// its agent resends the rest to another replica.
func (in *Ingest) CloseStreams() { in.closeOnce.Do(func() { close(in.closing) }) }

// Run commits transactions until ctx is done.
func (in *Ingest) Run(ctx context.Context) { in.c.run(ctx) }

// ServeHTTP takes one agent's stream.
func (in *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	// Frames only: what a browser may post cross-origin (text/plain, a
	// form) or a body of no stated type is refused before it is read.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != MediaFrames {
		in.m.closed.WithLabelValues("media_type").Inc()
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("POST %s takes Content-Type %s", Path, MediaFrames))
		return
	}
	rc := http.NewResponseController(w)
	if r.ProtoMajor < 2 {
		// HTTP/1.1 can stream both ways too, if the server allows it.
		if err := rc.EnableFullDuplex(); err != nil {
			http.Error(w, "ingest needs HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
		// A stream that ends early stops its body where a frame may be cut
		// (its read deadline passes): what follows on the connection is no
		// request, so the connection ends with the stream.
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "application/x-penny-acks")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	in.m.streams.Inc()
	defer in.m.streams.Dec()
	s := &stream{in: in, commit: in.c, acks: httpAcks{w: w, rc: rc}, load: in.load, remote: r.RemoteAddr}
	err := s.serve(r.Context(), r.Body, rc.SetReadDeadline)
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		in.log.Debug("agent stream ended", "agent", s.agent, "remote", s.remote)
	default:
		in.log.Warn("agent stream closed", "agent", s.agent, "remote", s.remote, "reason", err)
	}
}

// rejectReason labels rejected frames in the metrics.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, wire.ErrDuplicate):
		return "duplicate"
	case errors.Is(err, wire.ErrGap):
		return "gap"
	case errors.Is(err, wire.ErrNeedKeyframe):
		return "need_keyframe"
	case errors.Is(err, wire.ErrBadMagic), errors.Is(err, wire.ErrVersion):
		return "version"
	case errors.Is(err, wire.ErrTooLarge), errors.Is(err, errTxnLimits):
		return "too_large"
	case errors.Is(err, wire.ErrAgentMismatch):
		return "agent_mismatch"
	case errors.Is(err, wire.ErrInconsistent), errors.Is(err, model.ErrInvalid), errors.Is(err, model.ErrStale):
		return "inconsistent"
	case errors.Is(err, errOverloaded), errors.Is(err, os.ErrDeadlineExceeded):
		return "limits"
	case errors.Is(err, wire.ErrCorrupt), errors.Is(err, wire.ErrInvalid), errors.Is(err, io.ErrUnexpectedEOF):
		return "corrupt"
	}
	return "other"
}

// closeReason labels the streams the ingest's limits closed.
func closeReason(err error) string {
	switch {
	case errors.Is(err, errOverloaded):
		return "overloaded"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "frame_timeout"
	}
	return ""
}

// MediaFrames is the Content-Type of an agent's stream.
const MediaFrames = "application/x-penny-frames"

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// errConflict means a transaction's condition failed: the store changed
// under the stream.
var errConflict = errors.New("ingest: the agent's state changed in the store")

func conflictf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errConflict}, args...)...)
}
