package history

import (
	"github.com/pennyhq/penny/aggregator/model"
)

// Cursor is where a node's rollups stand: the boundary of the last roll
// and every lifetime's cumulative values then. A roll writes its records
// and the next cursor in one transaction conditioned on the cursor it
// read, so that each span is rolled up exactly once whoever leads.
type Cursor struct {
	// MinuteMs is the end of the last rolled span (unix ms, a minute
	// boundary).
	MinuteMs int64
	// NodeBorn is the node's accrual Born that NodeObservedMs belongs to.
	NodeBorn       int64
	NodeObservedMs uint64
	// NextRef is the next container ref of the node.
	NextRef uint64
	Entries []CursorEntry
}

// CursorEntry is one lifetime of a series that was alive at MinuteMs.
type CursorEntry struct {
	PathHash uint64
	Born     int64
	// Ref is the container's ref (0: none yet), IDHash its identity's
	// hash and IDHour the hour (unix seconds) its identity was last
	// written in.
	Ref    uint64
	IDHash uint64
	IDHour int64
	model.Cumulative
	// noRequests says the entry was written before cursors kept requests:
	// its lifetime's requests so far are not known to be rolled, and the
	// next roll takes them as its baseline instead of counting them all
	// in one minute.
	noRequests bool
}

const (
	// A cursor of version 1 has entries of 12 elements; version 2 adds
	// requests, an entry's 13th. Version 1 is read (its entries'
	// requests unknown), version 2 written.
	cursorVersion1  = 1
	cursorVersion   = 2
	minCursorFields = 12
	maxCursorFields = 13
	// MaxCursorEntries bounds the lifetimes of a cursor.
	MaxCursorEntries = 1 << 16
)

func encInt128(e *enc, v model.Int128) {
	if v.Hi == 0 {
		e.uint(v.Lo)
		return
	}
	e.array(2)
	e.uint(v.Hi)
	e.uint(v.Lo)
}

func decInt128(d *dec) model.Int128 {
	if d.err == nil && len(d.b) > 0 && d.b[0] == 0x92 {
		d.b = d.b[1:]
		return model.Int128{Hi: d.uint(), Lo: d.uint()}
	}
	return model.Int128{Lo: d.uint()}
}

// Encode encodes a cursor: [version, minute, node born, node observed,
// next ref, entries], an entry [path hash, born, ref, identity hash,
// identity hour, observed, cpu, tx internet, tx cluster, rss, page cache,
// working set, requests].
func (c *Cursor) Encode() []byte {
	e := enc{b: make([]byte, 0, 32+len(c.Entries)*72)}
	e.array(6)
	e.uint(cursorVersion)
	e.int(c.MinuteMs)
	e.int(c.NodeBorn)
	e.uint(c.NodeObservedMs)
	e.uint(c.NextRef)
	e.array(len(c.Entries))
	for i := range c.Entries {
		en := &c.Entries[i]
		e.array(maxCursorFields)
		e.uint(en.PathHash)
		e.int(en.Born)
		e.uint(en.Ref)
		e.uint(en.IDHash)
		e.int(en.IDHour)
		e.uint(en.ObservedMs)
		e.uint(en.CPUUsec)
		e.uint(en.TxInternet)
		e.uint(en.TxCluster)
		encInt128(&e, en.RSS)
		encInt128(&e, en.PageCache)
		encInt128(&e, en.WorkingSet)
		e.uint(en.Requests)
	}
	return e.b
}

// DecodeCursor decodes a cursor.
func DecodeCursor(b []byte) (*Cursor, error) {
	d := dec{b: b}
	if n := d.array(6, 1); n != 6 {
		d.fail("cursor of %d elements", n)
	}
	v := d.uint()
	fields := maxCursorFields
	switch v {
	case cursorVersion:
	case cursorVersion1:
		fields = minCursorFields
	default:
		d.fail("cursor version %d", v)
	}
	c := &Cursor{MinuteMs: d.int(), NodeBorn: d.int(), NodeObservedMs: d.uint(), NextRef: d.uint()}
	c.Entries = make([]CursorEntry, d.array(MaxCursorEntries, minCursorFields))
	for i := range c.Entries {
		if n := d.array(maxCursorFields, 1); n != fields {
			d.fail("cursor entry of %d elements", n)
			break
		}
		en := &c.Entries[i]
		en.PathHash, en.Born, en.Ref, en.IDHash, en.IDHour = d.uint(), d.int(), d.uint(), d.uint(), d.int()
		en.ObservedMs, en.CPUUsec, en.TxInternet, en.TxCluster = d.uint(), d.uint(), d.uint(), d.uint()
		en.RSS, en.PageCache, en.WorkingSet = decInt128(&d), decInt128(&d), decInt128(&d)
		if fields == maxCursorFields {
			en.Requests = d.uint()
		} else {
			en.noRequests = true
		}
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return c, nil
}
