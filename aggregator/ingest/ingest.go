package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
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
	return c.Limits.Validate()
}

// Path is where agents stream.
const Path = "/v1/ingest"

// Ingest serves POST /v1/ingest.
type Ingest struct {
	cfg Config
	log *slog.Logger
	c   *committer
	m   *metrics

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
	return &Ingest{cfg: cfg, log: cfg.Logger, c: newCommitter(&cfg, m), m: m, closing: make(chan struct{})}, nil
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
	rc := http.NewResponseController(w)
	if r.ProtoMajor < 2 {
		// HTTP/1.1 can stream both ways too, if the server allows it.
		if err := rc.EnableFullDuplex(); err != nil {
			http.Error(w, "ingest needs HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-penny-acks")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	in.m.streams.Inc()
	defer in.m.streams.Dec()
	s := &stream{in: in, commit: in.c, acks: httpAcks{w: w, rc: rc}, load: in.load, remote: r.RemoteAddr}
	err := s.serve(r.Context(), r.Body)
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
	case errors.Is(err, wire.ErrCorrupt), errors.Is(err, wire.ErrInvalid), errors.Is(err, io.ErrUnexpectedEOF):
		return "corrupt"
	}
	return "other"
}

// errConflict means a transaction's condition failed: the store changed
// under the stream.
var errConflict = errors.New("ingest: the agent's state changed in the store")

func conflictf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errConflict}, args...)...)
}
