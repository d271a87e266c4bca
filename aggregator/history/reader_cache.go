package history

import (
	"bytes"
	"container/list"
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/kvraft"
)

// A week of hour records of 16,700 containers is 2.8 million entries, and
// decoding them is most of a query's time (about 60 ns each). Past hours
// do not change once their last minute is rolled, so a Reader keeps, per
// node and UTC day, what those hours add up to, as SpansByStep merges
// them: the day's runs of segments with the same terms and, per run, each
// container's sum with where it first and last appears. A query whose
// step holds the whole day adds the day's hundred sums instead of its
// 2,400 entries, and decodes only what changed or is still being rolled.
//
// An entry is valid for the exact records it was built from: their starts
// and the log index that last wrote each (ModIndex), so a late roll, a
// compaction or a restore that rewrites a record makes it unused. It holds
// a prefix of the day's records, those settled (their hour ended
// settleAfter ago); the rest are decoded by each query. Entries are
// evicted least recently used first to stay within CacheBytes.

// settleAfter is how long after its hour a record is assumed final: the
// leader rolls a minute 5 s after it ends.
const settleAfter = 5 * time.Minute

// DefaultCacheBytes bounds a Reader's cache: about 700,000 container-days,
// a week of 100,000 containers.
const DefaultCacheBytes = 64 << 20

// blockKey is a node's UTC day.
type blockKey struct {
	node string
	day  int64
}

// recID identifies a record as read: its start and the index that wrote it.
type recID struct {
	start int64
	mod   uint64
}

// blockEntry is a container's sum over a run, and the start of the
// segment it first appears in and the end of the last.
type blockEntry struct {
	e           Entry
	first, last int64
}

// blockRun is a run of contiguous segments with the same terms: seg has
// their span, observed time and terms (no Entries); spans counts the
// entries of its segments, as MaxSpans counts them.
type blockRun struct {
	seg     Segment
	spans   int
	entries []blockEntry // sorted by Ref
}

// block is what some records of a node's day add up to.
type block struct {
	runs []blockRun
	// pos is the next entry of the last run to compare, while adding a
	// segment.
	pos int
}

// add adds a record's segments (all of them: the caller checked that the
// record is in the window and in one step).
func (bl *block) add(v []byte) error {
	var start, end int64
	return decodeRecord(v, func(s *Segment, n int) bool {
		if k := len(bl.runs); k > 0 && bl.runs[k-1].seg.End == s.Start && bl.runs[k-1].seg.sameTerms(s) {
			ru := &bl.runs[k-1]
			ru.seg.End = s.End
			ru.seg.ObservedMs += s.ObservedMs // as builder.segment sums a run
			ru.spans += n
		} else {
			bl.runs = append(bl.runs, blockRun{seg: Segment{Start: s.Start, End: s.End, ObservedMs: s.ObservedMs, Node: s.Node,
				Rates: s.Rates}, spans: n, entries: make([]blockEntry, 0, n)})
		}
		bl.pos, start, end = 0, s.Start, s.End
		return true
	}, func(e *Entry) {
		ru := &bl.runs[len(bl.runs)-1]
		for bl.pos < len(ru.entries) && ru.entries[bl.pos].e.Ref < e.Ref {
			bl.pos++
		}
		if bl.pos < len(ru.entries) && ru.entries[bl.pos].e.Ref == e.Ref {
			be := &ru.entries[bl.pos]
			be.e.Add(e)
			be.last = end
			return
		}
		// First seen in this run: its segment starts it.
		be := blockEntry{e: *e, first: start, last: end}
		ru.entries = slices.Insert(ru.entries, bl.pos, be)
		bl.pos++
	})
}

// clone returns a copy that add can change.
func (bl *block) clone() *block {
	c := &block{runs: make([]blockRun, len(bl.runs))}
	for i, ru := range bl.runs {
		ru.entries = append(make([]blockEntry, 0, len(ru.entries)+len(ru.entries)/8), ru.entries...)
		c.runs[i] = ru
	}
	return c
}

// size estimates the bytes the block holds.
func (bl *block) size() int64 {
	n := int64(unsafe.Sizeof(block{}))
	for i := range bl.runs {
		n += int64(unsafe.Sizeof(blockRun{})) + int64(cap(bl.runs[i].entries))*int64(unsafe.Sizeof(blockEntry{}))
	}
	return n
}

// lru is a map bounded in bytes, least recently used evicted first. Its
// values are never changed once in it: a reader that extends one extends
// a copy.
type lru[K comparable, V any] struct {
	mu   sync.Mutex
	max  int64
	size int64
	m    map[K]*list.Element
	l    list.List
}

type lruEntry[K comparable, V any] struct {
	key  K
	v    V
	size int64
}

func newLRU[K comparable, V any](max int64) *lru[K, V] {
	return &lru[K, V]{max: max, m: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.l.MoveToFront(el)
	return el.Value.(*lruEntry[K, V]).v, true
}

// put stores v of size bytes as key's, unless it would take more than a
// quarter of the cache.
func (c *lru[K, V]) put(key K, v V, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.max/4 {
		return
	}
	if el, ok := c.m[key]; ok {
		c.size -= el.Value.(*lruEntry[K, V]).size
		c.l.Remove(el)
	}
	c.m[key] = c.l.PushFront(&lruEntry[K, V]{key: key, v: v, size: size})
	c.size += size
	for c.size > c.max {
		el := c.l.Back()
		old := el.Value.(*lruEntry[K, V])
		c.l.Remove(el)
		delete(c.m, old.key)
		c.size -= old.size
	}
}

// cached is a block and the records it adds up.
type cached struct {
	recs []recID
	bl   *block
}

// getBlock returns the block of key if the records it adds up are the
// first of recs, and how many of them it holds.
func (r *Reader) getBlock(key blockKey, recs []rec) (*block, int) {
	ce, ok := r.blocks.get(key)
	if !ok || len(ce.recs) > len(recs) {
		return nil, 0
	}
	for i, id := range ce.recs {
		if recs[i].start != id.start || recs[i].mod != id.mod {
			return nil, 0
		}
	}
	return ce.bl, len(ce.recs)
}

// putBlock stores bl as what recs add up to, in place of key's block.
func (r *Reader) putBlock(key blockKey, recs []rec, bl *block) {
	ce := cached{recs: make([]recID, len(recs)), bl: bl}
	for i, rc := range recs {
		ce.recs[i] = recID{start: rc.start, mod: rc.mod}
	}
	r.blocks.put(key, ce, bl.size()+int64(len(recs))*int64(unsafe.Sizeof(recID{}))+int64(len(key.node))+128)
}

// nodeIdents are a node's identities as read, sorted by ref, and decoded.
// A cached one is valid while the node's identity keys and the indexes
// that wrote them are the same.
type nodeIdents struct {
	keys [][]byte // the store's, never written
	mods []uint64
	refs []uint64
	cs   []cost.Container // labels maps are shared: read only
	errs []error          // why an identity does not decode
	size int64
}

// nodeIdentities returns node's identities from items, the node's
// identity records as read: the cached ones if they are still these.
func (r *Reader) nodeIdentities(node string, items []kvraft.KV) (*nodeIdents, error) {
	var old *nodeIdents
	if r.idents != nil {
		old, _ = r.idents.get(node)
		if old != nil && len(old.keys) == len(items) {
			same := true
			for i, kv := range items {
				if kv.ModIndex != old.mods[i] || !bytes.Equal(kv.Key, old.keys[i]) {
					same = false
					break
				}
			}
			if same {
				return old, nil
			}
		}
	}
	ids := &nodeIdents{keys: make([][]byte, len(items)), mods: make([]uint64, len(items)), refs: make([]uint64, len(items)),
		cs: make([]cost.Container, len(items)), errs: make([]error, len(items)), size: 256}
	j := 0 // the old one's identity of the same ref, if any
	for i, kv := range items {
		_, ref, err := parseIdentityKey(kv.Key)
		if err != nil {
			return nil, err
		}
		ids.keys[i], ids.mods[i], ids.refs[i] = kv.Key, kv.ModIndex, ref
		for old != nil && j < len(old.refs) && old.refs[j] < ref {
			j++
		}
		if old != nil && j < len(old.refs) && old.refs[j] == ref && old.mods[j] == kv.ModIndex && old.errs[j] == nil {
			ids.cs[i] = old.cs[j]
		} else if id, err := DecodeIdentity(kv.Value); err != nil {
			ids.errs[i] = err
		} else {
			ids.cs[i] = id.CostContainer(node)
		}
		ids.size += containerSize(&ids.cs[i]) + int64(len(kv.Key)) + 64
	}
	if !slices.IsSorted(ids.refs) {
		return nil, fmt.Errorf("%w: identities of %s out of order", ErrCorrupt, node)
	}
	if r.idents != nil {
		r.idents.put(node, ids, ids.size)
	}
	return ids, nil
}

func containerSize(c *cost.Container) int64 {
	n := int64(unsafe.Sizeof(cost.Container{})) + int64(len(c.Node)+len(c.Namespace)+len(c.Pod)+len(c.Container)+
		len(c.ControllerKind)+len(c.Controller))
	for k, l := range c.Labels {
		n += int64(len(k)+len(l)) + 48
	}
	return n
}

// dayBlock returns the end of the block of recs[i:]: the hour records of
// its node and UTC day that follow it.
func dayBlock(recs []rec, i int) int {
	r0 := recs[i]
	if !r0.hour {
		return i + 1
	}
	day := floorDay(r0.start)
	j := i + 1
	for j < len(recs) && recs[j].hour && recs[j].node == r0.node && floorDay(recs[j].start) == day {
		j++
	}
	return j
}

func floorDay(sec int64) int64 {
	const day = 24 * 3600
	if sec < 0 {
		return -((-sec + day - 1) / day * day)
	}
	return sec / day * day
}

// inOneStep reports whether [lo, hi) is in the window and in one step, so
// that every segment in it merges as the builder merges segments.
func (b *builder) inOneStep(lo, hi int64) bool {
	if b.step <= 0 || lo < b.ws || hi > b.we {
		return false
	}
	idx := (lo - b.ws) / b.step
	return hi <= min(b.ws+(idx+1)*b.step, b.we)
}

// block adds a day's hour records of the node (recs, in order), from the
// cache where it can.
func (b *builder) block(recs []rec) error {
	lo, hi := recs[0].start, recs[len(recs)-1].start+hourMs/1000
	if b.r.blocks == nil || !b.inOneStep(lo, hi) {
		for _, rc := range recs {
			if err := b.record(rc.v); err != nil {
				return recordErr(rc, err)
			}
		}
		return nil
	}
	key := blockKey{node: b.node, day: floorDay(lo)}
	bl, n := b.r.getBlock(key, recs)
	settled := 0
	cut := b.r.cfg.Now().Add(-settleAfter).Unix()
	for settled < len(recs) && recs[settled].start+hourMs/1000 <= cut {
		settled++
	}
	if n < settled {
		if bl == nil {
			bl = &block{}
		} else {
			bl = bl.clone()
		}
		for _, rc := range recs[n:settled] {
			if err := bl.add(rc.v); err != nil {
				return recordErr(rc, err)
			}
		}
		b.r.putBlock(key, recs[:settled], bl)
		n = settled
	}
	if bl != nil {
		if err := b.addBlock(bl); err != nil {
			return err
		}
	}
	for _, rc := range recs[n:] {
		if err := b.record(rc.v); err != nil {
			return recordErr(rc, err)
		}
	}
	return nil
}

// addBlock adds a block's runs as record adds their segments.
func (b *builder) addBlock(bl *block) error {
	for i := range bl.runs {
		ru := &bl.runs[i]
		if b.spans += ru.spans; b.spans > b.r.cfg.MaxSpans {
			return fmt.Errorf("%w: more than %d container spans", kvraft.ErrTooLarge, b.r.cfg.MaxSpans)
		}
		b.segment(&ru.seg)
		for k := range ru.entries {
			be := &ru.entries[k]
			b.entry(&be.e, be.first, be.last)
		}
	}
	return nil
}

func recordErr(rc rec, err error) error {
	return fmt.Errorf("record of %s at %s: %w", rc.node, time.Unix(rc.start, 0).UTC().Format(time.RFC3339), err)
}
