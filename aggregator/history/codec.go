package history

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// The records are msgpack, written and read by hand: arrays of integers in
// fixed units, with no field names, so that a container's hour costs a few
// dozen bytes and a week of them decodes in milliseconds. Every length is
// checked against what is left of the input and against a limit before
// anything is allocated.

// enc appends msgpack values to a buffer.
type enc struct{ b []byte }

func (e *enc) uint(v uint64) {
	switch {
	case v <= 0x7f:
		e.b = append(e.b, byte(v))
	case v <= math.MaxUint8:
		e.b = append(e.b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xce), uint32(v))
	default:
		e.b = binary.BigEndian.AppendUint64(append(e.b, 0xcf), v)
	}
}

func (e *enc) int(v int64) {
	switch {
	case v >= 0:
		e.uint(uint64(v))
	case v >= -32:
		e.b = append(e.b, byte(v))
	case v >= math.MinInt8:
		e.b = append(e.b, 0xd0, byte(v))
	case v >= math.MinInt16:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xd2), uint32(v))
	default:
		e.b = binary.BigEndian.AppendUint64(append(e.b, 0xd3), uint64(v))
	}
}

func (e *enc) float(v float64) {
	e.b = binary.BigEndian.AppendUint64(append(e.b, 0xcb), math.Float64bits(v))
}

func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 0xc3)
	} else {
		e.b = append(e.b, 0xc2)
	}
}

func (e *enc) str(s string) {
	switch n := len(s); {
	case n <= 31:
		e.b = append(e.b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		e.b = append(e.b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xda), uint16(n))
	default:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xdb), uint32(n))
	}
	e.b = append(e.b, s...)
}

func (e *enc) array(n int) {
	switch {
	case n <= 15:
		e.b = append(e.b, 0x90|byte(n))
	case n <= math.MaxUint16:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xdc), uint16(n))
	default:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xdd), uint32(n))
	}
}

func (e *enc) mapLen(n int) {
	switch {
	case n <= 15:
		e.b = append(e.b, 0x80|byte(n))
	case n <= math.MaxUint16:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xde), uint16(n))
	default:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xdf), uint32(n))
	}
}

// strMap writes a map of strings with its keys sorted, so that equal maps
// encode equal.
func (e *enc) strMap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.mapLen(len(keys))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

// dec reads msgpack values; the first error sticks and every later read
// returns zero.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	d.b = nil
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) byte() byte {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *dec) be(n int) uint64 {
	p := d.take(n)
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v
}

// fastUint reads the unsigned integer at b[i:], in any of msgpack's
// unsigned encodings; ok is false for anything else or too few bytes.
func fastUint(b []byte, i int) (v uint64, next int, ok bool) {
	if i >= len(b) {
		return 0, i, false
	}
	switch c := b[i]; {
	case c <= 0x7f:
		return uint64(c), i + 1, true
	case c == 0xcc && i+2 <= len(b):
		return uint64(b[i+1]), i + 2, true
	case c == 0xcd && i+3 <= len(b):
		return uint64(binary.BigEndian.Uint16(b[i+1:])), i + 3, true
	case c == 0xce && i+5 <= len(b):
		return uint64(binary.BigEndian.Uint32(b[i+1:])), i + 5, true
	case c == 0xcf && i+9 <= len(b):
		return binary.BigEndian.Uint64(b[i+1:]), i + 9, true
	}
	return 0, i, false
}

// uints reads a fixarray of at most len(dst) unsigned integers into dst
// (the rest zeroed) and returns how many it read; false, consuming
// nothing, when the next value is not such an array, for the general path.
func (d *dec) uints(dst []uint64) (int, bool) {
	b := d.b
	if len(b) == 0 || b[0] < 0x90 || b[0] > 0x9f || int(b[0]&0x0f) > len(dst) {
		return 0, false
	}
	n := int(b[0] & 0x0f)
	i := 1
	for k := range n {
		v, next, ok := fastUint(b, i)
		if !ok {
			return 0, false
		}
		dst[k], i = v, next
	}
	clear(dst[n:])
	d.b = b[i:]
	return n, true
}

// uint reads a non-negative integer.
func (d *dec) uint() uint64 {
	// The common encodings without a call: a record holds millions.
	if b := d.b; len(b) > 0 {
		switch c := b[0]; {
		case c <= 0x7f:
			d.b = b[1:]
			return uint64(c)
		case c == 0xcc && len(b) >= 2:
			d.b = b[2:]
			return uint64(b[1])
		case c == 0xcd && len(b) >= 3:
			d.b = b[3:]
			return uint64(binary.BigEndian.Uint16(b[1:]))
		case c == 0xce && len(b) >= 5:
			d.b = b[5:]
			return uint64(binary.BigEndian.Uint32(b[1:]))
		case c == 0xcf && len(b) >= 9:
			d.b = b[9:]
			return binary.BigEndian.Uint64(b[1:])
		}
	}
	c := d.byte()
	switch {
	case d.err != nil:
		return 0
	case c <= 0x7f:
		return uint64(c)
	case c == 0xcc:
		return d.be(1)
	case c == 0xcd:
		return d.be(2)
	case c == 0xce:
		return d.be(4)
	case c == 0xcf:
		return d.be(8)
	case c >= 0xd0 && c <= 0xd3:
		v := d.signed(c)
		if v < 0 {
			d.fail("negative %d where a count is expected", v)
			return 0
		}
		return uint64(v)
	}
	d.fail("byte 0x%02x where an integer is expected", c)
	return 0
}

func (d *dec) signed(c byte) int64 {
	switch c {
	case 0xd0:
		return int64(int8(d.be(1)))
	case 0xd1:
		return int64(int16(d.be(2)))
	case 0xd2:
		return int64(int32(d.be(4)))
	}
	return int64(d.be(8))
}

// int reads an integer that fits int64.
func (d *dec) int() int64 {
	if d.err != nil || len(d.b) == 0 {
		d.take(1)
		return 0
	}
	switch c := d.b[0]; {
	case c >= 0xe0:
		d.b = d.b[1:]
		return int64(int8(c))
	case c >= 0xd0 && c <= 0xd3:
		d.b = d.b[1:]
		return d.signed(c)
	}
	v := d.uint()
	if v > math.MaxInt64 {
		d.fail("integer %d out of range", v)
		return 0
	}
	return int64(v)
}

func (d *dec) float() float64 {
	if d.err == nil && len(d.b) > 0 {
		switch d.b[0] {
		case 0xcb:
			d.b = d.b[1:]
			return math.Float64frombits(d.be(8))
		case 0xca:
			d.b = d.b[1:]
			return float64(math.Float32frombits(uint32(d.be(4))))
		}
	}
	return float64(d.int()) // an integer stands for a float
}

func (d *dec) bool() bool {
	switch c := d.byte(); c {
	case 0xc2:
		return false
	case 0xc3:
		return true
	default:
		d.fail("byte 0x%02x where a bool is expected", c)
	}
	return false
}

func (d *dec) str(limit int) string {
	c := d.byte()
	var n uint64
	switch {
	case d.err != nil:
		return ""
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9:
		n = d.be(1)
	case c == 0xda:
		n = d.be(2)
	case c == 0xdb:
		n = d.be(4)
	default:
		d.fail("byte 0x%02x where a string is expected", c)
		return ""
	}
	if n > uint64(limit) {
		d.fail("string of %d bytes, limit %d", n, limit)
		return ""
	}
	return string(d.take(int(n)))
}

// length reads an array (or, with isMap, a map) header of at most limit
// elements, each taking at least minSize bytes of what is left.
func (d *dec) length(isMap bool, limit, minSize int) int {
	c := d.byte()
	var n uint64
	fix, h16, h32 := byte(0x90), byte(0xdc), byte(0xdd)
	if isMap {
		fix, h16, h32 = 0x80, 0xde, 0xdf
	}
	switch {
	case d.err != nil:
		return 0
	case c >= fix && c <= fix+15:
		n = uint64(c & 0x0f)
	case c == h16:
		n = d.be(2)
	case c == h32:
		n = d.be(4)
	default:
		d.fail("byte 0x%02x where an array or map is expected", c)
		return 0
	}
	if n > uint64(limit) || n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("%d elements, limit %d, %d bytes left", n, limit, len(d.b))
		return 0
	}
	return int(n)
}

func (d *dec) array(limit, minSize int) int { return d.length(false, limit, minSize) }

func (d *dec) strMap(limit, strLimit int) map[string]string {
	n := d.length(true, limit, 2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str(strLimit)
		m[k] = d.str(strLimit)
	}
	return m
}

// end fails unless the whole input was read.
func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
