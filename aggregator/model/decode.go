package model

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pennyhq/penny/internal/mpcheck"
)

// A series value and its checkpoints are read with every read of a
// container: through msgpack's reflection (and mpcheck.Check before it),
// decoding was most of a namespace's read. decodeStored and decodeMarks
// read the bytes themselves, with no io.Reader, no reflection and no
// allocation but the value's own (the Stored, the checkpoints, the
// log-linear buckets), and accept exactly what mpcheck.Check and then
// msgpack.Unmarshal accept, with the same result:
//
//   - an integer field takes any msgpack integer of any width (a negative
//     one into an unsigned field as its two's complement) or nil (0), and
//     nothing else: no float, no string;
//   - a struct (Stored, Delta, Mark, Counters) is a map keyed by tag (str,
//     bin or nil keys, in any order, a key twice decoding into what the
//     first left), unknown keys skipped, or an array of all its fields in
//     order; nil and an empty array are the zero struct;
//   - Hist, LogHist, Marks, Accrual and Int128 are read as their
//     DecodeMsgpack methods read them, with the same bounds;
//   - the value is one well-formed msgpack value, nested at most
//     mpcheck.MaxDepth deep, every length within the input, with nothing
//     after it.
//
// Every declared length is checked against the bytes left before anything
// is allocated or looped over. TestStoredDecodeAsReflection and
// FuzzStoredDecode hold both decoders to the same answers.

// decoder reads msgpack from b, at off.
type decoder struct {
	b   []byte
	off int
}

// decodeStored decodes a series value into s as msgpack.Unmarshal does.
func decodeStored(b []byte, s *Stored) error {
	d := decoder{b: b}
	if err := d.stored(s, 0); err != nil {
		return d.at(err)
	}
	return d.end()
}

// decodeMarks decodes checkpoints as msgpack.Unmarshal does.
func decodeMarks(b []byte) (Marks, error) {
	d := decoder{b: b}
	var m Marks
	if err := d.marks(&m, 0); err != nil {
		return nil, d.at(err)
	}
	return m, d.end()
}

func (d *decoder) end() error {
	if d.off != len(d.b) {
		return d.at(fmt.Errorf("%d trailing bytes", len(d.b)-d.off))
	}
	return nil
}

// at adds the offset the decoder stopped at to its error.
func (d *decoder) at(err error) error { return fmt.Errorf("at byte %d: %w", d.off, err) }

var errTruncated = io.ErrUnexpectedEOF

func (d *decoder) code() (byte, error) {
	if d.off >= len(d.b) {
		return 0, errTruncated
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

// take returns the next n bytes.
func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, errTruncated
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

// size reads a big-endian length of n (1, 2 or 4) bytes, refused when
// more than the bytes left: every string, element or pair takes one at
// least.
func (d *decoder) size(n int) (int, error) {
	p, err := d.take(n)
	if err != nil {
		return 0, err
	}
	var v uint32
	switch n {
	case 1:
		v = uint32(p[0])
	case 2:
		v = uint32(binary.BigEndian.Uint16(p))
	default:
		v = binary.BigEndian.Uint32(p)
	}
	if left := len(d.b) - d.off; uint64(v) > uint64(left) {
		return 0, fmt.Errorf("length %d in %d bytes", v, left)
	}
	return int(v), nil
}

// uint reads an integer as msgpack's DecodeUint64 does: any width, signed
// or not (a negative one as its two's complement), nil as 0. The same bits
// are DecodeInt64's. It is most of decoding: one call, no other.
func (d *decoder) uint() (uint64, error) {
	b := d.b[d.off:]
	if len(b) == 0 {
		return 0, errTruncated
	}
	c := b[0]
	if c <= 0x7f {
		d.off++
		return uint64(c), nil
	}
	if c >= 0xe0 { // negative fixint
		d.off++
		return uint64(int64(int8(c))), nil
	}
	switch c {
	case 0xc0:
		d.off++
		return 0, nil
	case 0xcc:
		if len(b) >= 2 {
			d.off += 2
			return uint64(b[1]), nil
		}
	case 0xcd:
		if len(b) >= 3 {
			d.off += 3
			return uint64(binary.BigEndian.Uint16(b[1:])), nil
		}
	case 0xce:
		if len(b) >= 5 {
			d.off += 5
			return uint64(binary.BigEndian.Uint32(b[1:])), nil
		}
	case 0xcf, 0xd3:
		if len(b) >= 9 {
			d.off += 9
			return binary.BigEndian.Uint64(b[1:]), nil
		}
	case 0xd0:
		if len(b) >= 2 {
			d.off += 2
			return uint64(int64(int8(b[1]))), nil
		}
	case 0xd1:
		if len(b) >= 3 {
			d.off += 3
			return uint64(int64(int16(binary.BigEndian.Uint16(b[1:])))), nil
		}
	case 0xd2:
		if len(b) >= 5 {
			d.off += 5
			return uint64(int64(int32(binary.BigEndian.Uint32(b[1:])))), nil
		}
	default:
		return 0, fmt.Errorf("code 0x%02x for an integer", c)
	}
	return 0, errTruncated
}

func (d *decoder) int() (int64, error) {
	v, err := d.uint()
	return int64(v), err
}

// bool reads a bool as DecodeBool does: nil is false.
func (d *decoder) bool() (bool, error) {
	c, err := d.code()
	if err != nil {
		return false, err
	}
	switch c {
	case 0xc0, 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	}
	return false, fmt.Errorf("code 0x%02x for a bool", c)
}

// str reads a string or binary as DecodeString does (nil is empty) and
// returns its bytes, not copied.
func (d *decoder) str() ([]byte, error) {
	if d.off < len(d.b) {
		if c := d.b[d.off]; c >= 0xa0 && c <= 0xbf { // fixstr: every key
			if end := d.off + 1 + int(c&0x1f); end <= len(d.b) {
				k := d.b[d.off+1 : end]
				d.off = end
				return k, nil
			}
		}
	}
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xc0:
		return nil, nil
	case c == 0xc4 || c == 0xd9:
		n, err = d.size(1)
	case c == 0xc5 || c == 0xda:
		n, err = d.size(2)
	case c == 0xc6 || c == 0xdb:
		n, err = d.size(4)
	default:
		return nil, fmt.Errorf("code 0x%02x for a string", c)
	}
	if err != nil {
		return nil, err
	}
	return d.take(n)
}

// arrayLen reads an array's length as DecodeArrayLen does, -1 for nil,
// and refuses one longer than the bytes left (each element takes one at
// least).
func (d *decoder) arrayLen() (int, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	var n int
	switch {
	case c >= 0x90 && c <= 0x9f:
		n = int(c & 0x0f)
	case c == 0xc0:
		return -1, nil
	case c == 0xdc:
		n, err = d.size(2)
	case c == 0xdd:
		n, err = d.size(4)
	default:
		return 0, fmt.Errorf("code 0x%02x for an array", c)
	}
	if err != nil {
		return 0, err
	}
	if n > len(d.b)-d.off {
		return 0, fmt.Errorf("array of %d elements in %d bytes", n, len(d.b)-d.off)
	}
	return n, nil
}

// structHead reads the head of a struct of fields fields as msgpack's
// reflection reads one: n pairs of a map of its fields by tag, or, with
// array set, an array of all its fields in order. n < 0 is nil or an
// empty array: the zero struct.
func (d *decoder) structHead(fields int) (n int, array bool, err error) {
	c, err := d.code()
	if err != nil {
		return 0, false, err
	}
	switch {
	case c >= 0x80 && c <= 0x8f:
		n = int(c & 0x0f)
	case c == 0xc0:
		return -1, false, nil
	case c == 0xde:
		n, err = d.size(2)
	case c == 0xdf:
		n, err = d.size(4)
	case isArrayCode(c):
		d.off-- // arrayLen reads the code again
		if n, err = d.arrayLen(); err != nil {
			return 0, false, err
		}
		if n == 0 {
			return -1, true, nil
		}
		if n != fields {
			return 0, false, fmt.Errorf("struct of %d fields as an array of %d", fields, n)
		}
		return n, true, nil
	default:
		return 0, false, fmt.Errorf("code 0x%02x for a struct", c)
	}
	if err != nil {
		return 0, false, err
	}
	if n > (len(d.b)-d.off)/2 {
		return 0, false, fmt.Errorf("map of %d pairs in %d bytes", n, len(d.b)-d.off)
	}
	return n, false, nil
}

// skip passes over one value nested depth deep (the value decoded is at
// 0), refusing what mpcheck.Check refuses: unknown codes, lengths past the
// end, containers at mpcheck.MaxDepth or deeper.
func (d *decoder) skip(depth int) error {
	c, err := d.code()
	if err != nil {
		return err
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		_, err = d.take(int(c & 0x1f))
		return err
	case c >= 0x90 && c <= 0x9f:
		return d.skipN(int(c&0x0f), depth)
	case c >= 0x80 && c <= 0x8f:
		return d.skipN(2*int(c&0x0f), depth)
	}
	var n, extra int
	switch c {
	case 0xcc, 0xd0:
		n = 1
	case 0xcd, 0xd1:
		n = 2
	case 0xca, 0xce, 0xd2:
		n = 4
	case 0xcb, 0xcf, 0xd3:
		n = 8
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type and 1 to 16 bytes
		n = 1 + 1<<(c-0xd4)
	case 0xc4, 0xd9:
		n, err = d.size(1)
	case 0xc5, 0xda:
		n, err = d.size(2)
	case 0xc6, 0xdb:
		n, err = d.size(4)
	case 0xc7, 0xc8, 0xc9: // ext: length, type, data
		n, err = d.size(1 << (c - 0xc7))
		extra = 1
	case 0xdc, 0xdd, 0xde, 0xdf:
		if n, err = d.size(2 << ((c - 0xdc) % 2)); err != nil {
			return err
		}
		if c >= 0xde {
			n *= 2
		}
		return d.skipN(n, depth)
	default:
		return fmt.Errorf("unknown code 0x%02x", c)
	}
	if err != nil {
		return err
	}
	_, err = d.take(n + extra)
	return err
}

// skipN skips the n elements of a container nested depth deep.
func (d *decoder) skipN(n, depth int) error {
	if depth >= mpcheck.MaxDepth {
		return fmt.Errorf("nested deeper than %d", mpcheck.MaxDepth)
	}
	if n > len(d.b)-d.off {
		return fmt.Errorf("%d elements in %d bytes", n, len(d.b)-d.off)
	}
	for range n {
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
