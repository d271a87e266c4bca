package janitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/kvraft"
)

// Store is what the janitor needs of a kvraft node.
type Store interface {
	Range(ctx context.Context, req kvraft.RangeRequest, opts kvraft.ReadOptions) (kvraft.RangeResult, error)
	Txn(ctx context.Context, txn kvraft.Txn) (kvraft.TxnResult, error)
	Status() kvraft.Status
}

// Config configures the janitor.
type Config struct {
	Store Store
	// TTL is how long a node may go without a frame before its series are
	// deleted (10 minutes).
	TTL time.Duration
	// Every is how often to look (TTL/10).
	Every time.Duration
	// Logger receives the sweeps' outcomes (discarded if nil).
	Logger *slog.Logger
	// Registerer, if set, receives the janitor's metrics.
	Registerer prometheus.Registerer
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.TTL == 0 {
		c.TTL = 10 * time.Minute
	}
	if c.Every == 0 {
		c.Every = c.TTL / 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks a completed config; it changes nothing.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("janitor: no store")
	}
	if c.TTL < time.Second {
		return errors.New("janitor: TTL must be at least a second")
	}
	if c.Every <= 0 {
		return errors.New("janitor: the sweep interval must be positive")
	}
	return nil
}

// Janitor deletes silent nodes.
type Janitor struct {
	cfg     Config
	deleted prometheus.Counter
}

// New returns a janitor; it completes cfg with the defaults first.
func New(cfg Config) (*Janitor, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	j := &Janitor{cfg: cfg, deleted: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "penny_janitor_nodes_deleted_total", Help: "Nodes whose series were deleted after their agent went silent."})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(j.deleted)
	}
	return j, nil
}

// Run sweeps every Every while this replica leads, until ctx is done.
func (j *Janitor) Run(ctx context.Context) {
	t := time.NewTicker(j.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if st := j.cfg.Store.Status(); st.Leader != st.ID {
			continue // one replica sweeps: the leader
		}
		if n, err := j.Sweep(ctx); err != nil {
			j.cfg.Logger.Warn("janitor sweep failed", "err", err)
		} else if n > 0 {
			j.cfg.Logger.Info("deleted silent nodes", "nodes", n, "ttl", j.cfg.TTL)
		}
	}
}

// Sweep deletes every node whose agent record is older than the TTL and
// returns how many it deleted.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	res, err := j.cfg.Store.Range(ctx, kvraft.RangeRequest{Prefix: model.AllNodesPrefix()},
		kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err != nil {
		return 0, fmt.Errorf("read nodes: %w", err)
	}
	type node struct {
		agent []byte
		keys  [][]byte
	}
	nodes := map[string]*node{}
	for _, kv := range res.Items {
		name, kind, _, err := model.ParseKey(kv.Key)
		if err != nil {
			continue
		}
		n := nodes[name]
		if n == nil {
			n = &node{}
			nodes[name] = n
		}
		if kind == model.KindAgent {
			n.agent = kv.Value
		} else {
			n.keys = append(n.keys, kv.Key)
		}
	}
	cutoff := j.cfg.Now().Add(-j.cfg.TTL).UnixNano()
	deleted := 0
	for name, n := range nodes {
		expect := kvraft.CompareMissing(model.AgentKey(name)) // series left without a record
		if n.agent != nil {
			a, err := model.DecodeAgent(n.agent)
			if err == nil && a.Updated >= cutoff {
				continue
			}
			expect = kvraft.CompareValue(model.AgentKey(name), kvraft.CmpEqual, n.agent)
		}
		txn := kvraft.Txn{If: []kvraft.Compare{expect}}
		for _, k := range n.keys {
			txn.Then = append(txn.Then, kvraft.Op{Type: kvraft.OpDelete, Key: k})
		}
		if n.agent != nil {
			txn.Then = append(txn.Then, kvraft.Op{Type: kvraft.OpDelete, Key: model.AgentKey(name)})
		}
		r, err := j.cfg.Store.Txn(ctx, txn)
		if err != nil {
			return deleted, fmt.Errorf("delete node %s: %w", name, err)
		}
		if r.Succeeded {
			deleted++
			j.deleted.Inc()
		}
	}
	return deleted, nil
}
