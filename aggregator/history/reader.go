package history

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/kvraft"
)

// RangeStore is what a Reader reads: a kvraft node.
type RangeStore interface {
	Range(ctx context.Context, req kvraft.RangeRequest, opts kvraft.ReadOptions) (kvraft.RangeResult, error)
}

// Defaults of ReaderConfig.
const (
	// DefaultMaxRecords bounds the records one read decodes: a week of
	// hours of 600 nodes.
	DefaultMaxRecords = 100_000
	// DefaultMaxSpans bounds the container spans one read returns: a week
	// of hours of 24,000 containers (about 120 bytes each in memory).
	DefaultMaxSpans = 4_000_000
	// DefaultMaxIdentities bounds the identities one read loads.
	DefaultMaxIdentities = 1_000_000
)

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	Store RangeStore
	// MaxRecords, MaxSpans and MaxIdentities bound one read; a read that
	// would go past one fails with an error wrapping kvraft.ErrTooLarge.
	MaxRecords    int
	MaxSpans      int
	MaxIdentities int
}

// Complete fills in the defaults.
func (c *ReaderConfig) Complete() {
	if c.MaxRecords == 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.MaxSpans == 0 {
		c.MaxSpans = DefaultMaxSpans
	}
	if c.MaxIdentities == 0 {
		c.MaxIdentities = DefaultMaxIdentities
	}
}

// Validate checks a completed config; it changes nothing.
func (c *ReaderConfig) Validate() error {
	if c.Store == nil {
		return fmt.Errorf("%w: reader without a store", ErrInvalid)
	}
	if c.MaxRecords < 1 || c.MaxSpans < 1 || c.MaxIdentities < 1 {
		return fmt.Errorf("%w: reader limits must be positive", ErrInvalid)
	}
	return nil
}

// Reader reads the history for the cost model. It is safe for concurrent
// use.
type Reader struct {
	cfg ReaderConfig
}

// NewReader returns a reader; it completes cfg with the defaults first.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Reader{cfg: cfg}, nil
}

// Spans returns the containers' and nodes' spans that overlap [start,
// end): an hour's record where the window covers the hour whole, or where
// its minutes are no longer kept (the cost model prorates it at the
// window's edge), and the minute records of the hours at the window's
// edges. Each series' spans are sorted by start; series are sorted by
// node, then identity. The first read is at opts, the others at least as
// new, on the same replica.
func (r *Reader) Spans(ctx context.Context, start, end time.Time, opts kvraft.ReadOptions) ([]cost.Series, []cost.NodeUsage, error) {
	if !end.After(start) {
		return nil, nil, fmt.Errorf("%w: window %s..%s is empty", kvraft.ErrInvalid, start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	ws, we := start.Unix(), end.Unix()
	if !end.Equal(time.Unix(we, 0)) {
		we++ // round the end up to a second
	}
	hs, he := floorHour(ws*1000)/1000, -floorHour(-we*1000)/1000
	budget := r.cfg.MaxRecords
	read := func(from, to int64, p string) ([]kvraft.KV, error) {
		res, err := r.cfg.Store.Range(ctx, kvraft.RangeRequest{Start: timeBound(p, from), End: timeBound(p, to), Limit: budget + 1}, opts)
		if err != nil {
			return nil, err
		}
		if opts.Consistency != kvraft.Eventual {
			opts = kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: max(res.Index, 1)}
		}
		if budget -= len(res.Items); budget < 0 || res.More {
			return nil, fmt.Errorf("%w: more than %d history records in %s..%s", kvraft.ErrTooLarge, r.cfg.MaxRecords,
				start.Format(time.RFC3339), end.Format(time.RFC3339))
		}
		return res.Items, nil
	}
	// Hours first: a compaction between the two reads then leaves an
	// hour's data in its hour record, never in neither.
	hours, err := read(hs, he, hourPrefix)
	if err != nil {
		return nil, nil, err
	}
	type nodeHour struct {
		node string
		hour int64
	}
	edge := map[nodeHour]bool{} // node-hours read as minutes
	var minutes []kvraft.KV
	for _, h := range edgeHours(ws, we, hs, he) {
		kvs, err := read(h, min(h+hourMs/1000, we), minutePrefix)
		if err != nil {
			return nil, nil, err
		}
		for _, kv := range kvs {
			_, node, err := parseTimeKey(minutePrefix, kv.Key)
			if err != nil {
				return nil, nil, err
			}
			edge[nodeHour{node, h}] = true
		}
		minutes = append(minutes, kvs...)
	}

	b := builder{r: r, series: map[seriesKey]int{}}
	for _, kv := range hours {
		h, node, err := parseTimeKey(hourPrefix, kv.Key)
		if err != nil {
			return nil, nil, err
		}
		if edge[nodeHour{node, h}] {
			continue
		}
		if err := b.record(node, kv.Value, ws, we); err != nil {
			return nil, nil, fmt.Errorf("hour record %s: %w", kv.Key, err)
		}
	}
	for _, kv := range minutes {
		_, node, _ := parseTimeKey(minutePrefix, kv.Key)
		if err := b.record(node, kv.Value, ws, we); err != nil {
			return nil, nil, fmt.Errorf("minute record %s: %w", kv.Key, err)
		}
	}
	if err := b.identities(ctx, opts); err != nil {
		return nil, nil, err
	}
	return b.result()
}

// edgeHours are the hours the window [ws, we) covers in part.
func edgeHours(ws, we, hs, he int64) []int64 {
	var out []int64
	if ws > hs {
		out = append(out, hs)
	}
	if last := he - hourMs/1000; we < he && (len(out) == 0 || last != hs) {
		out = append(out, last)
	}
	return out
}

type seriesKey struct {
	node string
	ref  uint64
}

// builder turns records into the cost model's input.
type builder struct {
	r      *Reader
	series map[seriesKey]int
	out    []cost.Series
	keys   []seriesKey
	nodes  []cost.NodeUsage
	spans  int
}

// record adds the segments of a record that overlap [ws, we).
func (b *builder) record(node string, v []byte, ws, we int64) error {
	rec, err := DecodeRecord(v)
	if err != nil {
		return err
	}
	for i := range rec.Segments {
		s := &rec.Segments[i]
		if s.End <= ws || s.Start >= we {
			continue
		}
		nu := s.NodeUsage(node)
		b.nodes = append(b.nodes, nu)
		if b.spans += len(s.Entries); b.spans > b.r.cfg.MaxSpans {
			return fmt.Errorf("%w: more than %d container spans", kvraft.ErrTooLarge, b.r.cfg.MaxSpans)
		}
		for j := range s.Entries {
			e := &s.Entries[j]
			k := seriesKey{node, e.Ref}
			idx, ok := b.series[k]
			if !ok {
				idx = len(b.out)
				b.series[k] = idx
				b.out = append(b.out, cost.Series{})
				b.keys = append(b.keys, k)
			}
			b.out[idx].Usage = append(b.out[idx].Usage, e.Usage(nu.Start, nu.End))
		}
	}
	return nil
}

// identities fills in every series' container from its node's identities.
func (b *builder) identities(ctx context.Context, opts kvraft.ReadOptions) error {
	byNode := map[string][]int{}
	for i, k := range b.keys {
		byNode[k.node] = append(byNode[k.node], i)
	}
	budget := b.r.cfg.MaxIdentities
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, node := range nodes {
		res, err := b.r.cfg.Store.Range(ctx, kvraft.RangeRequest{Prefix: identityPrefix(node), Limit: budget + 1}, opts)
		if err != nil {
			return err
		}
		if budget -= len(res.Items); budget < 0 || res.More {
			return fmt.Errorf("%w: more than %d container identities", kvraft.ErrTooLarge, b.r.cfg.MaxIdentities)
		}
		raw := make(map[uint64][]byte, len(res.Items))
		for _, kv := range res.Items {
			_, ref, err := parseIdentityKey(kv.Key)
			if err != nil {
				return err
			}
			raw[ref] = kv.Value
		}
		for _, i := range byNode[node] {
			ref := b.keys[i].ref
			v, ok := raw[ref]
			if !ok {
				// Not written (a roll lost between its records and
				// identity cannot happen; an expired identity can, past
				// retention): the container is known by its ref alone.
				b.out[i].Container = cost.Container{Node: node, Container: fmt.Sprintf("ref-%x", ref)}
				continue
			}
			id, err := DecodeIdentity(v)
			if err != nil {
				return fmt.Errorf("identity %x of %s: %w", ref, node, err)
			}
			b.out[i].Container = id.CostContainer(node)
		}
	}
	return nil
}

func (b *builder) result() ([]cost.Series, []cost.NodeUsage, error) {
	for i := range b.out {
		u := b.out[i].Usage
		if !slices.IsSortedFunc(u, byStart) {
			slices.SortStableFunc(u, byStart)
		}
	}
	idx := make([]int, len(b.out))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int {
		a, c := &b.out[x].Container, &b.out[y].Container
		return cmpSeries(a, c, b.keys[x].ref, b.keys[y].ref)
	})
	out := make([]cost.Series, len(idx))
	for i, j := range idx {
		out[i] = b.out[j]
	}
	slices.SortFunc(b.nodes, func(x, y cost.NodeUsage) int {
		if c := strings.Compare(x.Node, y.Node); c != 0 {
			return c
		}
		return x.Start.Compare(y.Start)
	})
	return out, b.nodes, nil
}

func byStart(a, b cost.Usage) int { return a.Start.Compare(b.Start) }

func cmpSeries(a, b *cost.Container, ra, rb uint64) int {
	for _, p := range [][2]string{{a.Node, b.Node}, {a.Namespace, b.Namespace}, {a.Pod, b.Pod}, {a.Container, b.Container}} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return cmpU(ra, rb)
}
