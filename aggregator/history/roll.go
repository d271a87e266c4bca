package history

import (
	"math"
	"math/bits"
	"slices"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/internal/nodemeta"
)

// The arithmetic of one roll of one node, with no I/O: from what the store
// holds of the node (its agent record, live series, final records of
// series that ended, and the cursor), the span to roll, each container's
// quantities over it, and the next cursor.

const (
	hourMs = 3_600_000
	// maxFoldMs bounds the span of one roll: a span nobody rolled for
	// longer (no leader for two days) is rolled into its last 48 hours.
	maxFoldMs = 48 * hourMs
)

// goneRecord is a final record and its key.
type goneRecord struct {
	Key   []byte
	Final *model.Final
}

// rollInput is what a roll of one node reads.
type rollInput struct {
	Node string
	// Agent is the node's agent record (nil: none, the node was deleted).
	Agent *model.Agent
	// Series are the node's live series, with their metadata.
	Series []*model.Stored
	// Gone are the node's final records, in key order; GoneAll says they
	// are all of them.
	Gone    []goneRecord
	GoneAll bool
	// Cursor is the node's cursor (nil: never rolled).
	Cursor *Cursor
	// Silent says the agent stopped sending: roll everything it sent.
	Silent  bool
	Measure cost.MemoryMeasure
	// Rates prices the node.
	Rates func(pricing.Facts) cost.Rates
}

// rollOutput is what a roll writes.
type rollOutput struct {
	// Spans are the records to write, in order, each within one hour.
	Spans  []Segment
	Cursor *Cursor
	// Identities are the identities to write, by ref.
	Identities map[uint64]*Identity
	// Consumed are the final records rolled up, to delete.
	Consumed [][]byte
	// Anomalies counts series whose values could not be taken at the
	// roll's time (a sample time after their node's): taken as they are.
	Anomalies int
	// Lag is how far the span's end is behind the newest sample, ms.
	TargetMs int64
}

func floorMinute(ms int64) int64 { return model.Boundary(ms + 1) }

func ceilMinute(ms int64) int64 { return -floorMinute(-ms) }

func floorHour(ms int64) int64 {
	h := ms / hourMs * hourMs
	if h > ms {
		h -= hourMs
	}
	return h
}

// lifetime is one lifetime of a series met in a roll.
type lifetime struct {
	pathHash uint64
	path     string
	born     int64
	v        model.Cumulative
	meta     map[string]string
	alive    bool // alive at the roll's time: it keeps a cursor entry
}

type lifeKey struct {
	pathHash uint64
	born     int64
}

type refState struct {
	ref, idHash uint64
	idHour      int64
}

// roll computes the roll of one node; nil when there is nothing to roll.
func roll(in *rollInput) *rollOutput {
	a := in.Agent
	if a != nil && a.Accrual.Born == 0 {
		return nil // no frame since accruals exist
	}
	var target, at int64 // the span's end, and the time values are taken at
	switch {
	case a == nil:
		if len(in.Gone) == 0 {
			return nil
		}
		for _, g := range in.Gone {
			at = max(at, g.Final.EndMs)
		}
		target = ceilMinute(at)
	case in.Silent:
		at = model.Ms(a.Time) + model.Ms(a.Interval)
		target = ceilMinute(at)
	default:
		at = model.Boundary(model.Ms(a.Time))
		target = at
	}
	cur := in.Cursor
	if cur != nil && target <= cur.MinuteMs {
		if a != nil {
			return nil
		}
		// Final records of a deleted node that the cursor already covers
		// (a silent node rolled whole, then restarted): rolled with the
		// next minute, so that they go.
		target = cur.MinuteMs + model.MinuteMs
	}
	start := rollStart(in, target)

	out := &rollOutput{Identities: map[uint64]*Identity{}, TargetMs: target}
	// Lifetimes that ended first, then the live ones: a path's ref
	// follows its latest identity.
	lives := make([]lifetime, 0, len(in.Series)+len(in.Gone))
	for _, g := range in.Gone {
		f := g.Final
		l := lifetime{pathHash: pathHash(f.Path), path: f.Path, born: f.Accrual.Born, meta: f.Meta}
		if f.EndMs <= at {
			l.v, _ = f.CumulativeAt(f.EndMs)
			out.Consumed = append(out.Consumed, g.Key)
		} else {
			// Ended after the boundary: its part up to it now, the rest
			// with the next roll.
			var ok bool
			if l.v, ok = f.CumulativeAt(at); !ok {
				out.Anomalies++
			}
			l.alive = true
		}
		if l.born != 0 {
			lives = append(lives, l)
		}
	}
	for _, s := range in.Series {
		if s.Accrual.Born == 0 {
			continue // not written since accruals exist
		}
		v, ok := s.CumulativeAt(at)
		if !ok {
			out.Anomalies++
		}
		lives = append(lives, lifetime{pathHash: pathHash(s.Path), path: s.Path, born: s.Accrual.Born, v: v,
			meta: s.Meta, alive: true})
	}

	// Baselines and refs from the cursor.
	next := &Cursor{MinuteMs: target, NextRef: 1}
	base := map[lifeKey]*CursorEntry{}
	refs := map[uint64]refState{}
	if cur != nil {
		next.NodeBorn, next.NodeObservedMs, next.NextRef = cur.NodeBorn, cur.NodeObservedMs, max(cur.NextRef, 1)
		for i := range cur.Entries {
			e := &cur.Entries[i]
			base[lifeKey{e.PathHash, e.Born}] = e
			if r, ok := refs[e.PathHash]; e.Ref != 0 && (!ok || r.ref == 0) {
				refs[e.PathHash] = refState{e.Ref, e.IDHash, e.IDHour}
			}
		}
	}
	hour := floorHour(target-1) / 1000
	lastSeen := hour + hourMs/1000
	entries := map[uint64]*Entry{}
	used := map[lifeKey]bool{}
	for i := range lives {
		l := &lives[i]
		k := lifeKey{l.pathHash, l.born}
		var b model.Cumulative
		if e := base[k]; e != nil {
			b = e.Cumulative
			if e.noRequests {
				b.Requests = l.v.Requests
			}
			used[k] = true
		}
		inc, now := increase(l.v, b)
		q := quantities(&inc, &b, &l.v, in.Measure)
		r := refs[l.pathHash]
		if !q.zero() {
			id, pc := identityOf(l.path, l.meta)
			q.CPURequestUs = model.MulSat(uint64(max(pc.RequestCPUMillis, 0)), q.ObservedMs)
			q.MemRequestKiBs = model.Mul128(uint64(max(pc.RequestMemory, 0)), q.ObservedMs).Div(byteMsPerKiBs)
			// The identity is written when it is new or changed, and again
			// in every hour the container is seen, for retention.
			write := true
			switch h := id.hash(); {
			case r.ref == 0 || r.idHash != h:
				r = refState{ref: next.NextRef, idHash: h, idHour: hour}
				next.NextRef++
			case r.idHour < hour:
				r.idHour = hour
			default:
				write = false
			}
			if write {
				id.LastSeen = lastSeen
				out.Identities[r.ref] = &id
			}
			refs[l.pathHash] = r
			q.Ref = r.ref
			if e := entries[r.ref]; e != nil {
				e.Add(&q)
			} else {
				entries[r.ref] = &q
			}
		}
		if l.alive {
			next.Entries = append(next.Entries, CursorEntry{PathHash: l.pathHash, Born: l.born, Ref: r.ref,
				IDHash: r.idHash, IDHour: r.idHour, Cumulative: now})
		}
	}
	if cur != nil && !in.GoneAll {
		// Lifetimes whose final records were not read keep their
		// baselines for when they are.
		for i := range cur.Entries {
			e := &cur.Entries[i]
			if !used[lifeKey{e.PathHash, e.Born}] {
				next.Entries = append(next.Entries, *e)
			}
		}
	}
	// Refs of lifetimes that were written above keep the latest state.
	for i := range next.Entries {
		e := &next.Entries[i]
		if r, ok := refs[e.PathHash]; ok && r.ref != 0 {
			e.Ref, e.IDHash, e.IDHour = r.ref, r.idHash, r.idHour
		}
	}
	slices.SortFunc(next.Entries, func(x, y CursorEntry) int {
		if x.PathHash != y.PathHash {
			return cmpU(x.PathHash, y.PathHash)
		}
		return int(x.Born - y.Born)
	})

	// The node.
	var seg Segment
	var nodeObs uint64
	if a != nil {
		obs, ok := a.ObservedAt(at, model.NoCap)
		if !ok {
			out.Anomalies++
		}
		var b uint64
		if cur != nil && cur.NodeBorn == a.Accrual.Born {
			b = cur.NodeObservedMs
		}
		nodeObs = subFloor(obs, b)
		next.NodeBorn, next.NodeObservedMs = a.Accrual.Born, max(obs, b)
		f, _ := nodemeta.Decode(a.Meta)
		seg.Node = nodeOf(&f)
		seg.Rates = in.Rates(pricingFacts(&f))
	} else {
		seg.Rates = in.Rates(pricing.Facts{})
	}
	for _, e := range entries {
		e.CPUAllocUs = max(e.CPUUsedUs, e.CPURequestUs)
		e.MemAllocKiBs = max(e.MemUsedKiBs, e.MemRequestKiBs)
		seg.Entries = append(seg.Entries, *e)
	}
	slices.SortFunc(seg.Entries, func(x, y Entry) int { return cmpU(x.Ref, y.Ref) })
	seg.ObservedMs = nodeObs
	out.Cursor = next
	if len(seg.Entries) > 0 || nodeObs > 0 {
		out.Spans = split(&seg, start, target)
	}
	return out
}

// rollStart is where the span of a roll to target starts: the cursor, or
// the node's first sample when nothing was rolled before (or the node's
// record or agent started again since: nothing was observed in between).
func rollStart(in *rollInput, target int64) int64 {
	a, cur := in.Agent, in.Cursor
	var start int64
	switch {
	case cur != nil:
		start = cur.MinuteMs
		if a != nil {
			first := a.Accrual.IncarnationStart
			if cur.NodeBorn != a.Accrual.Born {
				first = a.Accrual.Born
			}
			start = max(start, floorMinute(model.Ms(first)))
		}
	case a != nil:
		start = floorMinute(model.Ms(a.Accrual.Born))
	default:
		start = target
		for _, g := range in.Gone {
			if g.Final.Accrual.Born != 0 {
				start = min(start, floorMinute(model.Ms(g.Final.Accrual.Born)))
			}
		}
	}
	return max(min(start, target-model.MinuteMs), target-maxFoldMs)
}

// increase is what a lifetime accrued from b to v, and the baseline of
// the next roll: field by field, v - b, and max(v, b) (a value below its
// baseline, which only a silent node's hold can cause, adds nothing).
func increase(v, b model.Cumulative) (inc, next model.Cumulative) {
	next = v
	sub := func(x, y uint64, n *uint64) uint64 {
		if x < y {
			*n = y
			return 0
		}
		return x - y
	}
	sub128 := func(x, y model.Int128, n *model.Int128) model.Int128 {
		d, ok := x.Sub(y)
		if !ok {
			*n = y
		}
		return d
	}
	inc.ObservedMs = sub(v.ObservedMs, b.ObservedMs, &next.ObservedMs)
	inc.CPUUsec = sub(v.CPUUsec, b.CPUUsec, &next.CPUUsec)
	inc.TxInternet = sub(v.TxInternet, b.TxInternet, &next.TxInternet)
	inc.TxCluster = sub(v.TxCluster, b.TxCluster, &next.TxCluster)
	inc.Requests = sub(v.Requests, b.Requests, &next.Requests)
	inc.RSS = sub128(v.RSS, b.RSS, &next.RSS)
	inc.PageCache = sub128(v.PageCache, b.PageCache, &next.PageCache)
	inc.WorkingSet = sub128(v.WorkingSet, b.WorkingSet, &next.WorkingSet)
	return inc, next
}

// quantities is a lifetime's entry for an increase inc from b to v; the
// requests and allocs are the caller's. Memory in KiB-seconds is the
// difference of the integrals in whole KiB-seconds, so that the minutes of
// a lifetime add up to its integral, rounded down, exactly.
func quantities(inc, b, v *model.Cumulative, m cost.MemoryMeasure) Entry {
	mem := func(c *model.Cumulative) model.Int128 {
		switch m {
		case cost.MemoryRSSPageCache:
			return c.RSS.Add(c.PageCache)
		case cost.MemoryWorkingSet:
			return c.WorkingSet
		}
		return c.RSS
	}
	var memBs uint64
	if d, ok := kibSeconds(mem(v)).Sub(kibSeconds(mem(b))); ok {
		memBs = d.Lo
		if d.Hi != 0 {
			memBs = math.MaxUint64
		}
	}
	return Entry{ObservedMs: inc.ObservedMs, CPUUsedUs: inc.CPUUsec, MemUsedKiBs: memBs,
		EgressInternetBytes: inc.TxInternet, EgressClusterBytes: inc.TxCluster, Requests: inc.Requests}
}

// split divides seg, the span [start, end) (unix ms), at hour boundaries,
// each part taking its share of every quantity by its length (the
// remainders go to the last part, so the parts add up exactly).
func split(seg *Segment, start, end int64) []Segment {
	var bounds []int64
	for t := start; t < end; {
		n := min(floorHour(t)+hourMs, end)
		bounds = append(bounds, t, n)
		t = n
	}
	total := uint64(end - start)
	parts := make([]Segment, len(bounds)/2)
	left := *seg
	left.Entries = slices.Clone(seg.Entries)
	for i := range parts {
		s, e := bounds[2*i], bounds[2*i+1]
		p := &parts[i]
		*p = Segment{Start: s / 1000, End: e / 1000, Node: seg.Node, Rates: seg.Rates}
		if i == len(parts)-1 {
			p.ObservedMs, p.Entries = left.ObservedMs, left.Entries
		} else {
			d := uint64(e - s)
			p.ObservedMs = share(seg.ObservedMs, d, total)
			left.ObservedMs -= p.ObservedMs
			p.Entries = make([]Entry, len(seg.Entries))
			for j := range seg.Entries {
				p.Entries[j].Ref = seg.Entries[j].Ref
				src, dst, rest := seg.Entries[j].fields(), p.Entries[j].fields(), left.Entries[j].fields()
				for f := range src {
					*dst[f] = share(*src[f], d, total)
					*rest[f] -= *dst[f]
				}
			}
		}
		// Observed time never exceeds the span (a restarted agent's last
		// sample held into a later span can make it).
		span := uint64(e - s)
		p.ObservedMs = min(p.ObservedMs, span)
		kept := p.Entries[:0]
		for j := range p.Entries {
			en := &p.Entries[j]
			en.ObservedMs = min(en.ObservedMs, span)
			en.CPUAllocUs = max(en.CPUAllocUs, en.CPUUsedUs, en.CPURequestUs)
			en.MemAllocKiBs = max(en.MemAllocKiBs, en.MemUsedKiBs, en.MemRequestKiBs)
			if !en.zero() {
				kept = append(kept, *en)
			}
		}
		p.Entries = kept
	}
	return parts
}

// byteMsPerKiBs is a KiB-second in byte-milliseconds.
const byteMsPerKiBs = 1024 * 1000

// kibSeconds is x byte-milliseconds in KiB-seconds, rounded down.
func kibSeconds(x model.Int128) model.Int128 {
	q, r := x.Hi/byteMsPerKiBs, x.Hi%byteMsPerKiBs
	lo, _ := bits.Div64(r, x.Lo, byteMsPerKiBs)
	return model.Int128{Hi: q, Lo: lo}
}

// share is q × d / total, rounded down.
func share(q, d, total uint64) uint64 {
	if d >= total {
		return q
	}
	return model.Mul128(q, d).Div(total)
}

func subFloor(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// nodeOf is what a segment keeps of a node's facts: allocatable CPU and
// memory, else the capacity (the host's, outside Kubernetes).
func nodeOf(f *nodemeta.Facts) Node {
	n := Node{InstanceType: f.InstanceType, Region: f.Region, Zone: f.Zone, CapacityType: string(f.CapacityType),
		CPUMillis: f.AllocatableCPUMillis, MemoryBytes: f.AllocatableMemoryBytes}
	if n.CPUMillis == 0 {
		n.CPUMillis = f.CapacityCPUMillis
	}
	if n.MemoryBytes == 0 {
		n.MemoryBytes = f.CapacityMemoryBytes
	}
	return n
}

// pricingFacts are the facts that price a node.
func pricingFacts(f *nodemeta.Facts) pricing.Facts {
	c := pricing.CapacityUnknown
	switch f.CapacityType {
	case nodemeta.Spot:
		c = pricing.CapacitySpot
	case nodemeta.OnDemand:
		c = pricing.CapacityOnDemand
	}
	return pricing.Facts{InstanceType: f.InstanceType, Region: f.Region, Zone: f.Zone, CapacityType: c,
		CPUCores: float64(f.AllocatableCPUMillis) / 1e3, MemoryBytes: f.AllocatableMemoryBytes,
		CapacityCPUCores: float64(f.CapacityCPUMillis) / 1e3, CapacityMemoryBytes: f.CapacityMemoryBytes}
}

// costRates converts pricing's rates to the cost model's.
func costRates(r pricing.Rates) cost.Rates {
	return cost.Rates{Currency: r.Currency, CPUCoreHour: r.CPUCoreHour, RAMGiBHour: r.RAMGiBHour,
		EgressInternetGiB: r.EgressInternetGiB, EgressClusterGiB: r.EgressClusterGiB, Spot: r.Spot, Source: string(r.Source)}
}
