package cost

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultCluster is OpenCost's default cluster id.
	DefaultCluster        = "cluster-one"
	DefaultMaxAllocations = 1_000_000
)

// ErrTooLarge means a result would hold more than Config.MaxAllocations
// allocations: the query should aggregate more, or use a longer step.
var ErrTooLarge = errors.New("cost: result too large")

// Config configures a Model.
type Config struct {
	// Cluster names the cluster in properties and keys (DefaultCluster).
	Cluster string
	// TenantLabel is the pod label that names a tenant
	// (DefaultTenantLabel); without it a container's tenant is its
	// namespace.
	TenantLabel string
	// DefaultRates price a container whose node has no NodeUsage at all
	// (nil: DefaultRates). The result warns when they were used.
	DefaultRates *Rates
	// MaxAllocations bounds the allocations of one result, over all its
	// sets (DefaultMaxAllocations).
	MaxAllocations int
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Cluster == "" {
		c.Cluster = DefaultCluster
	}
	if c.TenantLabel == "" {
		c.TenantLabel = DefaultTenantLabel
	}
	if c.DefaultRates == nil {
		r := DefaultRates
		c.DefaultRates = &r
	}
	if c.MaxAllocations == 0 {
		c.MaxAllocations = DefaultMaxAllocations
	}
}

// Validate checks a completed config; it changes nothing.
func (c *Config) Validate() error {
	if strings.Contains(c.Cluster, "/") {
		return fmt.Errorf("cost: cluster %q: no / in a cluster name (it separates key parts)", c.Cluster)
	}
	if c.MaxAllocations < 1 {
		return errors.New("cost: MaxAllocations must be positive")
	}
	if c.DefaultRates != nil {
		if err := c.DefaultRates.validate(); err != nil {
			return fmt.Errorf("cost: default rates: %w", err)
		}
	}
	return nil
}

// Model prices usage. It holds no state between calls; one Model serves
// concurrent Computes.
type Model struct {
	cfg Config
}

// New returns a Model.
func New(cfg Config) (*Model, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Model{cfg: cfg}, nil
}

// Result is a priced query: one Set per step, or one in all with
// accumulate.
type Result struct {
	Window Window
	Sets   []Set
	// Currency of every cost.
	Currency string
	// Warnings say what was priced on a guess (containers on nodes with no
	// node data).
	Warnings []string
}

// Set is the allocations of one step, by aggregation key.
type Set struct {
	Window      Window
	Allocations map[string]*Allocation
}

// Response is the result in OpenCost's envelope.
func (r *Result) Response() *Response {
	resp := &Response{Code: 200, Status: "success", Data: make([]map[string]*Allocation, len(r.Sets)), Currency: r.Currency}
	for i, s := range r.Sets {
		resp.Data[i] = s.Allocations
	}
	resp.Warning = strings.Join(r.Warnings, "; ")
	return resp
}

// acc sums one container's (or one aggregate's) quantities over a step.
// Times are Unix nanoseconds.
type acc struct {
	has                      bool
	start, end               int64
	cpuUse, cpuReq, cpuAlloc float64 // core-seconds
	ramUse, ramReq, ramAlloc float64 // byte-seconds
	egress                   float64 // bytes
	requests                 float64
	cpuCost, ramCost         float64
	netCost, netInetCost     float64
	cpuIdle, ramIdle         float64 // shared idle, included in the costs
}

func (a *acc) span(s, e int64) {
	if !a.has || s < a.start {
		a.start = s
	}
	if !a.has || e > a.end {
		a.end = e
	}
	a.has = true
}

func (a *acc) add(b *acc) {
	a.span(b.start, b.end)
	a.cpuUse += b.cpuUse
	a.cpuReq += b.cpuReq
	a.cpuAlloc += b.cpuAlloc
	a.ramUse += b.ramUse
	a.ramReq += b.ramReq
	a.ramAlloc += b.ramAlloc
	a.egress += b.egress
	a.requests += b.requests
	a.cpuCost += b.cpuCost
	a.ramCost += b.ramCost
	a.netCost += b.netCost
	a.netInetCost += b.netInetCost
	a.cpuIdle += b.cpuIdle
	a.ramIdle += b.ramIdle
}

func (a *acc) allocation(name string, props Properties, w Window) *Allocation {
	al := &Allocation{
		Name:                 name,
		Properties:           props,
		Window:               w,
		Start:                time.Unix(0, a.start).UTC(),
		End:                  time.Unix(0, a.end).UTC(),
		CPUCoreHours:         a.cpuAlloc / 3600,
		CPUCost:              a.cpuCost,
		CPUCostIdle:          a.cpuIdle,
		RAMByteHours:         a.ramAlloc / 3600,
		RAMCost:              a.ramCost,
		RAMCostIdle:          a.ramIdle,
		NetworkTransferBytes: a.egress,
		NetworkCost:          a.netCost,
		NetworkInternetCost:  a.netInetCost,
		Requests:             a.requests,
	}
	if secs := float64(a.end-a.start) / 1e9; secs > 0 {
		al.CPUCoreRequestAverage = a.cpuReq / secs
		al.CPUCoreUsageAverage = a.cpuUse / secs
		al.RAMBytesRequestAverage = a.ramReq / secs
		al.RAMBytesUsageAverage = a.ramUse / secs
	}
	return al
}

// seriesState is one container during a Compute.
type seriesState struct {
	rows   []Usage // sorted by Start
	props  Properties
	tenant string
	node   int
	key    int
	match  bool
	// reserved: a cgroup outside any pod on a node that runs pods (the
	// kubelet, the container runtime, systemd units). It runs in the
	// capacity the kubelet reserves, outside what the node offers its
	// pods: priced, but not allocated from the node, so it takes nothing
	// from the node's idle and no share of it.
	reserved bool
	cur      int // first row that may overlap the current step
	ncur     int // the node span that priced the last row
}

// keyAcc is one aggregate: its sums, its properties, and which series it
// holds (one, or many: -1).
type keyAcc struct {
	acc
	props  Properties
	member int
}

func (k *keyAcc) merge(a *acc, props *Properties, member int, meta bool) {
	switch {
	case !k.has:
		k.props, k.member = *props, member
	case k.member != member:
		k.props.intersect(props, meta)
		k.member = -1
	}
	k.add(a)
}

// Compute prices series and nodes for q. It reads its arguments and never
// writes them; spans may come in any order.
func (m *Model) Compute(q *Query, series []Series, nodes []NodeUsage) (*Result, error) {
	res, err := m.compute(q, series, nodes, nil)
	if errors.Is(err, errUnsorted) {
		// Rare: the store reads spans in order. Sort copies and start over.
		rows := make([][]Usage, len(series))
		for i := range series {
			rows[i] = series[i].Usage
			if !slices.IsSortedFunc(rows[i], byStart) {
				rows[i] = slices.Clone(rows[i])
				slices.SortStableFunc(rows[i], byStart)
			}
		}
		res, err = m.compute(q, series, nodes, rows)
	}
	return res, err
}

func byStart(a, b Usage) int { return a.Start.Compare(b.Start) }

// errUnsorted: a series' spans are not sorted by Start.
var errUnsorted = errors.New("cost: spans out of order")

// compute is Compute over series whose spans are rows (nil: their own);
// it fails with errUnsorted when it meets spans out of order.
func (m *Model) compute(q *Query, series []Series, nodes []NodeUsage, rows [][]Usage) (*Result, error) {
	switch d := q.Window.Duration(); {
	case d <= 0:
		return nil, fmt.Errorf("%w: empty window", ErrInvalid)
	case q.Step < 0 || q.Step > 0 && q.Step < MinStep:
		return nil, fmt.Errorf("%w: step %v is shorter than %v", ErrInvalid, q.Step, MinStep)
	case q.Step > 0 && (d+q.Step-1)/q.Step > time.Duration(m.cfg.MaxAllocations):
		return nil, fmt.Errorf("%w: more steps than %d allocations", ErrTooLarge, m.cfg.MaxAllocations)
	}
	steps := q.Steps()
	c := computation{m: m, q: q, in: series, maxAllocs: m.cfg.MaxAllocations, defPrices: pricesOf(m.cfg.DefaultRates)}
	if err := c.prepareNodes(nodes); err != nil {
		return nil, err
	}
	c.prepareSeries(series, rows)
	res := &Result{Window: q.Window}
	for k, w := range steps {
		if err := c.step(w, k == len(steps)-1); err != nil {
			return nil, err
		}
		if !q.Accumulate {
			set, err := c.emit(w)
			if err != nil {
				return nil, err
			}
			res.Sets = append(res.Sets, set)
		}
	}
	if q.Accumulate {
		set, err := c.emit(q.Window)
		if err != nil {
			return nil, err
		}
		res.Sets = []Set{set}
	}
	res.Currency = c.cur
	if res.Currency == "" {
		res.Currency = m.cfg.DefaultRates.Currency
	}
	if c.guessed > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d usage spans on nodes without node data (%s) were priced at the default rates",
			c.guessed, strings.Join(c.guessedNodes(), ", ")))
	}
	return res, nil
}

// computation is the state of one Compute.
type computation struct {
	m         *Model
	q         *Query
	in        []Series
	series    []seriesState
	defPrices prices
	nodes     []nodeState
	nodeIndex map[string]int
	cells     []acc    // per series, the current step
	keys      []keyAcc // per aggregation key, the current step (or all)
	keyNames  []string
	keyIndex  map[string]int
	cur       string
	guessed   int
	allocs    int
	maxAllocs int
}

func (c *computation) node(name string) int {
	if i, ok := c.nodeIndex[name]; ok {
		return i
	}
	c.nodeIndex[name] = len(c.nodes)
	c.nodes = append(c.nodes, nodeState{name: name})
	return len(c.nodes) - 1
}

func (c *computation) key(name string) int {
	if i, ok := c.keyIndex[name]; ok {
		return i
	}
	c.keyIndex[name] = len(c.keyNames)
	c.keyNames = append(c.keyNames, name)
	c.keys = append(c.keys, keyAcc{})
	return len(c.keyNames) - 1
}

// currency checks that every price is in one currency.
func (c *computation) currency(r *Rates) error {
	if r.Currency == c.cur {
		return nil
	}
	if c.cur == "" {
		c.cur = r.Currency
		return nil
	}
	if r.Currency == "" {
		return nil
	}
	return fmt.Errorf("%w: prices in %s and %s", ErrBadInput, c.cur, r.Currency)
}

func (c *computation) prepareSeries(series []Series, rows [][]Usage) {
	agg := c.q.Aggregate
	if agg == nil {
		agg = defaultAggregate
	}
	c.series = make([]seriesState, len(series))
	c.cells = make([]acc, len(series))
	c.keyIndex = make(map[string]int, len(series))
	for i := range series {
		in := &series[i]
		s := &c.series[i]
		s.rows = in.Usage
		if rows != nil {
			s.rows = rows[i]
		}
		s.props = Properties{
			Cluster:        c.m.cfg.Cluster,
			Node:           in.Node,
			Container:      in.Container.Container,
			Controller:     in.Controller,
			ControllerKind: in.ControllerKind,
			Namespace:      in.Namespace,
			Pod:            in.Pod,
			Labels:         in.Labels,
		}
		s.tenant = Tenant(&in.Container, c.m.cfg.TenantLabel)
		s.node = c.node(in.Node)
		if in.Pod != "" {
			c.nodes[s.node].pods = true
		}
		s.match = c.q.Filter.Match(&s.props, s.tenant)
		if s.match {
			s.key = c.key(aggregationKey(agg, &s.props, s.tenant))
		}
	}
	for i := range c.series {
		s := &c.series[i]
		s.reserved = series[i].Pod == "" && c.nodes[s.node].pods
	}
}

// step sums every container's spans in w, prices them, computes each
// node's idle, shares it when asked, and adds the containers and idle to
// the aggregates.
func (c *computation) step(w Window, final bool) error {
	ws, we := w.Start.UnixNano(), w.End.UnixNano()
	for i := range c.nodes {
		c.nodes[i].capacity(ws, we)
	}
	for i := range c.series {
		if err := c.sumSeries(i, ws, we, final); err != nil {
			return err
		}
	}
	c.idle()
	meta := c.q.IncludeAggregatedMetadata
	for i := range c.series {
		s := &c.series[i]
		if cell := &c.cells[i]; cell.has && s.match {
			c.keys[s.key].merge(cell, &s.props, i, meta)
		}
	}
	return nil
}

// sumSeries sums series i's spans that overlap [ws, we) into its cell,
// prorated by overlap, and adds the cell to its node's allocated totals.
// It is the hot loop: a week of hourly spans of 5,000 pods is 840,000
// spans.
func (c *computation) sumSeries(i int, ws, we int64, final bool) error {
	s := &c.series[i]
	n := &c.nodes[s.node]
	// Sums in locals, so they stay in registers.
	var (
		has                      bool
		start, end               int64
		cpuUse, cpuReq, cpuAlloc float64
		ramUse, ramReq, ramAlloc float64
		egress, cpuCost, ramCost float64
		netCost, netInetCost     float64
		requests                 float64
	)
	last := len(s.rows) - 1
	// Spans must come sorted by Start. Every span is met in order, in some
	// step: the final step reads to the end, past the window.
	prev := int64(math.MinInt64)
	if s.cur > 0 {
		prev = s.rows[s.cur-1].Start.UnixNano()
	}
	for j := s.cur; j <= last; j++ {
		r := &s.rows[j]
		rs := r.Start.UnixNano()
		if rs < prev {
			return errUnsorted
		}
		prev = rs
		if rs >= we && !final {
			break
		}
		re := r.End.UnixNano()
		if re <= rs {
			return c.badSpan(i, j)
		}
		os, oe := max(rs, ws), min(re, we)
		if oe <= os {
			continue
		}
		f := 1.0
		if oe-os != re-rs {
			f = float64(oe-os) / float64(re-rs)
		}
		var p *prices
		switch k := s.ncur; {
		case k < len(n.st) && rs >= n.st[k] && rs < n.en[k]:
			p = &n.prices[k]
		case k+1 < len(n.st) && rs >= n.st[k+1] && rs < n.en[k+1]:
			s.ncur++
			p = &n.prices[k+1]
		default:
			if p = n.pricesAt(&s.ncur, rs); p == nil {
				if err := c.guess(n); err != nil {
					return err
				}
				p = &c.defPrices
			}
		}
		cpuUse += f * r.UsageCoreSeconds
		cpuReq += f * r.RequestCoreSeconds
		cpuAlloc += f * r.AllocCoreSeconds
		ramUse += f * r.UsageByteSeconds
		ramReq += f * r.RequestByteSeconds
		ramAlloc += f * r.AllocByteSeconds
		egress += f * (r.EgressInternetBytes + r.EgressClusterBytes)
		requests += f * r.Requests
		cpuCost += f * r.AllocCoreSeconds * p.coreSec
		ramCost += f * r.AllocByteSeconds * p.byteSec
		inet := f * r.EgressInternetBytes * p.inetByte
		netInetCost += inet
		netCost += inet + f*r.EgressClusterBytes*p.clusterByte
		// The data's own bounds: a container observed for less than its
		// first span started late in it, for less than its last span
		// stopped early.
		ds, de := rs, re
		if obs := int64(r.Seconds * 1e9); obs < re-rs {
			if j == 0 {
				ds = re - obs
			} else if j == last {
				de = rs + obs
			}
		}
		if ds, de = max(ds, ws), min(de, we); de <= ds {
			ds, de = os, oe
		}
		if !has || ds < start {
			start = ds
		}
		if !has || de > end {
			end = de
		}
		has = true
	}
	for s.cur <= last && s.rows[s.cur].End.UnixNano() <= we {
		s.cur++
	}
	cell := &c.cells[i]
	*cell = acc{has: has, start: start, end: end, cpuUse: cpuUse, cpuReq: cpuReq, cpuAlloc: cpuAlloc,
		ramUse: ramUse, ramReq: ramReq, ramAlloc: ramAlloc, egress: egress, cpuCost: cpuCost, ramCost: ramCost,
		netCost: netCost, netInetCost: netInetCost, requests: requests}
	if !has {
		return nil
	}
	if !cell.valid() {
		in := &c.in[i]
		return fmt.Errorf("%w: container %s/%s/%s: its spans add up to a negative or non-finite quantity",
			ErrBadInput, in.Namespace, in.Pod, in.Container.Container)
	}
	if s.reserved {
		return nil
	}
	n.alloc.add(cell)
	if s.match {
		n.matchedCPU += cell.cpuCost
		n.matchedRAM += cell.ramCost
	}
	return nil
}

// valid reports whether every sum is finite and non-negative: a NaN, an
// infinity or a negative quantity in a span shows in the sums.
func (a *acc) valid() bool {
	for _, v := range [...]float64{a.cpuUse, a.cpuReq, a.cpuAlloc, a.ramUse, a.ramReq, a.ramAlloc, a.egress, a.requests} {
		if !(v >= 0 && v <= math.MaxFloat64) {
			return false
		}
	}
	return true
}

func (c *computation) badSpan(i, j int) error {
	in := &c.in[i]
	return fmt.Errorf("%w: container %s/%s/%s span %d: %v", ErrBadInput, in.Namespace, in.Pod, in.Container.Container, j, c.series[i].rows[j].Validate())
}

// guess notes a span priced at the default rates, on node n that has no
// node data.
func (c *computation) guess(n *nodeState) error {
	if c.guessed == 0 {
		if err := c.currency(c.m.cfg.DefaultRates); err != nil {
			return err
		}
	}
	c.guessed++
	n.guessed = true
	return nil
}

// emit turns the aggregates into a Set for window w and resets them.
func (c *computation) emit(w Window) (Set, error) {
	set := Set{Window: w, Allocations: map[string]*Allocation{}}
	for i := range c.keys {
		k := &c.keys[i]
		if !k.has {
			continue
		}
		if c.allocs++; c.allocs > c.maxAllocs {
			return set, fmt.Errorf("%w: more than %d allocations: aggregate more or use a longer step", ErrTooLarge, c.maxAllocs)
		}
		set.Allocations[c.keyNames[i]] = k.allocation(c.keyNames[i], k.props, w)
		*k = keyAcc{}
	}
	return set, nil
}

func (c *computation) guessedNodes() []string {
	var names []string
	for i := range c.nodes {
		if c.nodes[i].guessed {
			names = append(names, c.nodes[i].name)
		}
	}
	slices.Sort(names)
	return names
}
