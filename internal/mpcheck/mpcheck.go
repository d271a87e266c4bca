package mpcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed means the input is not one well-formed msgpack value within
// the limits.
var ErrMalformed = errors.New("mpcheck: malformed msgpack")

// MaxDepth is the deepest nesting of arrays and maps Check accepts.
const MaxDepth = 32

// Check verifies that b holds exactly one msgpack value whose every declared
// length fits in b, nested at most MaxDepth deep.
func Check(b []byte) error {
	n, err := value(b, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-n)
	}
	return nil
}

// value returns the length of the value at the start of b.
func value(b []byte, depth int) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	c := b[0]
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3: // fixints, nil, bool
		return 1, nil
	case c >= 0xa0 && c <= 0xbf: // fixstr
		return sized(b, 1, int(c&0x1f))
	case c >= 0x90 && c <= 0x9f: // fixarray
		return container(b, 1, int(c&0x0f), 1, depth)
	case c >= 0x80 && c <= 0x8f: // fixmap
		return container(b, 1, int(c&0x0f), 2, depth)
	}
	switch c {
	case 0xcc, 0xd0: // uint8, int8
		return fixed(b, 2)
	case 0xcd, 0xd1: // uint16, int16
		return fixed(b, 3)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return fixed(b, 5)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return fixed(b, 9)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 (+ type byte)
		return fixed(b, 2+1<<(c-0xd4))
	case 0xc4, 0xd9: // bin8, str8
		return length(b, 1, 0)
	case 0xc5, 0xda: // bin16, str16
		return length(b, 2, 0)
	case 0xc6, 0xdb: // bin32, str32
		return length(b, 4, 0)
	case 0xc7: // ext8
		return length(b, 1, 1)
	case 0xc8: // ext16
		return length(b, 2, 1)
	case 0xc9: // ext32
		return length(b, 4, 1)
	case 0xdc, 0xde: // array16, map16
		return counted(b, 2, c == 0xde, depth)
	case 0xdd, 0xdf: // array32, map32
		return counted(b, 4, c == 0xdf, depth)
	}
	return 0, fmt.Errorf("%w: unknown type 0x%02x", ErrMalformed, c)
}

func fixed(b []byte, n int) (int, error) {
	if len(b) < n {
		return 0, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	return n, nil
}

// header reads a big-endian length of size bytes after the type byte.
func header(b []byte, size int) (uint64, error) {
	if len(b) < 1+size {
		return 0, fmt.Errorf("%w: truncated length", ErrMalformed)
	}
	switch size {
	case 1:
		return uint64(b[1]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b[1:])), nil
	default:
		return uint64(binary.BigEndian.Uint32(b[1:])), nil
	}
}

// length handles str, bin and ext: size length bytes, extra bytes (the ext
// type), then the payload.
func length(b []byte, size, extra int) (int, error) {
	n, err := header(b, size)
	if err != nil {
		return 0, err
	}
	return sized(b, 1+size+extra, int(min(n, uint64(len(b)))))
}

// sized checks that a payload of n bytes after a head of h bytes fits.
func sized(b []byte, h, n int) (int, error) {
	if n < 0 || len(b)-h < n {
		return 0, fmt.Errorf("%w: a length of %d overruns the input", ErrMalformed, n)
	}
	return h + n, nil
}

func counted(b []byte, size int, isMap bool, depth int) (int, error) {
	n, err := header(b, size)
	if err != nil {
		return 0, err
	}
	per := 1
	if isMap {
		per = 2
	}
	return container(b, 1+size, int(min(n, uint64(len(b)))), per, depth)
}

// container checks n elements (n pairs for a map) after a head of h bytes.
func container(b []byte, h, n, per, depth int) (int, error) {
	if depth >= MaxDepth {
		return 0, fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
	}
	// Every element takes at least one byte.
	if n*per > len(b)-h {
		return 0, fmt.Errorf("%w: %d elements overrun the input", ErrMalformed, n*per)
	}
	off := h
	for range n * per {
		m, err := value(b[off:], depth+1)
		if err != nil {
			return 0, err
		}
		off += m
	}
	return off, nil
}
