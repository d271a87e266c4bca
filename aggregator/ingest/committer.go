package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
)

// ErrStopped means the committer stopped.
var ErrStopped = errors.New("ingest: stopped")

// errTxnLimits means a transaction breaks the store's limits.
var errTxnLimits = errors.New("ingest: transaction over the store's limits")

// checkTxn checks txn against the store's limits as kvraft.Node.Txns
// does, which refuses a whole proposal when one of its transactions breaks
// them: checked here, a bad transaction fails alone, when it is submitted,
// and never the batch it would have been merged into.
func checkTxn(txn kvraft.Txn) error {
	if err := command.ValidateTxns([]kvraft.Txn{txn}); err != nil {
		return fmt.Errorf("%w: %w", errTxnLimits, err)
	}
	return nil
}

// request is one transaction waiting for a proposal.
type request struct {
	txn   kvraft.Txn
	ops   int
	bytes int
	// size bounds the txn's bytes in a proposal (kvraft.TxnSize).
	size int
	done chan result
}

type result struct {
	index     uint64
	succeeded bool
	err       error
}

// committer coalesces transactions into proposals.
type committer struct {
	node      *kvraft.Node
	log       *slog.Logger
	wait      time.Duration
	maxTxns   int
	maxOps    int
	maxBytes  int
	queueMax  int
	inflight  chan struct{}
	m         *metrics
	mu        sync.Mutex
	cond      *sync.Cond
	queue     []*request
	queueSize int
	stopped   bool
}

func newCommitter(cfg *Config, m *metrics) *committer {
	c := &committer{node: cfg.Node, log: cfg.Logger, wait: cfg.BatchWait, maxTxns: cfg.MaxBatchTxns,
		maxOps: cfg.MaxBatchOps, maxBytes: cfg.MaxBatchBytes, queueMax: cfg.QueueBytes,
		inflight: make(chan struct{}, cfg.MaxInflight), m: m}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// submit checks txn against the store's limits and queues it, waiting while
// the queue is full (backpressure), and returns the channel its result
// arrives on.
func (c *committer) submit(ctx context.Context, txn kvraft.Txn) (<-chan result, error) {
	if err := checkTxn(txn); err != nil {
		return nil, err
	}
	r := &request{txn: txn, done: make(chan result, 1)}
	for _, cmp := range txn.If {
		r.bytes += len(cmp.Key) + len(cmp.Value)
	}
	for _, op := range txn.Then {
		r.bytes += len(op.Key) + len(op.Value)
	}
	r.ops = len(txn.If) + len(txn.Then) + len(txn.Else)
	r.size = kvraft.TxnSize(txn)
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	for !c.stopped && c.queueSize > 0 && c.queueSize+r.bytes > c.queueMax {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c.cond.Wait()
	}
	if d := time.Since(start); d > time.Millisecond {
		c.m.backpressure.Observe(d.Seconds())
	}
	if c.stopped {
		return nil, ErrStopped
	}
	c.queue = append(c.queue, r)
	c.queueSize += r.bytes
	c.m.queueBytes.Set(float64(c.queueSize))
	c.cond.Broadcast()
	return r.done, nil
}

// run proposes batches until ctx is done.
func (c *committer) run(ctx context.Context) {
	defer func() {
		c.mu.Lock()
		c.stopped = true
		for _, r := range c.queue {
			r.done <- result{err: ErrStopped}
		}
		c.queue, c.queueSize = nil, 0
		c.cond.Broadcast()
		c.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && ctx.Err() == nil {
			c.cond.Wait()
		}
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		// Let a batch form while earlier proposals are in flight.
		select {
		case c.inflight <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if c.wait > 0 {
			time.Sleep(c.wait)
		}
		batch := c.take()
		if len(batch) == 0 {
			<-c.inflight
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-c.inflight }()
			c.propose(ctx, batch)
		}()
	}
}

// take removes the next batch from the queue.
func (c *committer) take() []*request {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ops, bytes, size := 0, 0, 0, 0
	for n < len(c.queue) && n < c.maxTxns {
		r := c.queue[n]
		if n > 0 && (ops+r.ops > c.maxOps || size+r.size > c.maxBytes) {
			break
		}
		ops += r.ops
		bytes += r.bytes
		size += r.size
		n++
	}
	batch := c.queue[:n:n]
	c.queue = c.queue[n:]
	c.queueSize -= bytes
	c.m.queueBytes.Set(float64(c.queueSize))
	c.cond.Broadcast()
	return batch
}

func (c *committer) propose(ctx context.Context, batch []*request) {
	txns := make([]kvraft.Txn, len(batch))
	for i, r := range batch {
		txns[i] = r.txn
	}
	start := time.Now()
	idx, ok, err := c.node.Txns(ctx, txns)
	c.m.proposal.Observe(time.Since(start).Seconds())
	c.m.batchTxns.Observe(float64(len(batch)))
	if err != nil {
		err = fmt.Errorf("propose %d transactions: %w", len(batch), err)
	}
	for i, r := range batch {
		res := result{index: idx, err: err}
		if err == nil {
			res.succeeded = ok[i]
		}
		r.done <- res
	}
}
