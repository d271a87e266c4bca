package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/golang/snappy"
)

// fuzzLimits are small, so that the fuzzer reaches them.
var fuzzLimits = Limits{MaxFrameBytes: 64 << 10, MaxBodyBytes: 256 << 10, MaxSeries: 512, MaxStringLen: 256, MaxMetaEntries: 16}

// maxFuzzAlloc bounds what decoding any input within fuzzLimits may
// allocate: the body, 512 decoded series (about 700 bytes each, twice for
// growth), their strings and metadata.
const maxFuzzAlloc = 8 << 20

// seedFrames returns valid frames: the golden ones and a random sequence.
func seedFrames(f *testing.F) [][]byte {
	f.Helper()
	var t testing.T
	var frames [][]byte
	for _, b := range goldenFrames(&t) {
		frames = append(frames, b)
	}
	sim := newSim(1, 6)
	enc := newTestEncoder(f, 77, Limits{})
	for range 6 {
		frames = append(frames, mustEncode(f, enc, &sim.snap, false))
		sim.step()
	}
	return frames
}

func checkAlloc(t *testing.T, what string, fn func()) {
	t.Helper()
	if n := allocated(fn); n > maxFuzzAlloc {
		t.Fatalf("%s allocated %d bytes", what, n)
	}
}

func FuzzDecodeHeader(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(b[:HeaderSize+len(testAgent)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b, fuzzLimits)
		if err != nil {
			return
		}
		if err := h.check(&fuzzLimits); err != nil {
			t.Fatalf("header accepted but invalid: %v", err)
		}
		again := appendHeader(nil, &h)
		n := len(again)
		if !bytes.Equal(again[:offCRC], b[:offCRC]) || !bytes.Equal(again[HeaderSize:], b[HeaderSize:n]) {
			t.Fatalf("header re-encodes to %x, was %x", again, b[:n])
		}
	})
}

// roundTrip checks that a decoded frame re-encodes to the same frame.
func roundTrip(t *testing.T, f *Frame) {
	t.Helper()
	if err := f.validate(&fuzzLimits, ErrCorrupt, nil); err != nil {
		t.Fatalf("decoded frame is invalid: %v", err)
	}
	b, err := AppendFrame(nil, f, fuzzLimits)
	if errors.Is(err, ErrTooLarge) {
		return // a body without unknown fields is not longer, but snappy may compress it less
	}
	if err != nil {
		t.Fatalf("decoded frame does not encode: %v", err)
	}
	g, err := Decode(b, fuzzLimits)
	if err != nil {
		t.Fatalf("re-encoded frame does not decode: %v", err)
	}
	if !reflect.DeepEqual(withBodyLen(g, 0), withBodyLen(f, 0)) {
		t.Fatalf("frame changed through a round trip:\n got  %+v\n want %+v", g, f)
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr *Frame
		var err error
		checkAlloc(t, "Decode", func() { fr, err = Decode(b, fuzzLimits) })
		if err != nil {
			return
		}
		roundTrip(t, fr)
	})
}

// FuzzDecodeBody fuzzes the msgpack body behind a valid header and
// checksum, which random bytes would rarely get past.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range seedFrames(f) {
		h, _ := DecodeHeader(b, Limits{})
		body, err := snappy.Decode(nil, b[HeaderSize+len(h.AgentID):])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h.Keyframe, body)
	}
	f.Add(false, mp(mapN(4), keyTime, 1, keyInterval, 1, 99, nested(20), keyRemoved, arrN(1), 3))
	f.Fuzz(func(t *testing.T, keyframe bool, body []byte) {
		h := hdr(testAgent, 1, 2, 1)
		if keyframe {
			h.Base, h.Keyframe = 0, true
		}
		var fr *Frame
		var err error
		b := rawFrame(h, body)
		checkAlloc(t, "Decode", func() { fr, err = Decode(b, fuzzLimits) })
		if err != nil {
			return
		}
		roundTrip(t, fr)
	})
}

func FuzzReader(f *testing.F) {
	frames := seedFrames(f)
	f.Add(bytes.Join(frames, nil))
	f.Add(append(bytes.Clone(frames[0]), frames[0][:HeaderSize+3]...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		rd, err := NewReader(bytes.NewReader(stream), fuzzLimits)
		if err != nil {
			t.Fatal(err)
		}
		read := 0
		for {
			var h Header
			checkAlloc(t, "Next", func() { h, err = rd.Next() })
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) &&
					!errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrVersion) {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			raw := rd.Raw()
			if len(raw) != h.Len() || !bytes.Equal(raw, stream[read:read+len(raw)]) {
				t.Fatalf("Raw() is not the frame at offset %d", read)
			}
			read += len(raw)
			var fr *Frame
			checkAlloc(t, "Frame", func() { fr, err = rd.Frame() })
			want, werr := Decode(raw, fuzzLimits)
			if (err == nil) != (werr == nil) || err == nil && !reflect.DeepEqual(fr, want) {
				t.Fatalf("Reader and Decode disagree: %v / %v", err, werr)
			}
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	for _, a := range goldenAcks() {
		b, _ := a.AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAck(b)
		if err != nil {
			return
		}
		again, err := a.AppendBinary(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("ack %+v re-encodes to %x, %v; was %x", a, again, err, b)
		}
	})
}

// FuzzStateApply applies a sequence of frames to one State. The input is a
// list of records: a header byte (bit 0: keyframe, bits 1-2: incarnation),
// seq and base bytes, a 2-byte length and a msgpack body. Whatever the
// frames, a refused one must leave the state unchanged and an applied one
// must leave it valid.
func FuzzStateApply(f *testing.F) {
	f.Add(stateRecords(f, []int{0, 1, 2, 3, 4, 5}, false))
	f.Add(stateRecords(f, []int{0, 2, 1, 2, 2, 5, 4}, false))
	f.Add(stateRecords(f, []int{0, 1, 3, 2, 4}, true))
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := NewState(fuzzLimits)
		if err != nil {
			t.Fatal(err)
		}
		for len(in) >= 5 {
			flags, seq, base := in[0], uint64(in[1]), uint64(in[2])
			n := min(int(binary.BigEndian.Uint16(in[3:])), len(in)-5)
			body := in[5 : 5+n]
			in = in[5+n:]
			h := Header{Keyframe: flags&1 != 0, AgentID: testAgent, Incarnation: 1 + uint64(flags>>1&3), Seq: seq, Base: base}
			fr, err := Decode(rawFrame(h, body), fuzzLimits)
			if err != nil {
				continue
			}
			before, applied, inc := st.Snapshot(), st.Applied(), st.Incarnation()
			err = st.Apply(fr)
			ack := st.Ack(&fr.Header, err)
			if _, aerr := ack.AppendBinary(nil); aerr != nil {
				t.Fatalf("ack for %v does not encode: %v", err, aerr)
			}
			if err != nil {
				if st.Applied() != applied || st.Incarnation() != inc || !reflect.DeepEqual(before, st.Snapshot()) {
					t.Fatalf("refused frame (%v) changed the state", err)
				}
				continue
			}
			if st.Applied() != fr.Seq {
				t.Fatalf("applied %d after frame %d", st.Applied(), fr.Seq)
			}
			if err := st.Snapshot().Validate(fuzzLimits); err != nil {
				t.Fatalf("state invalid after frame %d: %v", fr.Seq, err)
			}
			if st.Len() != len(st.ids) || st.Len() != len(st.paths) {
				t.Fatalf("indexes out of step: %d series, %d ids, %d paths", st.Len(), len(st.ids), len(st.paths))
			}
		}
	})
}

// stateRecords encodes a random sequence of frames as FuzzStateApply's
// records, in the order given (indexes into the sequence).
func stateRecords(f *testing.F, order []int, reset bool) []byte {
	f.Helper()
	sim := newSim(5, 4)
	enc := newTestEncoder(f, 1, Limits{})
	var frames [][]byte
	for i := range 6 {
		if reset && i == 3 {
			enc.Reset()
		}
		frames = append(frames, mustEncode(f, enc, &sim.snap, false))
		sim.step()
	}
	var out []byte
	for _, i := range order {
		b := frames[i]
		h, _ := DecodeHeader(b, Limits{})
		body, _ := snappy.Decode(nil, b[HeaderSize+len(h.AgentID):])
		flags := byte(0)
		if h.Keyframe {
			flags = 1
		}
		out = append(out, flags, byte(h.Seq), byte(h.Base))
		out = binary.BigEndian.AppendUint16(out, uint16(len(body)))
		out = append(out, body...)
	}
	return out
}

// FuzzRoundTrip runs the encoder and a state through a random evolution,
// dropping the frames the mask says, and checks that the state follows.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint8(5), uint8(30), uint64(0))
	f.Add(uint64(2), uint8(40), uint8(60), uint64(0x8421))
	f.Fuzz(func(t *testing.T, seed uint64, n, steps uint8, drop uint64) {
		sim := newSim(seed, int(n%64))
		enc := newTestEncoder(t, 1, Limits{})
		st := newTestState(t, Limits{})
		for i := range int(steps % 80) {
			b := mustEncode(t, enc, &sim.snap, false)
			if drop&(1<<(i%64)) != 0 {
				enc.Reset()
			} else {
				if err := st.Apply(mustDecode(t, b)); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				requireSnapshot(t, st.Snapshot(), &sim.snap)
			}
			sim.step()
		}
	})
}
