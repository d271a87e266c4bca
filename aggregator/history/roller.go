package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// Store is what the roller needs of a kvraft node.
type Store interface {
	Range(ctx context.Context, req kvraft.RangeRequest, opts kvraft.ReadOptions) (kvraft.RangeResult, error)
	Get(ctx context.Context, key []byte, opts kvraft.ReadOptions) (kvraft.GetResult, error)
	Txns(ctx context.Context, txns []kvraft.Txn) (uint64, []bool, error)
	Status() kvraft.Status
}

// Pricer gives a node's prices: a *pricing.Watcher, or a *pricing.Pricing.
type Pricer interface {
	Rates(pricing.Facts) pricing.Rates
}

// Defaults of Config.
const (
	DefaultMinuteRetention = 48 * time.Hour
	DefaultHourRetention   = 90 * 24 * time.Hour
	DefaultDelay           = 5 * time.Second
	DefaultSilentAfter     = 2 * time.Minute
	DefaultCompactEvery    = 10 * time.Minute
	DefaultMaxGonePerRoll  = 2000
)

// Config configures a Roller.
type Config struct {
	Store Store
	// Pricing prices the nodes (nil: OpenCost's default prices).
	Pricing Pricer
	// Memory is what counts as a container's memory usage
	// (cost.MemoryRSS).
	Memory cost.MemoryMeasure
	// MinuteRetention is how long minute records are kept (48 hours);
	// HourRetention how long hour records are (90 days).
	MinuteRetention time.Duration
	HourRetention   time.Duration
	// Delay is how long after a minute boundary the roll starts, for the
	// agents' samples of the minute to arrive (5 s).
	Delay time.Duration
	// SilentAfter is how long a node's agent may send nothing before what
	// it sent last is rolled up whole (2 minutes); it must be shorter
	// than the time after which the janitor deletes the node.
	SilentAfter time.Duration
	// Every is how often the leader looks for complete minutes to roll
	// (a minute, Delay after each minute boundary). Minutes are those of
	// the agents' sample times, so a test or benchmark that sends samples
	// faster than real time rolls them as fast with a shorter Every.
	Every time.Duration
	// CompactEvery is how often compaction and retention run (10
	// minutes).
	CompactEvery time.Duration
	// MaxGonePerRoll bounds the final records one roll of a node reads
	// (2000); more are rolled in the next minutes.
	MaxGonePerRoll int
	// Logger receives the rolls' outcomes (discarded if nil).
	Logger *slog.Logger
	// Registerer, if set, receives the roller's metrics.
	Registerer prometheus.Registerer
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Pricing == nil {
		c.Pricing = pricing.Default()
	}
	if c.Memory == "" {
		c.Memory = cost.MemoryRSS
	}
	if c.MinuteRetention == 0 {
		c.MinuteRetention = DefaultMinuteRetention
	}
	if c.HourRetention == 0 {
		c.HourRetention = DefaultHourRetention
	}
	if c.Delay == 0 {
		c.Delay = DefaultDelay
	}
	if c.SilentAfter == 0 {
		c.SilentAfter = DefaultSilentAfter
	}
	if c.Every == 0 {
		c.Every = time.Minute
	}
	if c.CompactEvery == 0 {
		c.CompactEvery = DefaultCompactEvery
	}
	if c.MaxGonePerRoll == 0 {
		c.MaxGonePerRoll = DefaultMaxGonePerRoll
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks a completed config; it changes nothing. The store is
// New's to check, so that a server can check the settings before it
// starts its store.
func (c *Config) Validate() error {
	var errs []error
	if _, err := cost.ParseMemoryMeasure(string(c.Memory)); err != nil {
		errs = append(errs, err)
	}
	if c.MinuteRetention < time.Hour {
		errs = append(errs, fmt.Errorf("minute retention %s: at least an hour", c.MinuteRetention))
	}
	if c.HourRetention < c.MinuteRetention {
		errs = append(errs, fmt.Errorf("hour retention %s: at least the minute retention %s", c.HourRetention, c.MinuteRetention))
	}
	if c.Delay < 0 || c.Delay >= 30*time.Second {
		errs = append(errs, fmt.Errorf("delay %s: 0 to 30s", c.Delay))
	}
	if c.SilentAfter < time.Minute {
		errs = append(errs, fmt.Errorf("silent after %s: at least a minute", c.SilentAfter))
	}
	if c.Every < 10*time.Millisecond || c.Every > time.Minute {
		errs = append(errs, fmt.Errorf("roll interval %s: 10ms to a minute", c.Every))
	}
	if c.CompactEvery < time.Second {
		errs = append(errs, fmt.Errorf("compaction interval %s: at least a second", c.CompactEvery))
	}
	if c.MaxGonePerRoll < 1 || c.MaxGonePerRoll > maxGonePerRoll {
		errs = append(errs, fmt.Errorf("final records per roll %d: 1 to %d", c.MaxGonePerRoll, maxGonePerRoll))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// maxGonePerRoll keeps a roll's transaction within kvraft.MaxTxnOps: up
// to MaxSeriesPerNode live series and this many final records, each with
// an identity, plus the records of a 48-hour span.
const maxGonePerRoll = (kvraft.MaxTxnOps - 2*model.MaxSeriesPerNode - 4*(maxFoldMs/hourMs) - 16) / 2

// Roller rolls up every node's minutes, on the replica that leads.
type Roller struct {
	cfg Config
	m   metrics
}

// New returns a roller; it completes cfg with the defaults first.
func New(cfg Config) (*Roller, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: no store", ErrInvalid)
	}
	r := &Roller{cfg: cfg, m: newMetrics()}
	if cfg.Registerer != nil {
		if err := r.m.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Run rolls up every minute, shortly after its end, and compacts every
// CompactEvery, while this replica leads, until ctx is done.
func (r *Roller) Run(ctx context.Context) {
	var compacted time.Time
	t := time.NewTimer(r.untilNextRoll())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if st := r.cfg.Store.Status(); st.Leader == st.ID && st.ID != 0 {
			if _, err := r.RollAll(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("history roll failed", "err", err)
			}
			if now := r.cfg.Now(); now.Sub(compacted) >= r.cfg.CompactEvery {
				if err := r.Compact(ctx); err != nil && ctx.Err() == nil {
					r.cfg.Logger.Warn("history compaction failed", "err", err)
				}
				compacted = now
			} else if err := r.relieve(ctx); err != nil && ctx.Err() == nil {
				// Between passes, every minute: a store that nears its
				// quota must not wait 10 minutes to refuse writes.
				r.m.errors.Inc()
				r.cfg.Logger.Warn("history compaction under quota pressure failed", "err", err)
			}
		}
		t.Reset(r.untilNextRoll())
	}
}

// untilNextRoll is the time to the next roll: Delay after the next
// boundary of Every (of a minute by default).
func (r *Roller) untilNextRoll() time.Duration {
	now := r.cfg.Now()
	every := r.cfg.Every
	next := now.Truncate(every).Add(r.cfg.Delay % every)
	for !next.After(now) {
		next = next.Add(every)
	}
	return next.Sub(now)
}

// readOpts reads at least at the index a linearizable read returned at the
// start of a pass: every node's reads come from this replica's state, in
// order.
func (r *Roller) readOpts(ctx context.Context) (kvraft.ReadOptions, error) {
	res, err := r.cfg.Store.Get(ctx, CursorKey("-"), kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err != nil {
		return kvraft.ReadOptions{}, err
	}
	return kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: max(res.Index, 1)}, nil
}

// RollAll rolls every node up to its last complete minute and returns how
// many nodes it rolled. A node whose roll loses a race (its agent's frame
// or another roller's roll came between the reads and the write) is read
// again, twice at most; after that it waits for the next minute.
func (r *Roller) RollAll(ctx context.Context) (int, error) {
	opts, err := r.readOpts(ctx)
	if err != nil {
		r.m.errors.Inc()
		return 0, fmt.Errorf("read index: %w", err)
	}
	var nodes []string
	seen := map[string]bool{}
	for _, p := range [][]byte{model.AllNodesPrefix(), model.AllGonePrefix()} {
		err := walkNodes(ctx, r.cfg.Store, p, opts, func(node string) {
			if !seen[node] {
				seen[node] = true
				nodes = append(nodes, node)
			}
		})
		if err != nil {
			r.m.errors.Inc()
			return 0, fmt.Errorf("list nodes: %w", err)
		}
	}
	slices.Sort(nodes)
	rolled := 0
	var errs []error
	for attempt := 0; attempt < 3 && len(nodes) > 0; attempt++ {
		var retry []string
		b := batch{r: r}
		for _, node := range nodes {
			p, err := r.planNode(ctx, node, opts)
			if err != nil {
				r.m.errors.Inc()
				errs = append(errs, fmt.Errorf("node %s: %w", node, err))
				continue
			}
			if p == nil {
				continue
			}
			if !b.fits(p) {
				lost, n, err := b.commit(ctx)
				rolled += n
				retry = append(retry, lost...)
				if err != nil {
					return rolled, err
				}
			}
			b.add(p)
		}
		lost, n, err := b.commit(ctx)
		rolled += n
		if err != nil {
			return rolled, err
		}
		nodes = append(retry, lost...)
		if len(nodes) > 0 {
			// Raced: read again from a newer state.
			if opts, err = r.readOpts(ctx); err != nil {
				return rolled, err
			}
		}
	}
	if len(nodes) > 0 {
		r.m.errors.Add(float64(len(nodes)))
		errs = append(errs, fmt.Errorf("nodes %v lost the race to their own frames three times", nodes))
	}
	return rolled, errors.Join(errs...)
}

// walkNodes calls fn with every node that has a key under p, one range of
// one key per node.
func walkNodes(ctx context.Context, st Store, p []byte, opts kvraft.ReadOptions, fn func(string)) error {
	end := kvstore.PrefixEnd(p)
	start := p
	for {
		res, err := st.Range(ctx, kvraft.RangeRequest{Start: start, End: end, Limit: 1}, opts)
		if err != nil {
			return err
		}
		if len(res.Items) == 0 {
			return nil
		}
		rest := res.Items[0].Key[len(p):]
		i := slices.Index(rest, '/')
		if i <= 0 {
			start = append(slices.Clone(res.Items[0].Key), 0)
			continue
		}
		fn(string(rest[:i]))
		start = kvstore.PrefixEnd(append(slices.Clone(p), rest[:i+1]...))
	}
}

// plan is one node's roll, ready to commit.
type plan struct {
	node string
	txn  kvraft.Txn
	// minutes rolled, and the lag of the span's end
	minutes int
	lag     time.Duration
	deleted int
}

// planNode reads a node and computes its roll; nil when there is nothing
// to roll.
func (r *Roller) planNode(ctx context.Context, node string, opts kvraft.ReadOptions) (*plan, error) {
	st := r.cfg.Store
	// The cursor first: what is read after it is at least as new.
	cg, err := st.Get(ctx, CursorKey(node), opts)
	if err != nil {
		return nil, err
	}
	in := &rollInput{Node: node, Measure: r.cfg.Memory,
		Rates: func(f pricing.Facts) cost.Rates { return costRates(r.cfg.Pricing.Rates(f)) }}
	if cg.Found {
		if in.Cursor, err = DecodeCursor(cg.Value); err != nil {
			return nil, fmt.Errorf("cursor: %w", err)
		}
	}
	nr, err := st.Range(ctx, kvraft.RangeRequest{Prefix: model.NodePrefix(node), Limit: model.MaxNodeKeys}, opts)
	if err != nil {
		return nil, err
	}
	// The checkpoints are for windowed reads, not the history: not decoded.
	ns, err := model.LoadNode(node, slices.DeleteFunc(nr.Items, func(kv kvraft.KV) bool {
		_, kind, _, err := model.ParseKey(kv.Key)
		return err == nil && kind == model.KindMarks
	}))
	if err != nil {
		return nil, err
	}
	in.Agent = ns.Agent
	for _, s := range ns.Series {
		in.Series = append(in.Series, s)
	}
	slices.SortFunc(in.Series, func(a, b *model.Stored) int { return cmpStr(a.Path, b.Path) })
	if a := in.Agent; a != nil {
		in.Silent = r.cfg.Now().Sub(time.Unix(0, a.Updated)) > r.cfg.SilentAfter
	}
	gr, err := st.Range(ctx, kvraft.RangeRequest{Prefix: model.GonePrefix(node), Limit: r.cfg.MaxGonePerRoll}, opts)
	if err != nil {
		return nil, err
	}
	in.GoneAll = !gr.More
	for _, kv := range gr.Items {
		f, err := model.DecodeFinal(kv.Value)
		if err != nil {
			// Unreadable: dropped, and said so.
			r.cfg.Logger.Warn("history: dropping a corrupt final record", "key", string(kv.Key), "err", err)
			in.Gone = append(in.Gone, goneRecord{Key: kv.Key, Final: &model.Final{}})
			continue
		}
		in.Gone = append(in.Gone, goneRecord{Key: kv.Key, Final: f})
	}
	out := roll(in)
	if out == nil {
		return nil, nil
	}
	if out.Anomalies > 0 {
		r.cfg.Logger.Debug("history: series sampled after their node", "node", node, "series", out.Anomalies)
	}
	return r.writes(ctx, node, in, cg, ns.AgentValue, out, opts)
}

// writes builds the transaction of a roll: its records, merged into their
// hour records, the identities, the consumed final records deleted and the
// next cursor, if the cursor and the agent record are still what was read.
func (r *Roller) writes(ctx context.Context, node string, in *rollInput, cg kvraft.GetResult, agentValue []byte,
	out *rollOutput, opts kvraft.ReadOptions) (*plan, error) {
	txn := kvraft.Txn{If: []kvraft.Compare{kvraft.CompareMissing(CursorKey(node)), kvraft.CompareMissing(model.AgentKey(node))}}
	if cg.Found {
		txn.If[0] = kvraft.CompareValue(CursorKey(node), kvraft.CmpEqual, cg.Value)
	}
	if agentValue != nil {
		txn.If[1] = kvraft.CompareValue(model.AgentKey(node), kvraft.CmpEqual, agentValue)
	}
	p := &plan{node: node}
	put := func(k, v []byte) {
		txn.Then = append(txn.Then, kvraft.Op{Type: kvraft.OpPut, Key: k, Value: v})
	}
	hours := map[int64]*Record{}
	var order []int64
	for i := range out.Spans {
		s := &out.Spans[i]
		put(MinuteKey(s.Start, node), (&Record{Segments: []Segment{*s}}).Encode())
		p.minutes += int(s.End-s.Start) / 60
		h := floorHour(s.Start*1000) / 1000
		rec := hours[h]
		if rec == nil {
			g, err := r.cfg.Store.Get(ctx, HourKey(h, node), opts)
			if err != nil {
				return nil, err
			}
			// A compaction that found the hour record missing writes it:
			// then this roll reads again.
			txn.If = append(txn.If, kvraft.CompareModIndex(HourKey(h, node), kvraft.CmpEqual, g.ModIndex))
			rec = &Record{}
			if g.Found {
				if rec, err = DecodeRecord(g.Value); err != nil {
					return nil, fmt.Errorf("hour record %d: %w", h, err)
				}
			}
			hours[h] = rec
			order = append(order, h)
		}
		rec.add(s)
	}
	for _, h := range order {
		put(HourKey(h, node), hours[h].Encode())
	}
	refs := make([]uint64, 0, len(out.Identities))
	for ref := range out.Identities {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	for _, ref := range refs {
		put(IdentityKey(node, ref), out.Identities[ref].Encode())
	}
	for _, k := range out.Consumed {
		txn.Then = append(txn.Then, kvraft.Op{Type: kvraft.OpDelete, Key: k})
	}
	p.deleted = len(out.Consumed)
	put(CursorKey(node), out.Cursor.Encode())
	p.txn = txn
	p.lag = r.cfg.Now().Sub(time.UnixMilli(out.TargetMs))
	return p, nil
}

// batch groups nodes' rolls into one proposal.
type batch struct {
	r     *Roller
	plans []*plan
	ops   int
	size  int
}

// rollBatchBytes bounds the rolls committed together: a quarter of
// kvraft.BatchBytes. A roll's entry is replicated, synced and applied
// before the ingest's next one, so a smaller batch keeps the agents'
// frames from waiting behind a large one (a roll of 100 nodes of 100
// containers writes about 800 KB), and it commits sooner after its nodes
// were read, so fewer lose the race to their agents' next frames.
const rollBatchBytes = kvraft.BatchBytes / 4

// fits reports whether p joins the batch within rollBatchBytes (a plan
// alone always does; kvraft refuses it if it is over the entry bound).
func (b *batch) fits(p *plan) bool {
	n := len(p.txn.If) + len(p.txn.Then)
	return len(b.plans) == 0 || len(b.plans) < kvraft.MaxTxns && b.ops+n <= kvraft.MaxTxnsOps &&
		b.size+kvraft.TxnSize(p.txn) <= rollBatchBytes
}

func (b *batch) add(p *plan) {
	b.plans = append(b.plans, p)
	b.ops += len(p.txn.If) + len(p.txn.Then)
	b.size += kvraft.TxnSize(p.txn)
}

// commit proposes the batch; it returns the nodes whose condition failed
// and how many rolled.
func (b *batch) commit(ctx context.Context) (lost []string, rolled int, err error) {
	if len(b.plans) == 0 {
		return nil, 0, nil
	}
	txns := make([]kvraft.Txn, len(b.plans))
	for i, p := range b.plans {
		txns[i] = p.txn
	}
	plans := b.plans
	*b = batch{r: b.r}
	_, ok, err := b.r.cfg.Store.Txns(ctx, txns)
	if err != nil {
		b.r.m.errors.Inc()
		return nil, 0, fmt.Errorf("commit rollups: %w", err)
	}
	var lag time.Duration
	for i, p := range plans {
		if !ok[i] {
			b.r.m.conflicts.Inc()
			lost = append(lost, p.node)
			continue
		}
		rolled++
		b.r.m.minutes.Add(float64(p.minutes))
		b.r.m.deleted.WithLabelValues(kindFinal).Add(float64(p.deleted))
		lag = max(lag, p.lag)
	}
	if rolled > 0 {
		b.r.m.lag.Set(lag.Seconds())
	}
	return lost, rolled, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
