package history

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
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
	// CacheBytes bounds the cache of what past days add up to
	// (DefaultCacheBytes); -1 turns it off.
	CacheBytes int64
	// Now is the clock that tells which hours are past (time.Now).
	Now func() time.Time
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
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.Now == nil {
		c.Now = time.Now
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
	if c.CacheBytes < -1 {
		return fmt.Errorf("%w: reader cache bytes must be positive, or -1 for none", ErrInvalid)
	}
	return nil
}

// Reader reads the history for the cost model. It is safe for concurrent
// use.
type Reader struct {
	cfg ReaderConfig
	// blocks and idents are the caches of days and identities; nil: none.
	blocks *lru[blockKey, cached]
	idents *lru[string, *nodeIdents]
	// seriesHint is the series of the last read, to size the next one's.
	seriesHint atomic.Int64
}

// NewReader returns a reader; it completes cfg with the defaults first.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Reader{cfg: cfg}
	if cfg.CacheBytes > 0 {
		// Identities take about a third of what their days take.
		r.blocks = newLRU[blockKey, cached](cfg.CacheBytes * 3 / 4)
		r.idents = newLRU[string, *nodeIdents](cfg.CacheBytes / 4)
	}
	return r, nil
}

// Spans returns the containers' and nodes' spans that overlap [start,
// end): an hour's record where the window covers the hour whole, or where
// its minutes are no longer kept (the cost model prorates it at the
// window's edge), and the minute records of the hours at the window's
// edges. Each series' spans are sorted by start; series are sorted by
// node, then identity. The first read is at opts, the others at least as
// new, on the same replica. The containers' Labels maps may be shared with
// the reader's cache and other reads: read them, never write them.
func (r *Reader) Spans(ctx context.Context, start, end time.Time, opts kvraft.ReadOptions) ([]cost.Series, []cost.NodeUsage, error) {
	return r.spans(ctx, start, end, 0, opts)
}

// SpansByStep is Spans with each container's consecutive spans merged
// within each step of the window (steps start at start and are step long,
// as the cost model's): what a query in steps prices the same, in far
// fewer spans (a week of hours in one step is one span per container
// instead of 168). Spans merge only while their node keeps its facts and
// prices and has no gap; a span across a step's edge stays as it is.
func (r *Reader) SpansByStep(ctx context.Context, start, end time.Time, step time.Duration,
	opts kvraft.ReadOptions) ([]cost.Series, []cost.NodeUsage, error) {
	if step <= 0 {
		return nil, nil, fmt.Errorf("%w: step %s must be positive", kvraft.ErrInvalid, step)
	}
	return r.spans(ctx, start, end, step, opts)
}

func (r *Reader) spans(ctx context.Context, start, end time.Time, step time.Duration, opts kvraft.ReadOptions) ([]cost.Series, []cost.NodeUsage, error) {
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
	kp := keyParser{}
	var minutes []kvraft.KV
	for _, h := range edgeHours(ws, we, hs, he) {
		kvs, err := read(h, min(h+hourMs/1000, we), minutePrefix)
		if err != nil {
			return nil, nil, err
		}
		for _, kv := range kvs {
			_, node, err := kp.parse(minutePrefix, kv.Key)
			if err != nil {
				return nil, nil, err
			}
			edge[nodeHour{node, h}] = true
		}
		minutes = append(minutes, kvs...)
	}

	// Every record to read, by node and then time (an hour before a
	// minute that starts with it): runs of spans are merged per node, in
	// order. Keys sort by time, then node.
	type nodeRecs struct{ hours, minutes []rec }
	byNode := map[string]*nodeRecs{}
	var names []string
	group := func(node string) *nodeRecs {
		g := byNode[node]
		if g == nil {
			g = &nodeRecs{}
			byNode[node] = g
			names = append(names, node)
		}
		return g
	}
	for _, kv := range hours {
		h, node, err := kp.parse(hourPrefix, kv.Key)
		if err != nil {
			return nil, nil, err
		}
		if !edge[nodeHour{node, h}] {
			g := group(node)
			g.hours = append(g.hours, rec{node: node, start: h, v: kv.Value, mod: kv.ModIndex, hour: true})
		}
	}
	for _, kv := range minutes {
		m, node, _ := kp.parse(minutePrefix, kv.Key)
		g := group(node)
		g.minutes = append(g.minutes, rec{node: node, start: m, v: kv.Value, mod: kv.ModIndex})
	}
	slices.Sort(names)
	recs := make([]rec, 0, len(hours)+len(minutes))
	for _, node := range names {
		g := byNode[node]
		for len(g.hours) > 0 || len(g.minutes) > 0 {
			if len(g.minutes) == 0 || len(g.hours) > 0 && g.hours[0].start <= g.minutes[0].start {
				recs, g.hours = append(recs, g.hours[0]), g.hours[1:]
			} else {
				recs, g.minutes = append(recs, g.minutes[0]), g.minutes[1:]
			}
		}
	}
	b := builder{r: r, nodes: map[string]*nodeSeries{}, ws: ws, we: we, step: int64(step / time.Second)}
	if n := int(r.seriesHint.Load()); n > 0 {
		b.out, b.keys, b.accs = make([]cost.Series, 0, n), make([]seriesKey, 0, n), make([]acc, 0, n)
	}
	for i := 0; i < len(recs); {
		if i == 0 || recs[i].node != recs[i-1].node {
			b.startNode(recs[i].node, recs[i:])
		}
		j := dayBlock(recs, i)
		if err := b.block(recs[i:j]); err != nil {
			return nil, nil, err
		}
		i = j
	}
	b.endNode()
	if err := b.identities(ctx, opts); err != nil {
		return nil, nil, err
	}
	r.seriesHint.Store(int64(len(b.out)))
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

// rec is a record read, of a node and starting at start (unix seconds),
// last written at index mod; an hour record or a minute record.
type rec struct {
	node  string
	start int64
	v     []byte
	mod   uint64
	hour  bool
}

// builder turns records into the cost model's input, one node at a time.
type builder struct {
	r      *Reader
	nodes  map[string]*nodeSeries
	out    []cost.Series
	keys   []seriesKey
	accs   []acc // per series: its current run's sum
	usage  []cost.NodeUsage
	spans  int
	ws, we int64
	// step (seconds) merges spans within steps from ws; 0 merges none.
	step int64
	// The node being read and its current run of segments.
	node string
	ns   *nodeSeries
	run  run
	// segStart is the start of the segment being read.
	segStart int64
}

// run is a node's consecutive segments with the same terms in one step.
type run struct {
	id         int
	open       bool
	start, end int64
	stepIdx    int64
	seg        Segment // the first segment's terms
	observedMs uint64
}

// acc is one series' sum over a run.
type acc struct {
	run        int
	start, end int64
	e          Entry
}

// nodeSeries indexes one node's series by ref: refs are small and dense
// (a node's count of containers), so mostly a slice.
type nodeSeries struct {
	dense  []int32 // series index + 1, by ref
	sparse map[uint64]int
	// spans sizes its series' slices: the segments read of the node.
	spans int
}

const maxDenseRef = 1 << 16

func (n *nodeSeries) get(ref uint64) (int, bool) {
	if ref < uint64(len(n.dense)) {
		i := n.dense[ref]
		return int(i) - 1, i != 0
	}
	i, ok := n.sparse[ref]
	return i, ok
}

func (n *nodeSeries) set(ref uint64, i int) {
	if ref < maxDenseRef {
		if ref >= uint64(len(n.dense)) {
			n.dense = append(n.dense, make([]int32, int(ref)+1-len(n.dense)+len(n.dense)/2)...)
		}
		n.dense[ref] = int32(i + 1)
		return
	}
	if n.sparse == nil {
		n.sparse = map[uint64]int{}
	}
	n.sparse[ref] = i
}

// startNode starts reading node, whose records (and others after them)
// are recs.
func (b *builder) startNode(node string, recs []rec) {
	b.endNode()
	b.node, b.ns = node, &nodeSeries{}
	b.nodes[node] = b.ns
	for _, r := range recs {
		if r.node != node {
			break
		}
		b.ns.spans++
	}
	if b.step > 0 {
		b.ns.spans = 2 * int((b.we-b.ws+b.step-1)/b.step) // a run per step, and one across each edge
	}
}

// endNode closes the node's run and its series' sums.
func (b *builder) endNode() {
	if b.ns == nil {
		return
	}
	b.closeRun()
	for i := range b.accs {
		b.flush(i)
	}
}

// flush appends series i's sum as a span.
func (b *builder) flush(i int) {
	a := &b.accs[i]
	if a.run < 0 {
		return
	}
	b.out[i].Usage = append(b.out[i].Usage, a.e.Usage(time.Unix(a.start, 0).UTC(), time.Unix(a.end, 0).UTC()))
	a.run = -1
}

func (b *builder) closeRun() {
	if !b.run.open {
		return
	}
	nu := b.run.seg.NodeUsage(b.node)
	nu.Start, nu.End = time.Unix(b.run.start, 0).UTC(), time.Unix(b.run.end, 0).UTC()
	nu.Hours = float64(b.run.observedMs) / 3.6e6
	b.usage = append(b.usage, nu)
	b.run.open = false
}

// segment adds a node segment to the current run, or starts another.
func (b *builder) segment(s *Segment) {
	stepIdx, whole := int64(0), true
	if b.step > 0 {
		stepIdx = (s.Start - b.ws) / b.step
		if s.Start < b.ws {
			stepIdx = -1
		}
		stepEnd := min(b.ws+(stepIdx+1)*b.step, b.we)
		whole = s.Start >= b.ws && s.End <= stepEnd
	}
	rn := &b.run
	if b.step > 0 && whole && rn.open && rn.end == s.Start && rn.stepIdx == stepIdx && rn.seg.sameTerms(s) {
		rn.end = s.End
		rn.observedMs += s.ObservedMs
		return
	}
	b.closeRun()
	rn.id++
	rn.open, rn.start, rn.end, rn.stepIdx, rn.observedMs = true, s.Start, s.End, stepIdx, s.ObservedMs
	rn.seg = Segment{Node: s.Node, Rates: s.Rates}
	if !whole {
		rn.stepIdx = -2 // across a step's edge: merges with nothing
	}
}

// record adds the segments of a record that overlap [ws, we).
func (b *builder) record(v []byte) error {
	var err error
	derr := decodeRecord(v, func(s *Segment, n int) bool {
		if s.End <= b.ws || s.Start >= b.we {
			return false
		}
		if b.spans += n; b.spans > b.r.cfg.MaxSpans {
			err = fmt.Errorf("%w: more than %d container spans", kvraft.ErrTooLarge, b.r.cfg.MaxSpans)
			return false
		}
		b.segment(s)
		b.segStart = s.Start
		return true
	}, func(e *Entry) { b.entry(e, b.segStart, b.run.end) })
	if derr != nil {
		return derr
	}
	return err
}

// entry adds a container's quantities to its sum over the current run:
// from start, where its segment starts, to end, where its last ends.
func (b *builder) entry(e *Entry, start, end int64) {
	idx, ok := b.ns.get(e.Ref)
	if !ok {
		idx = len(b.out)
		b.ns.set(e.Ref, idx)
		b.out = append(b.out, cost.Series{Usage: make([]cost.Usage, 0, max(b.ns.spans, 1))})
		b.keys = append(b.keys, seriesKey{b.node, e.Ref})
		b.accs = append(b.accs, acc{run: -1})
	}
	a := &b.accs[idx]
	if a.run != b.run.id {
		b.flush(idx)
		a.run, a.start, a.e = b.run.id, start, *e
	} else {
		a.e.Add(e)
	}
	a.end = end
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
		ids, err := b.r.nodeIdentities(node, res.Items)
		if err != nil {
			return err
		}
		for _, i := range byNode[node] {
			ref := b.keys[i].ref
			k, ok := slices.BinarySearch(ids.refs, ref)
			if !ok {
				// Not written (a roll lost between its records and
				// identity cannot happen; an expired identity can, past
				// retention): the container is known by its ref alone.
				b.out[i].Container = cost.Container{Node: node, Container: fmt.Sprintf("ref-%x", ref)}
				continue
			}
			if err := ids.errs[k]; err != nil {
				return fmt.Errorf("identity %x of %s: %w", ref, node, err)
			}
			b.out[i].Container = ids.cs[k]
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
	// Series come by node, in node order: sort each node's.
	cmp := func(x, y int) int {
		a, c := &b.out[x].Container, &b.out[y].Container
		return cmpSeries(a, c, b.keys[x].ref, b.keys[y].ref)
	}
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && b.keys[j].node == b.keys[i].node {
			j++
		}
		slices.SortFunc(idx[i:j], cmp)
		i = j
	}
	if !slices.IsSortedFunc(idx, cmp) {
		slices.SortFunc(idx, cmp)
	}
	out := make([]cost.Series, len(idx))
	for i, j := range idx {
		out[i] = b.out[j]
	}
	slices.SortFunc(b.usage, func(x, y cost.NodeUsage) int {
		if c := strings.Compare(x.Node, y.Node); c != 0 {
			return c
		}
		return x.Start.Compare(y.Start)
	})
	return out, b.usage, nil
}

func byStart(a, b cost.Usage) int { return a.Start.Compare(b.Start) }

func cmpSeries(a, b *cost.Container, ra, rb uint64) int {
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Pod, b.Pod); c != 0 {
		return c
	}
	if c := strings.Compare(a.Container, b.Container); c != 0 {
		return c
	}
	return cmpU(ra, rb)
}

// keyParser parses the time keys of one read, checking each node name
// once and sharing its string.
type keyParser map[string]string

func (kp keyParser) parse(p string, k []byte) (int64, string, error) {
	rest, ok := bytes.CutPrefix(k, []byte(p))
	if !ok || len(rest) < timeDigits+2 || rest[timeDigits] != '/' {
		return 0, "", fmt.Errorf("%w: key %q", ErrCorrupt, k)
	}
	var sec int64
	for _, c := range rest[:timeDigits] {
		if c < '0' || c > '9' {
			return 0, "", fmt.Errorf("%w: key %q", ErrCorrupt, k)
		}
		sec = sec*10 + int64(c-'0')
	}
	nb := rest[timeDigits+1:]
	node, ok := kp[string(nb)]
	if !ok {
		node = string(nb)
		if model.ValidNode(node) != nil {
			return 0, "", fmt.Errorf("%w: key %q", ErrCorrupt, k)
		}
		kp[node] = node
	}
	return sec, node, nil
}
