package wire

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// unbounded is the limit of a length that only the bytes left bound.
const unbounded = math.MaxInt

// maxSkipDepth bounds the nesting of an unknown field a decoder skips, so
// that a hostile body cannot recurse deeply.
const maxSkipDepth = 16

// mpWriter writes msgpack through a msgpack.Encoder into a buffer, keeping
// the first error.
type mpWriter struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	err error
}

func newWriter() *mpWriter {
	w := &mpWriter{}
	w.enc = msgpack.NewEncoder(&w.buf)
	return w
}

func (w *mpWriter) reset() { w.buf.Reset(); w.err = nil }

func (w *mpWriter) uint(v uint64) {
	if w.err == nil {
		w.err = w.enc.EncodeUint(v)
	}
}

func (w *mpWriter) int(v int64) {
	if w.err == nil {
		w.err = w.enc.EncodeInt(v)
	}
}

func (w *mpWriter) string(s string) {
	if w.err == nil {
		w.err = w.enc.EncodeString(s)
	}
}

func (w *mpWriter) arrayLen(n int) {
	if w.err == nil {
		w.err = w.enc.EncodeArrayLen(n)
	}
}

func (w *mpWriter) mapLen(n int) {
	if w.err == nil {
		w.err = w.enc.EncodeMapLen(n)
	}
}

// meta writes a metadata map with its keys in order, so that equal maps
// encode to equal bytes.
func (w *mpWriter) meta(m map[string]string) {
	w.mapLen(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.string(k)
		w.string(m[k])
	}
}

// mpReader decodes msgpack from a byte slice strictly and within limits.
// Every length is checked against the limits and the bytes left before
// anything is allocated for it; values of unexpected types are errors,
// never coerced.
type mpReader struct {
	r       bytes.Reader
	dec     *msgpack.Decoder
	lim     *Limits
	scratch []byte
	// seriesKeys is the first series key the reader does not know:
	// numSeriesKeys; tests lower it to decode as an older decoder does.
	seriesKeys uint64
}

func newMPReader() *mpReader {
	m := &mpReader{seriesKeys: numSeriesKeys}
	m.dec = msgpack.NewDecoder(nil)
	return m
}

// reset starts decoding b. The decoder reads b through m.r directly (a
// bytes.Reader is an io.ByteScanner, so it adds no buffering), so m.r.Len()
// is always the number of bytes left.
func (m *mpReader) reset(b []byte, lim *Limits) {
	m.r.Reset(b)
	m.dec.Reset(&m.r)
	m.lim = lim
}

func (m *mpReader) left() int { return m.r.Len() }

func (m *mpReader) peek() (byte, error) {
	c, err := m.dec.PeekCode()
	if err != nil {
		return 0, truncated(err)
	}
	return c, nil
}

// truncated turns a read error into ErrCorrupt.
func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: body truncated", ErrCorrupt)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

func unexpected(c byte, want string) error {
	return fmt.Errorf("%w: msgpack code %#02x where %s was expected", ErrCorrupt, c, want)
}

// uint reads a non-negative integer of any msgpack integer type.
func (m *mpReader) uint() (uint64, error) {
	c, err := m.peek()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= msgpcode.PosFixedNumHigh, c >= msgpcode.Uint8 && c <= msgpcode.Uint64:
		v, err := m.dec.DecodeUint64()
		if err != nil {
			return 0, truncated(err)
		}
		return v, nil
	case c >= msgpcode.Int8 && c <= msgpcode.Int64, c >= msgpcode.NegFixedNumLow:
		v, err := m.dec.DecodeInt64()
		if err != nil {
			return 0, truncated(err)
		}
		if v < 0 {
			return 0, fmt.Errorf("%w: negative value %d where an unsigned one was expected", ErrCorrupt, v)
		}
		return uint64(v), nil
	}
	return 0, unexpected(c, "an unsigned integer")
}

// int reads a signed integer of any msgpack integer type.
func (m *mpReader) int() (int64, error) {
	c, err := m.peek()
	if err != nil {
		return 0, err
	}
	switch {
	case c == msgpcode.Uint64:
		v, err := m.dec.DecodeUint64()
		if err != nil {
			return 0, truncated(err)
		}
		if v > 1<<63-1 {
			return 0, fmt.Errorf("%w: %d overflows a signed integer", ErrCorrupt, v)
		}
		return int64(v), nil
	case msgpcode.IsFixedNum(c), c >= msgpcode.Uint8 && c <= msgpcode.Uint32, c >= msgpcode.Int8 && c <= msgpcode.Int64:
		v, err := m.dec.DecodeInt64()
		if err != nil {
			return 0, truncated(err)
		}
		return v, nil
	}
	return 0, unexpected(c, "an integer")
}

// string reads a msgpack str of at most the string length limit.
func (m *mpReader) string() (string, error) {
	c, err := m.peek()
	if err != nil {
		return "", err
	}
	if !msgpcode.IsString(c) {
		return "", unexpected(c, "a string")
	}
	n, err := m.dec.DecodeBytesLen()
	if err != nil {
		return "", truncated(err)
	}
	if n > m.lim.MaxStringLen {
		return "", fmt.Errorf("%w: string of %d bytes, limit %d", ErrTooLarge, n, m.lim.MaxStringLen)
	}
	if n > m.left() {
		return "", fmt.Errorf("%w: string of %d bytes, %d left", ErrCorrupt, n, m.left())
	}
	m.scratch = slices.Grow(m.scratch[:0], n)[:n]
	if _, err := io.ReadFull(&m.r, m.scratch); err != nil {
		return "", truncated(err)
	}
	return string(m.scratch), nil
}

// arrayLen reads an array header of at most max elements, each of which
// takes at least minSize bytes.
func (m *mpReader) arrayLen(max, minSize int) (int, error) {
	c, err := m.peek()
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		return 0, unexpected(c, "an array")
	}
	n, err := m.dec.DecodeArrayLen()
	if err != nil {
		return 0, truncated(err)
	}
	return n, m.checkLen(n, max, minSize)
}

// mapLen reads a map header of at most max entries, each of which takes at
// least minSize bytes.
func (m *mpReader) mapLen(max, minSize int) (int, error) {
	c, err := m.peek()
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return 0, unexpected(c, "a map")
	}
	n, err := m.dec.DecodeMapLen()
	if err != nil {
		return 0, truncated(err)
	}
	return n, m.checkLen(n, max, minSize)
}

func (m *mpReader) checkLen(n, max, minSize int) error {
	if n > max {
		return fmt.Errorf("%w: %d elements, limit %d", ErrTooLarge, n, max)
	}
	if n > m.left()/minSize {
		return fmt.Errorf("%w: %d elements in %d bytes", ErrCorrupt, n, m.left())
	}
	return nil
}

// meta reads a metadata map: unique, non-empty string keys and string
// values within the limits. An empty map reads as nil.
func (m *mpReader) meta() (map[string]string, error) {
	n, err := m.mapLen(m.lim.MaxMetaEntries, 2)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	meta := make(map[string]string, n)
	for range n {
		k, err := m.string()
		if err != nil {
			return nil, err
		}
		v, err := m.string()
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, fmt.Errorf("%w: empty metadata key", ErrCorrupt)
		}
		if _, ok := meta[k]; ok {
			return nil, fmt.Errorf("%w: metadata key %.32q twice", ErrCorrupt, k)
		}
		meta[k] = v
	}
	return meta, nil
}

// skip skips one value of an unknown field: any msgpack type but ext,
// nested at most maxSkipDepth deep, without allocating.
func (m *mpReader) skip(depth int) error {
	if depth > maxSkipDepth {
		return fmt.Errorf("%w: unknown field nested deeper than %d", ErrCorrupt, maxSkipDepth)
	}
	c, err := m.peek()
	if err != nil {
		return err
	}
	switch {
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
		n, err := m.mapLen(unbounded, 2)
		if err != nil {
			return err
		}
		return m.skipN(2*n, depth)
	case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
		n, err := m.arrayLen(unbounded, 1)
		if err != nil {
			return err
		}
		return m.skipN(n, depth)
	case msgpcode.IsString(c), msgpcode.IsBin(c):
		n, err := m.dec.DecodeBytesLen()
		if err != nil {
			return truncated(err)
		}
		if n > m.left() {
			return fmt.Errorf("%w: %d bytes to skip, %d left", ErrCorrupt, n, m.left())
		}
		_, err = m.r.Seek(int64(n), io.SeekCurrent)
		return err
	case msgpcode.IsExt(c):
		return unexpected(c, "a value other than ext")
	}
	// A scalar: nil, bool, an integer or a float, at most 9 bytes.
	if err := m.dec.Skip(); err != nil {
		return truncated(err)
	}
	return nil
}

func (m *mpReader) skipN(n, depth int) error {
	for range n {
		if err := m.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
