package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// AckSize is the size of an encoded Ack. Acks are fixed-size and
// big-endian:
//
//	0  4  magic "PNYA"
//	4  1  version
//	5  1  status
//	6  1  reason
//	7  1  reserved, zero
//	8  8  incarnation
//	16 8  seq
//	24 8  applied
//	32 4  CRC32C of bytes 0 to 31
const AckSize = 36

var ackMagic = [4]byte{'P', 'N', 'Y', 'A'}

// Status is an aggregator's answer to a frame.
type Status uint8

// Statuses. The agent's reaction to each is documented in docs/wire.md.
const (
	// StatusOK: the frame was applied.
	StatusOK Status = 1
	// StatusDuplicate: the frame's seq was already applied; nothing to do.
	StatusDuplicate Status = 2
	// StatusGap: frames are missing; resend from Applied+1, or send a
	// keyframe when those frames are gone.
	StatusGap Status = 3
	// StatusNeedKeyframe: the aggregator holds nothing for this
	// incarnation; send a keyframe.
	StatusNeedKeyframe Status = 4
	// StatusRejected: the frame was refused for Reason; send a keyframe
	// (or, for ReasonOverloaded, retry later).
	StatusRejected Status = 5
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusDuplicate:
		return "duplicate"
	case StatusGap:
		return "gap"
	case StatusNeedKeyframe:
		return "need keyframe"
	case StatusRejected:
		return "rejected"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Reason says why a frame was rejected; it is ReasonNone for any other
// status.
type Reason uint8

// Reasons.
const (
	ReasonNone          Reason = 0
	ReasonCorrupt       Reason = 1 // malformed, or checksum mismatch
	ReasonTooLarge      Reason = 2 // over the aggregator's limits
	ReasonVersion       Reason = 3 // bad magic or unsupported version
	ReasonInconsistent  Reason = 4 // does not apply to the aggregator's state
	ReasonAgentMismatch Reason = 5 // another agent id on this stream
	ReasonOverloaded    Reason = 6 // the aggregator sheds load: retry later
	ReasonOther         Reason = 255
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonCorrupt:
		return "corrupt"
	case ReasonTooLarge:
		return "too large"
	case ReasonVersion:
		return "version"
	case ReasonInconsistent:
		return "inconsistent"
	case ReasonAgentMismatch:
		return "agent mismatch"
	case ReasonOverloaded:
		return "overloaded"
	case ReasonOther:
		return "other"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

func (r Reason) known() bool { return r <= ReasonOverloaded || r == ReasonOther }

// Ack is what an aggregator streams back for a frame, or for the last of a
// batch of frames.
type Ack struct {
	Incarnation uint64 // of the frame answered
	Seq         uint64 // the frame answered, 0 when the ack answers no frame in particular
	// Applied is the highest seq applied in order for Incarnation, 0 when
	// nothing is.
	Applied uint64
	Status  Status
	Reason  Reason
}

func (a *Ack) check(kind error) error {
	switch a.Status {
	case StatusOK, StatusDuplicate, StatusGap, StatusNeedKeyframe:
		if a.Reason != ReasonNone {
			return fmt.Errorf("%w: ack %v with reason %v", kind, a.Status, a.Reason)
		}
	case StatusRejected:
		if a.Reason == ReasonNone || !a.Reason.known() {
			return fmt.Errorf("%w: rejection with reason %v", kind, a.Reason)
		}
	default:
		return fmt.Errorf("%w: ack status %v", kind, a.Status)
	}
	if a.Status == StatusOK && a.Applied == 0 {
		return fmt.Errorf("%w: ok ack with nothing applied", kind)
	}
	return nil
}

// AppendBinary implements encoding.BinaryAppender: it appends a's AckSize
// bytes to b.
func (a *Ack) AppendBinary(b []byte) ([]byte, error) {
	if err := a.check(ErrInvalid); err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, ackMagic[:]...)
	b = append(b, Version, uint8(a.Status), uint8(a.Reason), 0)
	b = binary.BigEndian.AppendUint64(b, a.Incarnation)
	b = binary.BigEndian.AppendUint64(b, a.Seq)
	b = binary.BigEndian.AppendUint64(b, a.Applied)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
}

// DecodeAck decodes b, which must be exactly one ack.
func DecodeAck(b []byte) (Ack, error) {
	if len(b) != AckSize {
		return Ack{}, fmt.Errorf("%w: ack of %d bytes, want %d", ErrCorrupt, len(b), AckSize)
	}
	if [4]byte(b) != ackMagic {
		return Ack{}, fmt.Errorf("%w: %q is not an ack", ErrBadMagic, b[:4])
	}
	if b[4] != Version {
		return Ack{}, fmt.Errorf("%w: ack version %d, want %d", ErrVersion, b[4], Version)
	}
	if got, want := crc32.Checksum(b[:32], castagnoli), binary.BigEndian.Uint32(b[32:]); got != want {
		return Ack{}, fmt.Errorf("%w: ack checksum %#08x, ack says %#08x", ErrCorrupt, got, want)
	}
	if b[7] != 0 {
		return Ack{}, fmt.Errorf("%w: ack reserved byte %#x", ErrCorrupt, b[7])
	}
	a := Ack{
		Status:      Status(b[5]),
		Reason:      Reason(b[6]),
		Incarnation: binary.BigEndian.Uint64(b[8:]),
		Seq:         binary.BigEndian.Uint64(b[16:]),
		Applied:     binary.BigEndian.Uint64(b[24:]),
	}
	if err := a.check(ErrCorrupt); err != nil {
		return Ack{}, err
	}
	return a, nil
}

// ReadAck reads one ack from r. It returns io.EOF when r ends before the
// ack, and an error matching ErrCorrupt and io.ErrUnexpectedEOF when r ends
// inside it.
func ReadAck(r io.Reader) (Ack, error) {
	var b [AckSize]byte
	if n, err := io.ReadFull(r, b[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return Ack{}, io.EOF
		}
		return Ack{}, streamErr(err)
	}
	return DecodeAck(b[:])
}

// Ack returns the ack for the frame headed h, given what Apply returned for
// it (or what decoding it returned).
func (s *State) Ack(h *Header, err error) Ack {
	a := Ack{Incarnation: h.Incarnation, Seq: h.Seq, Status: StatusOK}
	if h.Incarnation == s.inc {
		a.Applied = s.applied
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrDuplicate):
		a.Status = StatusDuplicate
	case errors.Is(err, ErrGap):
		a.Status = StatusGap
	case errors.Is(err, ErrNeedKeyframe):
		a.Status = StatusNeedKeyframe
	default:
		a.Status, a.Reason = StatusRejected, reasonOf(err)
	}
	return a
}

func reasonOf(err error) Reason {
	switch {
	case errors.Is(err, ErrAgentMismatch):
		return ReasonAgentMismatch
	case errors.Is(err, ErrInconsistent):
		return ReasonInconsistent
	case errors.Is(err, ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, ErrBadMagic), errors.Is(err, ErrVersion):
		return ReasonVersion
	case errors.Is(err, ErrCorrupt):
		return ReasonCorrupt
	}
	return ReasonOther
}
