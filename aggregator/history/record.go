package history

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/internal/nodemeta"
)

// Entry is one container's quantities over a span, in integer units:
// milliseconds observed, CPU in core-microseconds, memory in KiB-seconds,
// egress in bytes, requests answered. CPU and memory are used, requested
// (the request times the observed time) and allocated: max(used,
// requested) for each minute, summed over a longer span.
type Entry struct {
	Ref                                       uint64
	ObservedMs                                uint64
	CPUUsedUs, CPURequestUs, CPUAllocUs       uint64
	MemUsedKiBs, MemRequestKiBs, MemAllocKiBs uint64
	EgressInternetBytes, EgressClusterBytes   uint64
	// Requests is how many requests the container's server sockets
	// answered (docs/requests.md).
	Requests uint64
}

// Add adds o's quantities to e's.
func (e *Entry) Add(o *Entry) {
	e.ObservedMs = addSat(e.ObservedMs, o.ObservedMs)
	e.CPUUsedUs = addSat(e.CPUUsedUs, o.CPUUsedUs)
	e.CPURequestUs = addSat(e.CPURequestUs, o.CPURequestUs)
	e.CPUAllocUs = addSat(e.CPUAllocUs, o.CPUAllocUs)
	e.MemUsedKiBs = addSat(e.MemUsedKiBs, o.MemUsedKiBs)
	e.MemRequestKiBs = addSat(e.MemRequestKiBs, o.MemRequestKiBs)
	e.MemAllocKiBs = addSat(e.MemAllocKiBs, o.MemAllocKiBs)
	e.EgressInternetBytes = addSat(e.EgressInternetBytes, o.EgressInternetBytes)
	e.EgressClusterBytes = addSat(e.EgressClusterBytes, o.EgressClusterBytes)
	e.Requests = addSat(e.Requests, o.Requests)
}

func (e *Entry) zero() bool { return *e == Entry{Ref: e.Ref} }

// fields lists the quantities, for arithmetic over all of them.
func (e *Entry) fields() [10]*uint64 {
	return [10]*uint64{&e.ObservedMs, &e.CPUUsedUs, &e.CPURequestUs, &e.CPUAllocUs, &e.MemUsedKiBs, &e.MemRequestKiBs,
		&e.MemAllocKiBs, &e.EgressInternetBytes, &e.EgressClusterBytes, &e.Requests}
}

// Usage is the entry as the cost model takes it, over [start, end).
func (e *Entry) Usage(start, end time.Time) cost.Usage {
	return cost.Usage{
		Start: start, End: end, Seconds: float64(e.ObservedMs) / 1e3,
		UsageCoreSeconds: float64(e.CPUUsedUs) / 1e6, RequestCoreSeconds: float64(e.CPURequestUs) / 1e6,
		AllocCoreSeconds: float64(e.CPUAllocUs) / 1e6,
		UsageByteSeconds: float64(e.MemUsedKiBs) * 1024, RequestByteSeconds: float64(e.MemRequestKiBs) * 1024,
		AllocByteSeconds:    float64(e.MemAllocKiBs) * 1024,
		EgressInternetBytes: float64(e.EgressInternetBytes), EgressClusterBytes: float64(e.EgressClusterBytes),
		Requests: float64(e.Requests),
	}
}

func addSat(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

// Node is what a segment says of its node: the facts that price it and
// its allocatable CPU and memory.
type Node struct {
	InstanceType, Region, Zone string
	CapacityType               string
	CPUMillis, MemoryBytes     int64
}

// Segment is a node over a span with one set of facts and prices, and its
// containers' quantities over it. A minute record has one; an hour record
// one per run of minutes with the same facts and prices.
type Segment struct {
	// Start and End are unix seconds, minute aligned.
	Start, End int64
	// ObservedMs is how long the node was observed in the span.
	ObservedMs uint64
	Node       Node
	// Rates are the prices in force when the span was rolled up.
	Rates cost.Rates
	// Entries are sorted by Ref, one per container.
	Entries []Entry
}

// sameTerms reports whether two segments price alike and so can merge.
func (s *Segment) sameTerms(o *Segment) bool { return s.Node == o.Node && s.Rates == o.Rates }

// NodeUsage is the segment as the cost model takes it.
func (s *Segment) NodeUsage(node string) cost.NodeUsage {
	return cost.NodeUsage{Node: node, Start: time.Unix(s.Start, 0).UTC(), End: time.Unix(s.End, 0).UTC(),
		Hours: float64(s.ObservedMs) / 3.6e6, CPUCores: float64(s.Node.CPUMillis) / 1e3,
		RAMBytes: float64(s.Node.MemoryBytes), Rates: s.Rates}
}

// Record is the value of a minute or hour key.
type Record struct {
	Segments []Segment
}

// add merges s into r: into its last segment when that one ends where s
// starts on the same terms, else as a new segment. Entries of one ref add
// up.
func (r *Record) add(s *Segment) {
	if n := len(r.Segments); n > 0 {
		last := &r.Segments[n-1]
		if last.End == s.Start && last.sameTerms(s) {
			last.End = s.End
			last.ObservedMs = addSat(last.ObservedMs, s.ObservedMs)
			last.Entries = mergeEntries(last.Entries, s.Entries)
			return
		}
	}
	c := *s
	c.Entries = slices.Clone(s.Entries)
	r.Segments = append(r.Segments, c)
	slices.SortStableFunc(r.Segments, func(a, b Segment) int { return int(a.Start - b.Start) })
}

// mergeEntries adds b into a, both sorted by Ref.
func mergeEntries(a, b []Entry) []Entry {
	out := make([]Entry, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Ref < b[j].Ref:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Ref < a[i].Ref:
			out = append(out, b[j])
			j++
		default:
			e := a[i]
			e.Add(&b[j])
			out = append(out, e)
			i++
			j++
		}
	}
	return out
}

// Limits of decoding.
const (
	// recordVersion1 is the format of records before requests: entries of
	// at most 10 elements. recordVersion2 adds requests, an entry's 11th.
	// A record without requests is written as version 1, so that a replica
	// not yet upgraded reads it; a decoder reads both.
	recordVersion1 = 1
	recordVersion2 = 2
	// MaxSegments bounds the segments of a record.
	MaxSegments = 1024
	// MaxEntries bounds the entries of a segment.
	MaxEntries = 1 << 20
	// maxCurrency bounds a currency code; maxSource a price source.
	maxCurrency = 16
	maxSource   = 64
	entryFields = 11
)

// entryFieldsOf is the most elements an entry of a record version has.
func entryFieldsOf(version uint64) int {
	if version == recordVersion1 {
		return entryFields - 1
	}
	return entryFields
}

// Encode encodes a record. An entry is [ref, observed, cpu used, cpu
// requested, cpu alloc above max(used, requested), memory used, requested,
// alloc above the max, egress internet, egress cluster, requests],
// trailing zeros left out.
func (r *Record) Encode() []byte {
	e := enc{b: make([]byte, 0, 64+len(r.Segments)*(128+48*avgEntries(r)))}
	e.array(2)
	e.uint(r.version())
	e.array(len(r.Segments))
	for i := range r.Segments {
		s := &r.Segments[i]
		e.array(6)
		e.int(s.Start)
		e.int(s.End)
		e.uint(s.ObservedMs)
		n := &s.Node
		e.array(6)
		e.str(n.InstanceType)
		e.str(n.Region)
		e.str(n.Zone)
		e.str(n.CapacityType)
		e.int(n.CPUMillis)
		e.int(n.MemoryBytes)
		rt := &s.Rates
		e.array(7)
		e.str(rt.Currency)
		e.float(rt.CPUCoreHour)
		e.float(rt.RAMGiBHour)
		e.float(rt.EgressInternetGiB)
		e.float(rt.EgressClusterGiB)
		e.bool(rt.Spot)
		e.str(rt.Source)
		e.array(len(s.Entries))
		for j := range s.Entries {
			en := &s.Entries[j]
			vals := [entryFields]uint64{en.Ref, en.ObservedMs, en.CPUUsedUs, en.CPURequestUs,
				en.CPUAllocUs - min(en.CPUAllocUs, max(en.CPUUsedUs, en.CPURequestUs)),
				en.MemUsedKiBs, en.MemRequestKiBs,
				en.MemAllocKiBs - min(en.MemAllocKiBs, max(en.MemUsedKiBs, en.MemRequestKiBs)),
				en.EgressInternetBytes, en.EgressClusterBytes, en.Requests}
			k := entryFields
			for k > 1 && vals[k-1] == 0 {
				k--
			}
			e.array(k)
			for _, v := range vals[:k] {
				e.uint(v)
			}
		}
	}
	return e.b
}

// version is the oldest format that holds r.
func (r *Record) version() uint64 {
	for i := range r.Segments {
		for j := range r.Segments[i].Entries {
			if r.Segments[i].Entries[j].Requests != 0 {
				return recordVersion2
			}
		}
	}
	return recordVersion1
}

func avgEntries(r *Record) int {
	n := 0
	for i := range r.Segments {
		n += len(r.Segments[i].Entries)
	}
	return n/max(len(r.Segments), 1) + 1
}

// DecodeRecord decodes a record, checking every length and value.
func DecodeRecord(b []byte) (*Record, error) {
	r := &Record{}
	err := decodeRecord(b, func(s *Segment, n int) bool {
		if n > 0 {
			s.Entries = make([]Entry, 0, n)
		}
		r.Segments = append(r.Segments, *s)
		return true
	}, func(e *Entry) {
		s := &r.Segments[len(r.Segments)-1]
		s.Entries = append(s.Entries, *e)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// decodeRecord decodes a record, calling segment with each segment (its
// Entries nil) and the number of its entries, then entry with each of
// them if segment returned true. The values passed are reused.
func decodeRecord(b []byte, segment func(s *Segment, entries int) bool, entry func(e *Entry)) error {
	d := dec{b: b}
	if n := d.array(2, 1); n != 2 {
		d.fail("record of %d elements", n)
	}
	version := d.uint()
	if version != recordVersion1 && version != recordVersion2 && d.err == nil {
		return fmt.Errorf("%w: record version %d, want %d or %d", ErrCorrupt, version, recordVersion1, recordVersion2)
	}
	fields := entryFieldsOf(version)
	n := d.array(MaxSegments, 16)
	var prevEnd int64
	var s Segment
	var en Entry
	for i := range n {
		s = Segment{}
		if k := d.array(6, 1); k != 6 {
			d.fail("segment of %d elements", k)
		}
		s.Start, s.End, s.ObservedMs = d.int(), d.int(), d.uint()
		if k := d.array(6, 1); k != 6 {
			d.fail("node of %d elements", k)
		}
		nd := &s.Node
		nd.InstanceType, nd.Region, nd.Zone = d.str(nodemeta.MaxLen), d.str(nodemeta.MaxLen), d.str(nodemeta.MaxLen)
		nd.CapacityType = d.str(nodemeta.MaxLen)
		nd.CPUMillis, nd.MemoryBytes = d.int(), d.int()
		if k := d.array(7, 1); k != 7 {
			d.fail("rates of %d elements", k)
		}
		rt := &s.Rates
		rt.Currency = d.str(maxCurrency)
		rt.CPUCoreHour, rt.RAMGiBHour, rt.EgressInternetGiB, rt.EgressClusterGiB = d.float(), d.float(), d.float(), d.float()
		rt.Spot = d.bool()
		rt.Source = d.str(maxSource)
		ne := d.array(MaxEntries, 2)
		if d.err != nil {
			return d.err
		}
		if s.End <= s.Start || s.ObservedMs > uint64(s.End-s.Start)*1000 || nd.CPUMillis < 0 || nd.MemoryBytes < 0 {
			return fmt.Errorf("%w: segment %d..%d observed %d ms", ErrCorrupt, s.Start, s.End, s.ObservedMs)
		}
		if i > 0 && s.Start < prevEnd {
			return fmt.Errorf("%w: segments overlap", ErrCorrupt)
		}
		prevEnd = s.End
		for _, p := range [...]float64{rt.CPUCoreHour, rt.RAMGiBHour, rt.EgressInternetGiB, rt.EgressClusterGiB} {
			if !(p >= 0) || math.IsInf(p, 0) {
				return fmt.Errorf("%w: price %v", ErrCorrupt, p)
			}
		}
		want := segment(&s, ne)
		var prevRef uint64
		for j := range ne {
			var vals [entryFields]uint64
			k, ok := d.uints(vals[:fields])
			if !ok {
				k = d.array(fields, 1)
				for f := range k {
					vals[f] = d.uint()
				}
			}
			if k < 1 {
				d.fail("empty entry")
				break
			}
			en = Entry{Ref: vals[0], ObservedMs: vals[1], CPUUsedUs: vals[2], CPURequestUs: vals[3],
				CPUAllocUs: addSat(max(vals[2], vals[3]), vals[4]), MemUsedKiBs: vals[5], MemRequestKiBs: vals[6],
				MemAllocKiBs: addSat(max(vals[5], vals[6]), vals[7]), EgressInternetBytes: vals[8], EgressClusterBytes: vals[9],
				Requests: vals[10]}
			if j > 0 && en.Ref <= prevRef {
				d.fail("entries out of order")
				break
			}
			prevRef = en.Ref
			if want {
				entry(&en)
			}
		}
	}
	return d.end()
}
