package cost

import (
	"fmt"
	"slices"
	"sort"
)

// nodeState is one node during a Compute: its spans, and per step what it
// offered (cap) and what its containers were allocated (alloc).
type nodeState struct {
	name   string
	spans  []*NodeUsage // sorted by Start
	prices []prices     // per span
	st, en []int64      // span bounds in Unix nanoseconds
	cur    int          // the first span that may overlap the current step
	// guessed: some container on it was priced at the default rates.
	guessed bool
	// pods: some series on it belongs to a pod, so its cgroups outside
	// pods are reserved (seriesState.reserved).
	pods bool

	// cap is the node's allocatable core-seconds and byte-seconds, their
	// cost, and the span the node data covers, in the current step.
	cap acc
	// alloc sums its containers' cells; matchedCPU and matchedRAM the cost
	// of those the filter selects.
	alloc                  acc
	matchedCPU, matchedRAM float64
}

// prices are Rates per unit of Usage: per core-second, byte-second and
// byte.
type prices struct {
	coreSec, byteSec, inetByte, clusterByte float64
}

func pricesOf(r *Rates) prices {
	return prices{
		coreSec:     r.CPUCoreHour / 3600,
		byteSec:     r.RAMGiBHour / 3600 / GiB,
		inetByte:    r.EgressInternetGiB / GiB,
		clusterByte: r.EgressClusterGiB / GiB,
	}
}

func (c *computation) prepareNodes(nodes []NodeUsage) error {
	c.nodeIndex = map[string]int{}
	for i := range nodes {
		n := &nodes[i]
		if err := n.Validate(); err != nil {
			return fmt.Errorf("%w: node %q span %d: %v", ErrBadInput, n.Node, i, err)
		}
		if err := c.currency(&n.Rates); err != nil {
			return err
		}
		ns := &c.nodes[c.node(n.Node)]
		ns.spans = append(ns.spans, n)
	}
	for i := range c.nodes {
		ns := &c.nodes[i]
		slices.SortStableFunc(ns.spans, func(a, b *NodeUsage) int { return a.Start.Compare(b.Start) })
		ns.st = make([]int64, len(ns.spans))
		ns.en = make([]int64, len(ns.spans))
		ns.prices = make([]prices, len(ns.spans))
		for j, sp := range ns.spans {
			ns.st[j], ns.en[j] = sp.Start.UnixNano(), sp.End.UnixNano()
			ns.prices[j] = pricesOf(&sp.Rates)
		}
	}
	return nil
}

// pricesAt returns the prices of the node span that covers t, else of the
// nearest span before t, else of the first one; nil for a node without
// spans. *k remembers the span for the next call: a container's spans come
// in order, so the next one is usually the same or the next span.
func (n *nodeState) pricesAt(k *int, t int64) *prices {
	if len(n.spans) == 0 {
		return nil
	}
	i := *k
	if i >= len(n.spans) || t < n.st[i] || t >= n.en[i] {
		if i+1 < len(n.spans) && t >= n.st[i+1] && t < n.en[i+1] {
			i++
		} else {
			i = sort.Search(len(n.spans), func(j int) bool { return n.en[j] > t })
			if i == len(n.spans) || t < n.st[i] {
				i = max(i-1, 0)
			}
		}
		*k = i
	}
	return &n.prices[i]
}

// capacity sums the node's spans that overlap [ws, we), prorated, and
// resets what its containers were allocated.
func (n *nodeState) capacity(ws, we int64) {
	n.cap, n.alloc = acc{}, acc{}
	n.matchedCPU, n.matchedRAM = 0, 0
	for j := n.cur; j < len(n.spans); j++ {
		if n.st[j] >= we {
			break
		}
		os, oe := max(n.st[j], ws), min(n.en[j], we)
		if oe <= os {
			continue
		}
		sp := n.spans[j]
		f := float64(oe-os) / float64(n.en[j]-n.st[j])
		hours := f * sp.Hours
		n.cap.cpuAlloc += hours * 3600 * sp.CPUCores
		n.cap.ramAlloc += hours * 3600 * sp.RAMBytes
		n.cap.cpuCost += hours * sp.CPUCores * sp.Rates.CPUCoreHour
		n.cap.ramCost += hours * sp.RAMBytes / GiB * sp.Rates.RAMGiBHour
		n.cap.span(os, oe)
	}
	for n.cur < len(n.spans) && n.en[n.cur] <= we {
		n.cur++
	}
}

// idleOf is what a node offered and its containers were not allocated,
// never below zero: containers charged for more than the node offers (usage
// above request on a full node) leave no idle, and are not scaled down.
type idleOf struct {
	cpuCost, ramCost float64
	coreSec, byteSec float64
}

func (n *nodeState) idleOf() idleOf {
	return idleOf{
		cpuCost: max(0, n.cap.cpuCost-n.alloc.cpuCost),
		ramCost: max(0, n.cap.ramCost-n.alloc.ramCost),
		coreSec: max(0, n.cap.cpuAlloc-n.alloc.cpuAlloc),
		byteSec: max(0, n.cap.ramAlloc-n.alloc.ramAlloc),
	}
}

// idle computes each node's idle in the current step. With shareIdle it gives each
// selected container its part of its node's (or cluster's) idle: CPU idle
// in proportion to its CPU cost, memory idle to its memory cost; what no
// container can take (no container there had a CPU or memory cost) stays
// idle. Without shareIdle but with a filter, a node's idle shrinks to the
// share the selected containers have of its allocated cost, so the idle
// shown is what sharing would have given them, as OpenCost does. Idle
// allocations go to the aggregates when the query includes idle.
func (c *computation) idle() {
	q := c.q
	idles := make([]idleOf, len(c.nodes))
	for i := range c.nodes {
		idles[i] = c.nodes[i].idleOf()
	}
	if q.ShareIdle {
		c.shareIdle(idles)
	} else if q.Filter != nil {
		for i := range c.nodes {
			n := &c.nodes[i]
			rowMatch := c.idleMatch(n)
			cpu := share(n.matchedCPU, n.alloc.cpuCost, rowMatch)
			ram := share(n.matchedRAM, n.alloc.ramCost, rowMatch)
			idles[i].cpuCost *= cpu
			idles[i].coreSec *= cpu
			idles[i].ramCost *= ram
			idles[i].byteSec *= ram
		}
	}
	if !q.Idle {
		return
	}
	for i := range c.nodes {
		n := &c.nodes[i]
		id := idles[i]
		if !n.cap.has {
			continue
		}
		left := id.cpuCost + id.ramCost + id.coreSec + id.byteSec
		if q.ShareIdle || q.Filter != nil {
			if left == 0 || !c.idleMatch(n) && q.ShareIdle {
				continue
			}
		}
		a := acc{has: true, start: n.cap.start, end: n.cap.end, cpuAlloc: id.coreSec, ramAlloc: id.byteSec, cpuCost: id.cpuCost, ramCost: id.ramCost}
		name := IdleSuffix
		if q.SplitIdle {
			if q.IdleByNode {
				name = c.m.cfg.Cluster + "/" + n.name + "/" + IdleSuffix
			} else {
				name = c.m.cfg.Cluster + "/" + IdleSuffix
			}
		}
		props := Properties{Cluster: c.m.cfg.Cluster, Node: n.name}
		c.keys[c.key(name)].merge(&a, &props, -2-i, q.IncludeAggregatedMetadata)
	}
}

// share is the part of a node's idle a filter keeps: the selected
// containers' share part/all of the node's allocated cost; for a node
// whose containers had no such cost, all of it if the filter selects the
// idle allocation itself, else none.
func share(part, all float64, rowMatch bool) float64 {
	if all > 0 {
		return part / all
	}
	if rowMatch {
		return 1
	}
	return 0
}

// idleMatch reports whether the filter selects node n's idle allocation,
// whose properties are its cluster and node.
func (c *computation) idleMatch(n *nodeState) bool {
	return c.q.Filter.Match(&Properties{Cluster: c.m.cfg.Cluster, Node: n.name}, "")
}

// shareIdle distributes idle to the selected containers' cells and leaves
// in idles only what could not be distributed.
func (c *computation) shareIdle(idles []idleOf) {
	group := func(node int) int {
		if c.q.IdleByNode {
			return node
		}
		return 0
	}
	type totals struct {
		cpuCost, ramCost float64 // allocated, all containers
		idle             idleOf
	}
	gs := make([]totals, len(c.nodes))
	for i := range c.nodes {
		g := &gs[group(i)]
		g.cpuCost += c.nodes[i].alloc.cpuCost
		g.ramCost += c.nodes[i].alloc.ramCost
		g.idle.cpuCost += idles[i].cpuCost
		g.idle.ramCost += idles[i].ramCost
		g.idle.coreSec += idles[i].coreSec
		g.idle.byteSec += idles[i].byteSec
	}
	for i := range c.series {
		s := &c.series[i]
		cell := &c.cells[i]
		if !cell.has || !s.match || s.reserved {
			continue
		}
		g := &gs[group(s.node)]
		if g.cpuCost > 0 {
			k := cell.cpuCost / g.cpuCost
			cell.cpuCost += k * g.idle.cpuCost
			cell.cpuIdle += k * g.idle.cpuCost
			cell.cpuAlloc += k * g.idle.coreSec
		}
		if g.ramCost > 0 {
			k := cell.ramCost / g.ramCost
			cell.ramCost += k * g.idle.ramCost
			cell.ramIdle += k * g.idle.ramCost
			cell.ramAlloc += k * g.idle.byteSec
		}
	}
	for i := range c.nodes {
		g := &gs[group(i)]
		if g.cpuCost > 0 {
			idles[i].cpuCost, idles[i].coreSec = 0, 0
		}
		if g.ramCost > 0 {
			idles[i].ramCost, idles[i].byteSec = 0, 0
		}
	}
}
