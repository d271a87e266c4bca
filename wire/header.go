package wire

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Version is the frame and ack format version this package reads and writes.
const Version = 1

// Frame header layout. All integers are big-endian.
const (
	// HeaderSize is the size of the fixed part of a frame header; the
	// agent id follows it, then the body.
	HeaderSize = 40
	// MaxAgentIDLen is the longest agent id: a Kubernetes node name, which
	// is a DNS subdomain.
	MaxAgentIDLen = 253

	offMagic       = 0
	offVersion     = 4
	offFlags       = 5
	offAgentIDLen  = 6
	offReserved    = 7
	offIncarnation = 8
	offSeq         = 16
	offBase        = 24
	offBodyLen     = 32
	offCRC         = 36

	flagKeyframe  = 1 << 0
	flagsReserved = ^uint8(flagKeyframe)
)

// frameMagic starts every frame.
var frameMagic = [4]byte{'P', 'N', 'Y', 'F'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is what a frame's header says: enough to decide, without
// decompressing the body, whether the frame is a duplicate, in order, or
// follows a gap.
type Header struct {
	// Keyframe is set when the body carries every live series with
	// absolute values and replaces the receiver's state.
	Keyframe bool
	// AgentID names the agent (its node name): 1 to 253 printable ASCII
	// characters, no space.
	AgentID string
	// Incarnation is random per agent process start, never zero.
	Incarnation uint64
	// Seq numbers the frames of one incarnation from 1.
	Seq uint64
	// Base is the Seq this frame's deltas apply to (Seq-1 as the Encoder
	// writes them), 0 for a keyframe.
	Base uint64
	// BodyLen is the length of the compressed body.
	BodyLen int
}

// Len returns the length of the whole frame h heads.
func (h *Header) Len() int { return HeaderSize + len(h.AgentID) + h.BodyLen }

// check validates the header's fields against each other and lim.
func (h *Header) check(lim *Limits) error {
	if err := h.checkSeq(ErrCorrupt); err != nil {
		return err
	}
	if h.BodyLen <= 0 {
		return fmt.Errorf("%w: header: empty body", ErrCorrupt)
	}
	if n := h.Len(); n > lim.MaxFrameBytes {
		return fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, n, lim.MaxFrameBytes)
	}
	return nil
}

// checkSeq validates the agent id, incarnation, seq and base, reporting a
// violation as kind.
func (h *Header) checkSeq(kind error) error {
	if err := checkAgentID(h.AgentID, kind); err != nil {
		return err
	}
	if h.Incarnation == 0 {
		return fmt.Errorf("%w: header: incarnation 0", kind)
	}
	if h.Seq == 0 {
		return fmt.Errorf("%w: header: seq 0", kind)
	}
	if h.Keyframe && h.Base != 0 {
		return fmt.Errorf("%w: header: keyframe %d with base %d", kind, h.Seq, h.Base)
	}
	if !h.Keyframe && (h.Base == 0 || h.Base >= h.Seq) {
		return fmt.Errorf("%w: header: delta %d with base %d", kind, h.Seq, h.Base)
	}
	return nil
}

func checkAgentID(id string, kind error) error {
	if len(id) == 0 || len(id) > MaxAgentIDLen {
		return fmt.Errorf("%w: agent id of %d bytes, want 1 to %d", kind, len(id), MaxAgentIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: agent id: byte %#x at %d", kind, c, i)
		}
	}
	return nil
}

// decodeFixed parses the fixed part of a header, b[:HeaderSize], and returns
// the header without its agent id, and the agent id's length.
func decodeFixed(b []byte) (Header, int, error) {
	if len(b) < HeaderSize {
		return Header{}, 0, fmt.Errorf("%w: header truncated at %d bytes", ErrCorrupt, len(b))
	}
	if [4]byte(b[offMagic:]) != frameMagic {
		return Header{}, 0, fmt.Errorf("%w: %q is not a frame", ErrBadMagic, b[offMagic:offMagic+4])
	}
	if v := b[offVersion]; v != Version {
		return Header{}, 0, fmt.Errorf("%w: frame version %d, want %d", ErrVersion, v, Version)
	}
	flags := b[offFlags]
	if flags&flagsReserved != 0 {
		return Header{}, 0, fmt.Errorf("%w: header: reserved flags %#x", ErrCorrupt, flags)
	}
	if b[offReserved] != 0 {
		return Header{}, 0, fmt.Errorf("%w: header: reserved byte %#x", ErrCorrupt, b[offReserved])
	}
	bodyLen := binary.BigEndian.Uint32(b[offBodyLen:])
	if uint64(bodyLen) > capFrameBytes {
		return Header{}, 0, fmt.Errorf("%w: body of %d bytes", ErrTooLarge, bodyLen)
	}
	h := Header{
		Keyframe:    flags&flagKeyframe != 0,
		Incarnation: binary.BigEndian.Uint64(b[offIncarnation:]),
		Seq:         binary.BigEndian.Uint64(b[offSeq:]),
		Base:        binary.BigEndian.Uint64(b[offBase:]),
		BodyLen:     int(bodyLen),
	}
	return h, int(b[offAgentIDLen]), nil
}

// DecodeHeader parses the header at the start of b, which must hold at
// least the fixed header and the agent id. It checks the header's fields
// and that the frame fits lim, but not the checksum, which covers the body
// too: Decode and Reader check it.
func DecodeHeader(b []byte, lim Limits) (Header, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return Header{}, err
	}
	h, idLen, err := decodeFixed(b)
	if err != nil {
		return Header{}, err
	}
	if len(b) < HeaderSize+idLen {
		return Header{}, fmt.Errorf("%w: header truncated at %d bytes", ErrCorrupt, len(b))
	}
	h.AgentID = string(b[HeaderSize : HeaderSize+idLen])
	if err := h.check(&lim); err != nil {
		return Header{}, err
	}
	return h, nil
}

// appendHeader appends h's header, with a zero checksum, to b.
func appendHeader(b []byte, h *Header) []byte {
	var flags uint8
	if h.Keyframe {
		flags |= flagKeyframe
	}
	b = append(b, frameMagic[:]...)
	b = append(b, Version, flags, uint8(len(h.AgentID)), 0)
	b = binary.BigEndian.AppendUint64(b, h.Incarnation)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = binary.BigEndian.AppendUint64(b, h.Base)
	b = binary.BigEndian.AppendUint32(b, uint32(h.BodyLen))
	b = append(b, 0, 0, 0, 0)
	return append(b, h.AgentID...)
}

// frameChecksum returns the CRC32C of a whole frame except its checksum
// field.
func frameChecksum(frame []byte) uint32 {
	c := crc32.Update(0, castagnoli, frame[:offCRC])
	return crc32.Update(c, castagnoli, frame[offCRC+4:])
}

// verifyChecksum checks the checksum of a whole frame.
func verifyChecksum(frame []byte) error {
	want := binary.BigEndian.Uint32(frame[offCRC:])
	if got := frameChecksum(frame); got != want {
		return fmt.Errorf("%w: checksum %#08x, header says %#08x", ErrCorrupt, got, want)
	}
	return nil
}
