package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
)

func TestAckRoundTrip(t *testing.T) {
	acks := []Ack{
		{Incarnation: 1, Seq: 5, Applied: 5, Status: StatusOK},
		{Incarnation: 1, Seq: 4, Applied: 5, Status: StatusDuplicate},
		{Incarnation: 1, Seq: 9, Applied: 5, Status: StatusGap},
		{Incarnation: 2, Seq: 3, Status: StatusNeedKeyframe},
		{Incarnation: 2, Seq: 3, Status: StatusRejected, Reason: ReasonOverloaded},
		{Status: StatusRejected, Reason: ReasonOther},
	}
	var stream []byte
	for _, a := range acks {
		var err error
		if stream, err = a.AppendBinary(stream); err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
	}
	if len(stream) != len(acks)*AckSize {
		t.Fatalf("%d bytes for %d acks", len(stream), len(acks))
	}
	r := bytes.NewReader(stream)
	for _, want := range acks {
		got, err := ReadAck(r)
		if err != nil || got != want {
			t.Fatalf("ReadAck = %+v, %v; want %+v", got, err, want)
		}
	}
	if _, err := ReadAck(r); err != io.EOF {
		t.Fatalf("after the last ack: %v, want io.EOF", err)
	}
	r = bytes.NewReader(stream[:AckSize+3])
	if _, err := ReadAck(r); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAck(r); !errors.Is(err, ErrCorrupt) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated ack: %v", err)
	}
}

func TestAckInvalid(t *testing.T) {
	for _, a := range []Ack{
		{},
		{Status: 9},
		{Status: StatusOK, Applied: 1, Reason: ReasonCorrupt},
		{Status: StatusOK},
		{Status: StatusRejected},
		{Status: StatusRejected, Reason: 100},
	} {
		if _, err := a.AppendBinary(nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", a, err)
		}
	}
}

func TestDecodeAckCorrupt(t *testing.T) {
	good, err := (&Ack{Incarnation: 1, Seq: 2, Applied: 2, Status: StatusOK}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli))
		return b
	}
	mutate := func(i int, v byte, resign bool) []byte {
		b := bytes.Clone(good)
		b[i] = v
		if resign {
			sign(b)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:AckSize-1], ErrCorrupt},
		{"long", append(bytes.Clone(good), 0), ErrCorrupt},
		{"bad magic", mutate(0, 'X', true), ErrBadMagic},
		{"a frame's magic", mutate(3, 'F', true), ErrBadMagic},
		{"version", mutate(4, 2, true), ErrVersion},
		{"checksum", mutate(20, 9, false), ErrCorrupt},
		{"reserved byte", mutate(7, 1, true), ErrCorrupt},
		{"unknown status", mutate(5, 0, true), ErrCorrupt},
		{"ok with a reason", mutate(6, 1, true), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeAck(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeAck: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStateAck(t *testing.T) {
	st := newTestState(t, Limits{})
	if err := st.Apply(key(4, 3)); err != nil {
		t.Fatal(err)
	}
	same := hdr(testAgent, 4, 9, 8)
	other := hdr(testAgent, 5, 2, 1)
	tests := []struct {
		h      Header
		err    error
		status Status
		reason Reason
	}{
		{same, nil, StatusOK, ReasonNone},
		{same, fmt.Errorf("x: %w", ErrDuplicate), StatusDuplicate, ReasonNone},
		{same, fmt.Errorf("x: %w", ErrGap), StatusGap, ReasonNone},
		{other, fmt.Errorf("x: %w", ErrNeedKeyframe), StatusNeedKeyframe, ReasonNone},
		{same, fmt.Errorf("x: %w", ErrCorrupt), StatusRejected, ReasonCorrupt},
		{same, fmt.Errorf("x: %w", ErrTooLarge), StatusRejected, ReasonTooLarge},
		{same, fmt.Errorf("x: %w", ErrVersion), StatusRejected, ReasonVersion},
		{same, fmt.Errorf("x: %w", ErrBadMagic), StatusRejected, ReasonVersion},
		{same, fmt.Errorf("x: %w", ErrInconsistent), StatusRejected, ReasonInconsistent},
		{same, fmt.Errorf("x: %w", ErrAgentMismatch), StatusRejected, ReasonAgentMismatch},
		{same, errors.New("disk full"), StatusRejected, ReasonOther},
	}
	for _, tt := range tests {
		a := st.Ack(&tt.h, tt.err)
		applied := uint64(0)
		if tt.h.Incarnation == 4 {
			applied = 3
		}
		if a.Status != tt.status || a.Reason != tt.reason || a.Incarnation != tt.h.Incarnation ||
			a.Seq != tt.h.Seq || a.Applied != applied {
			t.Errorf("Ack(%v) = %+v, want %v/%v applied %d", tt.err, a, tt.status, tt.reason, applied)
		}
		if _, err := a.AppendBinary(nil); err != nil {
			t.Errorf("Ack(%v) does not encode: %v", tt.err, err)
		}
	}
}

func TestStatusReasonStrings(t *testing.T) {
	for s := range Status(7) {
		if s.String() == "" {
			t.Errorf("Status(%d) has no name", s)
		}
	}
	if ReasonInconsistent.String() != "inconsistent" || Reason(77).String() != "Reason(77)" {
		t.Error("reason names")
	}
}
