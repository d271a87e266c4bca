package model

import (
	"fmt"

	"github.com/pennyhq/penny/internal/histogram"
)

// The readers of a series value's types, field by field, on decoder
// (decode.go): each reads what msgpack's reflection, or the type's
// DecodeMsgpack method, reads.

// Tags of the fields of Stored, Delta and Mark (those of the last two are
// Stored's too), numbered in Stored's order: an array of a Stored has its
// storedFields fields in that order (Meta and the unexported fields left
// out, as msgpack's reflection leaves them).
const (
	tagR = iota
	tagP
	tagI
	tagT
	tagD
	tagU
	tagNP
	tagRSS
	tagPC
	tagWS
	tagPK
	tagC
	tagS
	tagN
	tagQ
	tagQL
	tagL
	tagM
	tagAC
	storedFields
)

// The fields of a Stored, a Delta and a Mark in their order.
var (
	storedTags = func() (t [storedFields]int) {
		for i := range t {
			t[i] = i
		}
		return t
	}()
	deltaTags = [...]int{tagC, tagS, tagN, tagQ, tagQL}
	markTags  = [...]int{tagT, tagC, tagS, tagN, tagQ, tagQL}
)

// tag returns the tag k is, -1 for none.
func tag(k []byte) int {
	switch string(k) {
	case "r":
		return tagR
	case "p":
		return tagP
	case "i":
		return tagI
	case "t":
		return tagT
	case "d":
		return tagD
	case "u":
		return tagU
	case "np":
		return tagNP
	case "rss":
		return tagRSS
	case "pc":
		return tagPC
	case "ws":
		return tagWS
	case "pk":
		return tagPK
	case "c":
		return tagC
	case "s":
		return tagS
	case "n":
		return tagN
	case "q":
		return tagQ
	case "ql":
		return tagQL
	case "l":
		return tagL
	case "m":
		return tagM
	case "ac":
		return tagAC
	}
	return -1
}

// fields reads a struct of len(order) fields into *v as msgpack's
// reflection reads one: the zero struct for nil or an empty array, or
// else each field in turn, read by each given its tag: order[i] for the
// ith of an array of them, tag(k) for a map key k (-1 for none: each skips
// what is not a field).
func fields[T any](d *decoder, v *T, order []int, each func(tag int) error) error {
	n, array, err := d.structHead(len(order))
	if err != nil {
		return err
	}
	if n < 0 {
		var zero T
		*v = zero
		return nil
	}
	for i := range n {
		var f int
		if array {
			f = order[i]
		} else {
			k, err := d.str()
			if err != nil {
				return err
			}
			f = tag(k)
		}
		if err := each(f); err != nil {
			return err
		}
	}
	return nil
}

// stored decodes a Stored nested depth deep.
func (d *decoder) stored(s *Stored, depth int) error {
	return fields(d, s, storedTags[:], func(f int) (err error) {
		switch f {
		case tagR:
			s.Ref, err = d.uint()
		case tagP:
			_, err = d.str() // the key's path is the series'
		case tagI:
			s.CgroupID, err = d.uint()
		case tagT:
			s.Time, err = d.int()
		case tagD:
			s.Interval, err = d.int()
		case tagU:
			s.Updated, err = d.int()
		case tagNP:
			s.Processes, err = d.int()
		case tagRSS:
			s.RSSBytes, err = d.int()
		case tagPC:
			s.PageCache, err = d.int()
		case tagWS:
			s.WorkingSet, err = d.int()
		case tagPK:
			s.PressureKnown, err = d.bool()
		case tagC:
			err = d.counters(&s.Total, depth+1)
		case tagS:
			err = d.hist(&s.SRTT)
		case tagN:
			err = d.hist(&s.Connect)
		case tagQ:
			err = d.hist(&s.RequestLatency)
		case tagQL:
			err = d.logHist(&s.RequestLatencyLogLinear)
		case tagL:
			err = d.delta(&s.Last, depth+1)
		case tagM:
			err = d.marks(&s.Marks, depth+1)
		case tagAC:
			err = d.accrual(&s.Accrual, depth+1)
		default: // not a field: skipped
			err = d.skip(depth + 1)
		}
		return err
	})
}

func (d *decoder) delta(l *Delta, depth int) error {
	return fields(d, l, deltaTags[:], func(f int) (err error) {
		switch f {
		case tagC:
			err = d.counters(&l.Counters, depth+1)
		case tagS:
			err = d.hist(&l.SRTT)
		case tagN:
			err = d.hist(&l.Connect)
		case tagQ:
			err = d.hist(&l.RequestLatency)
		case tagQL:
			err = d.logHist(&l.RequestLatencyLogLinear)
		default:
			err = d.skip(depth + 1)
		}
		return err
	})
}

func (d *decoder) mark(m *Mark, depth int) error {
	return fields(d, m, markTags[:], func(f int) (err error) {
		switch f {
		case tagT:
			m.Time, err = d.int()
		case tagC:
			err = d.counters(&m.Total, depth+1)
		case tagS:
			err = d.hist(&m.SRTT)
		case tagN:
			err = d.hist(&m.Connect)
		case tagQ:
			err = d.hist(&m.RequestLatency)
		case tagQL:
			err = d.logHist(&m.RequestLatencyLogLinear)
		default:
			err = d.skip(depth + 1)
		}
		return err
	})
}

// counterField is the index in Counters.fields of the counter tagged k
// (counterTags), -1 for none.
func counterField(k []byte) int {
	switch string(k) {
	case "pa":
		return 0
	case "pe":
		return 1
	case "ca":
		return 2
	case "cm":
		return 3
	case "rt":
		return 4
	case "rb":
		return 5
	case "tb":
		return 6
	case "rp":
		return 7
	case "tp":
		return 8
	case "cu":
		return 9
	case "cp":
		return 10
	case "ctp":
		return 11
	case "ct":
		return 12
	case "pcs":
		return 13
	case "pms":
		return 14
	case "pis":
		return 15
	case "tl":
		return 16
	case "tc":
		return 17
	case "ti":
		return 18
	case "rq":
		return 19
	}
	return -1
}

// counters reads its fields itself rather than through fields: a
// counter's read is too short for a call of each per field not to show
// (3-6% more time to decode a series value).
func (d *decoder) counters(c *Counters, depth int) error {
	fs := c.fields()
	n, array, err := d.structHead(len(fs))
	if err != nil {
		return err
	}
	if n < 0 {
		*c = Counters{}
		return nil
	}
	for i := range n {
		f := i
		if !array {
			k, err := d.str()
			if err != nil {
				return err
			}
			if f = counterField(k); f < 0 {
				if err := d.skip(depth + 1); err != nil {
					return err
				}
				continue
			}
		}
		if *fs[f], err = d.uint(); err != nil {
			return err
		}
	}
	return nil
}

// hist reads what Hist.DecodeMsgpack does.
func (d *decoder) hist(h *Hist) error {
	n, err := d.arrayLen()
	if err != nil {
		return err
	}
	*h = Hist{}
	if n <= 0 {
		return nil
	}
	if n < 2 || n%2 != 0 || n > 2+2*histogram.Buckets {
		return fmt.Errorf("histogram of %d elements", n)
	}
	if h.Count, err = d.uint(); err != nil {
		return err
	}
	if h.Sum, err = d.uint(); err != nil {
		return err
	}
	for i := 2; i < n; i += 2 {
		idx, err := d.uint()
		if err != nil {
			return err
		}
		v, err := d.uint()
		if err != nil {
			return err
		}
		if idx >= histogram.Buckets {
			return fmt.Errorf("histogram bucket %d", idx)
		}
		h.Buckets[idx] = v
	}
	return nil
}

// logHist reads what LogHist.DecodeMsgpack does.
func (d *decoder) logHist(h *LogHist) error {
	n, err := d.arrayLen()
	if err != nil {
		return err
	}
	*h = LogHist{}
	if n <= 0 {
		return nil
	}
	if n < 2 || n%2 != 0 || n > 2+2*histogram.LogLinearBuckets {
		return fmt.Errorf("histogram of %d elements", n)
	}
	if h.Count, err = d.uint(); err != nil {
		return err
	}
	if h.Sum, err = d.uint(); err != nil {
		return err
	}
	if n == 2 {
		return nil
	}
	// Checked as they come: DecodeMsgpack checks their order after them
	// all, and refuses the same.
	h.Buckets = make([]histogram.SparseBucket, (n-2)/2)
	for i := range h.Buckets {
		idx, err := d.uint()
		if err != nil {
			return err
		}
		v, err := d.uint()
		if err != nil {
			return err
		}
		if idx >= histogram.LogLinearBuckets {
			return fmt.Errorf("histogram bucket %d", idx)
		}
		if v == 0 || i > 0 && uint32(idx) <= h.Buckets[i-1].Index {
			return fmt.Errorf("histogram buckets out of order or empty")
		}
		h.Buckets[i] = histogram.SparseBucket{Index: uint32(idx), N: v}
	}
	return nil
}

// marks reads what Marks.DecodeMsgpack does; the marks are nested depth+1
// deep.
func (d *decoder) marks(m *Marks, depth int) error {
	n, err := d.arrayLen()
	if err != nil {
		return err
	}
	if n > maxMarks+1 {
		return fmt.Errorf("%d marks", n)
	}
	*m = nil
	if n <= 0 {
		return nil
	}
	*m = make(Marks, n)
	for i := range *m {
		if err := d.mark(&(*m)[i], depth+1); err != nil {
			return err
		}
	}
	return nil
}

// accrual reads what Accrual.DecodeMsgpack does.
func (d *decoder) accrual(a *Accrual, depth int) error {
	n, err := d.arrayLen()
	if err != nil {
		return err
	}
	*a = Accrual{}
	if n <= 0 {
		return nil
	}
	if n > maxAccrualFields {
		return fmt.Errorf("accruals of %d elements", n)
	}
	wide := [...]*Int128{&a.RSS, &a.PageCache, &a.WorkingSet}
	narrow := [...]*uint64{&a.Since.ObservedMs, &a.Since.RSS, &a.Since.PageCache, &a.Since.WorkingSet,
		&a.Since.CPUUsec, &a.Since.TxInternet, &a.Since.TxCluster, &a.BaseCPUUsec, &a.BaseTxInternet,
		&a.BaseTxCluster, &a.Since.Requests, &a.BaseRequests}
	for i := range n {
		switch {
		case i == 0:
			a.Born, err = d.int()
		case i == 1:
			a.ObservedMs, err = d.uint()
		case i < 5:
			err = d.int128(wide[i-2])
		case i < accrualFields:
			*narrow[i-5], err = d.uint()
		default: // appended by a newer version
			err = d.skip(depth + 1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// int128 reads what Int128.DecodeMsgpack does.
func (d *decoder) int128(a *Int128) error {
	if d.off >= len(d.b) || !isArrayCode(d.b[d.off]) {
		a.Hi = 0
		var err error
		a.Lo, err = d.uint()
		return err
	}
	n, err := d.arrayLen()
	if err != nil {
		return err
	}
	if n != 2 {
		return fmt.Errorf("128-bit integer of %d elements", n)
	}
	if a.Hi, err = d.uint(); err != nil {
		return err
	}
	a.Lo, err = d.uint()
	return err
}
