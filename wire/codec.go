package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/golang/snappy"
)

// frameCodec holds the buffers to encode or decode frames; it is not safe
// for concurrent use.
type frameCodec struct {
	w    *mpWriter
	mp   *mpReader
	buf  []byte // compressed body when encoding, decompressed when decoding
	refs map[uint64]struct{}
	lim  Limits
}

func newCodec(lim Limits) (*frameCodec, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	return &frameCodec{lim: lim}, nil
}

// AppendFrame appends f, encoded as a frame, to dst. f.BodyLen is ignored:
// the body's length is what it encodes to. It returns ErrInvalid when f is
// not a valid frame and ErrTooLarge when it does not fit lim.
func AppendFrame(dst []byte, f *Frame, lim Limits) ([]byte, error) {
	c, err := newCodec(lim)
	if err != nil {
		return dst, err
	}
	return c.appendFrame(dst, f)
}

func (c *frameCodec) appendFrame(dst []byte, f *Frame) ([]byte, error) {
	if err := f.validate(&c.lim, ErrInvalid, c.scratchRefs()); err != nil {
		return dst, err
	}
	if c.w == nil {
		c.w = newWriter()
	}
	c.w.reset()
	c.w.writeBody(f)
	if c.w.err != nil {
		return dst, fmt.Errorf("encode body: %w", c.w.err)
	}
	body := c.w.buf.Bytes()
	if len(body) > c.lim.MaxBodyBytes {
		return dst, fmt.Errorf("%w: body of %d bytes, limit %d", ErrTooLarge, len(body), c.lim.MaxBodyBytes)
	}
	c.buf = snappy.Encode(c.buf[:cap(c.buf)], body)
	h := f.Header
	h.BodyLen = len(c.buf)
	if n := h.Len(); n > c.lim.MaxFrameBytes {
		return dst, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, n, c.lim.MaxFrameBytes)
	}
	start := len(dst)
	dst = slices.Grow(dst, h.Len())
	dst = appendHeader(dst, &h)
	dst = append(dst, c.buf...)
	binary.BigEndian.PutUint32(dst[start+offCRC:], frameChecksum(dst[start:]))
	return dst, nil
}

// Decode decodes b, which must be exactly one frame, within lim.
func Decode(b []byte, lim Limits) (*Frame, error) {
	c, err := newCodec(lim)
	if err != nil {
		return nil, err
	}
	h, err := DecodeHeader(b, c.lim)
	if err != nil {
		return nil, err
	}
	if len(b) != h.Len() {
		return nil, fmt.Errorf("%w: %d bytes for a frame of %d", ErrCorrupt, len(b), h.Len())
	}
	if err := verifyChecksum(b); err != nil {
		return nil, err
	}
	return c.decodeBody(&h, b[HeaderSize+len(h.AgentID):])
}

// decodeBody decompresses and decodes a body whose frame's header and
// checksum were checked.
func (c *frameCodec) decodeBody(h *Header, src []byte) (*Frame, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrCorrupt, err)
	}
	if n > c.lim.MaxBodyBytes {
		return nil, fmt.Errorf("%w: body of %d bytes decompressed, limit %d", ErrTooLarge, n, c.lim.MaxBodyBytes)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrCorrupt)
	}
	if n/maxSnappyRatio > len(src) {
		// Snappy cannot expand that much (a 3-byte copy yields at most 64
		// bytes): the length is a lie, and allocating it would let a small
		// frame cost MaxBodyBytes.
		return nil, fmt.Errorf("%w: body claims %d bytes from %d", ErrCorrupt, n, len(src))
	}
	c.buf = slices.Grow(c.buf[:0], n)[:n]
	body, err := snappy.Decode(c.buf, src)
	if err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrCorrupt, err)
	}
	if c.mp == nil {
		c.mp = newMPReader()
	}
	c.mp.reset(body, &c.lim)
	f := &Frame{Header: *h}
	if err := c.mp.readBody(f); err != nil {
		return nil, fmt.Errorf("frame %d: %w", h.Seq, err)
	}
	if err := f.validate(&c.lim, ErrCorrupt, c.scratchRefs()); err != nil {
		return nil, fmt.Errorf("frame %d: %w", h.Seq, err)
	}
	return f, nil
}

// scratchRefs returns an empty map for Frame.validate.
func (c *frameCodec) scratchRefs() map[uint64]struct{} {
	if c.refs == nil {
		c.refs = map[uint64]struct{}{}
	}
	clear(c.refs)
	return c.refs
}

// maxSnappyRatio bounds how much snappy expands its input: 64 bytes from a
// 3-byte copy element, rounded up.
const maxSnappyRatio = 22

// readChunk bounds how much a Reader allocates ahead of the bytes it
// actually received, so that a header announcing a large frame costs
// memory only as the frame arrives.
const readChunk = 64 << 10

// Reader reads concatenated frames from a stream, one at a time. Next
// checks each frame's header and checksum, so that the caller can decide
// from the header alone whether to decode the body.
//
// A stream is not resynchronized after an error: every error from Next is
// returned again by later calls, and the caller should close the stream.
type Reader struct {
	r     io.Reader
	codec *frameCodec
	frame []byte // the current frame
	h     Header
	err   error
}

// NewReader returns a Reader of the frames in r, within lim.
func NewReader(r io.Reader, lim Limits) (*Reader, error) {
	c, err := newCodec(lim)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, codec: c}, nil
}

// Next reads the next frame and returns its header. It returns io.EOF when
// the stream ends between frames, and an error that matches both
// ErrCorrupt and io.ErrUnexpectedEOF when it ends inside one.
func (r *Reader) Next() (Header, error) {
	if r.err != nil {
		return Header{}, r.err
	}
	h, err := r.next()
	if err != nil {
		r.err = err
		r.frame = r.frame[:0]
		return Header{}, err
	}
	r.h = h
	return h, nil
}

func (r *Reader) next() (Header, error) {
	r.frame = slices.Grow(r.frame[:0], HeaderSize)[:HeaderSize]
	if n, err := io.ReadFull(r.r, r.frame); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return Header{}, io.EOF
		}
		return Header{}, streamErr(err)
	}
	h, idLen, err := decodeFixed(r.frame)
	if err != nil {
		return Header{}, err
	}
	if n := HeaderSize + idLen + h.BodyLen; n > r.codec.lim.MaxFrameBytes {
		return Header{}, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, n, r.codec.lim.MaxFrameBytes)
	}
	if r.frame, err = readGrow(r.r, r.frame, idLen+h.BodyLen); err != nil {
		return Header{}, streamErr(err)
	}
	h.AgentID = string(r.frame[HeaderSize : HeaderSize+idLen])
	if err := h.check(&r.codec.lim); err != nil {
		return Header{}, err
	}
	if err := verifyChecksum(r.frame); err != nil {
		return Header{}, err
	}
	return h, nil
}

func streamErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ends inside a frame: %w", ErrCorrupt, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("read frame: %w", err)
}

// readGrow appends n bytes read from r to b, growing b no faster than the
// bytes arrive.
func readGrow(r io.Reader, b []byte, n int) ([]byte, error) {
	for n > 0 {
		c := min(n, readChunk)
		b = slices.Grow(b, c)
		got, err := io.ReadFull(r, b[len(b):len(b)+c])
		b = b[:len(b)+got]
		if err != nil {
			return b, err
		}
		n -= c
	}
	return b, nil
}

// Raw returns the current frame's bytes, valid until the next call to
// Next.
func (r *Reader) Raw() []byte { return r.frame }

// Frame decodes the current frame's body. An error here concerns this frame
// only: the stream stays in step and Next may go on.
func (r *Reader) Frame() (*Frame, error) {
	if r.err != nil || len(r.frame) == 0 {
		return nil, fmt.Errorf("%w: no current frame", ErrInvalid)
	}
	return r.codec.decodeBody(&r.h, r.frame[HeaderSize+len(r.h.AgentID):])
}
