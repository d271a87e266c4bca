package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
	"time"

	"github.com/golang/snappy"
)

// Markers for mp.
type (
	mapN int    // a map header
	arrN int    // an array header
	raw  []byte // bytes as they are
)

// mp encodes values one after another: a test's way to write bodies an
// Encoder never would.
func mp(vals ...any) []byte {
	w := newWriter()
	w.put(vals)
	return bytes.Clone(w.buf.Bytes())
}

func (w *mpWriter) put(vals []any) {
	for _, v := range vals {
		switch v := v.(type) {
		case []any:
			w.put(v)
		case bool:
			w.err = w.enc.EncodeBool(v)
		case int:
			w.int(int64(v))
		case int64:
			w.int(v)
		case uint64:
			w.uint(v)
		case string:
			w.string(v)
		case mapN:
			w.mapLen(int(v))
		case arrN:
			w.arrayLen(int(v))
		case raw:
			w.buf.Write(v)
		case float64:
			w.err = w.enc.EncodeFloat64(v)
		case []byte:
			w.err = w.enc.EncodeBytes(v)
		case nil:
			w.err = w.enc.EncodeNil()
		default:
			panic("mp: unsupported type")
		}
		if w.err != nil {
			panic(w.err)
		}
	}
}

// nested returns n arrays nested in one another around a 0.
func nested(n int) []any {
	var v []any
	for range n {
		v = append(v, arrN(1))
	}
	return append(v, 0)
}

func testFrame(t *testing.T) []byte {
	t.Helper()
	s := &Snapshot{Time: t0, Interval: time.Second, Meta: map[string]string{"agent": "v1"}, Series: []SeriesState{
		{Path: "/a", ID: 1, Meta: map[string]string{"pod": "p"}, Values: Values{RSSBytes: 4096, SRTT: bucket(4, 2)}},
		{Path: "/b", ID: 2, Values: Values{TxBytes: 10}},
	}}
	return mustEncode(t, newTestEncoder(t, 5, Limits{}), s, false)
}

func TestDecodeFrameBytes(t *testing.T) {
	good := testFrame(t)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
		lim  Limits
		want error
	}{
		{name: "valid", b: good},
		{name: "empty", b: nil, want: ErrCorrupt},
		{name: "truncated header", b: good[:20], want: ErrCorrupt},
		{name: "truncated agent id", b: good[:HeaderSize+3], want: ErrCorrupt},
		{name: "truncated body", b: good[:len(good)-1], want: ErrCorrupt},
		{name: "trailing byte", b: append(bytes.Clone(good), 0), want: ErrCorrupt},
		{name: "bad magic", b: mutate(func(b []byte) []byte { b[0] = 'X'; return resign(b) }), want: ErrBadMagic},
		{name: "version 2", b: mutate(func(b []byte) []byte { b[offVersion] = 2; return resign(b) }), want: ErrVersion},
		{name: "reserved flag", b: mutate(func(b []byte) []byte { b[offFlags] |= 0x80; return resign(b) }), want: ErrCorrupt},
		{name: "reserved byte", b: mutate(func(b []byte) []byte { b[offReserved] = 1; return resign(b) }), want: ErrCorrupt},
		{name: "flipped body bit", b: mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), want: ErrCorrupt},
		{name: "flipped header bit", b: mutate(func(b []byte) []byte { b[offSeq+7] ^= 2; return b }), want: ErrCorrupt},
		{name: "flipped checksum", b: mutate(func(b []byte) []byte { b[offCRC] ^= 1; return b }), want: ErrCorrupt},
		{name: "agent id with a space", b: mutate(func(b []byte) []byte { b[HeaderSize] = ' '; return resign(b) }), want: ErrCorrupt},
		{name: "incarnation 0", b: mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[offIncarnation:], 0)
			return resign(b)
		}), want: ErrCorrupt},
		{name: "seq 0", b: mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[offSeq:], 0); return resign(b) }), want: ErrCorrupt},
		{name: "keyframe with a base", b: mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[offBase:], 1)
			return resign(b)
		}), want: ErrCorrupt},
		{name: "delta without a base", b: mutate(func(b []byte) []byte { b[offFlags] = 0; return resign(b) }), want: ErrCorrupt},
		{name: "body length beyond the frame", b: mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offBodyLen:], 1<<30)
			return resign(b)
		}), want: ErrTooLarge},
		{name: "frame over the limit", b: good, lim: Limits{MaxFrameBytes: len(good) - 1}, want: ErrTooLarge},
		{name: "body over the limit", b: good, lim: Limits{MaxBodyBytes: 10}, want: ErrTooLarge},
		{name: "body not snappy", b: rawFrameBytes(hdr(testAgent, 1, 1, 0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), want: ErrCorrupt},
		{name: "snappy length over the limit", b: rawFrameBytes(hdr(testAgent, 1, 1, 0),
			binary.AppendUvarint(nil, 1<<30)), want: ErrTooLarge},
		{name: "snappy length a small frame cannot hold", b: rawFrameBytes(hdr(testAgent, 1, 1, 0),
			binary.AppendUvarint(nil, 1<<20)), want: ErrCorrupt},
		{name: "snappy length short of the data", b: rawFrameBytes(hdr(testAgent, 1, 1, 0),
			append(binary.AppendUvarint(nil, 1), snappy.Encode(nil, mp(mapN(2), keyTime, 1, keyInterval, 1))[1:]...)), want: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.b, tt.lim)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Decode: %v, want %v", err, tt.want)
			}
			// The stream reader agrees, except about trailing bytes, which
			// it reads as the start of the next frame, and an empty
			// stream, which is just that.
			if tt.name == "trailing byte" || tt.name == "empty" {
				return
			}
			rd, err := NewReader(bytes.NewReader(tt.b), tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			if _, err = rd.Next(); err == nil {
				_, err = rd.Frame()
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Reader: %v, want %v", err, tt.want)
			}
		})
	}
}

// rawFrameBytes builds a frame around a compressed body given as is.
func rawFrameBytes(h Header, compressed []byte) []byte {
	h.BodyLen = len(compressed)
	return resign(append(appendHeader(nil, &h), compressed...))
}

func TestDecodeBody(t *testing.T) {
	k := hdr(testAgent, 1, 1, 0)
	d := hdr(testAgent, 1, 2, 1)
	head := []any{keyTime, 5, keyInterval, 1}
	body := func(n int, fields ...any) []byte { return mp(append(append([]any{mapN(n)}, head...), fields...)...) }
	series := func(fields ...any) []byte { return body(3, append([]any{keySeries, arrN(1)}, fields...)...) }
	tests := []struct {
		name string
		h    Header
		body []byte
		lim  Limits
		want error
	}{
		{name: "minimal keyframe", h: k, body: body(2)},
		{name: "not a map", h: k, body: mp(arrN(0)), want: ErrCorrupt},
		{name: "no time", h: k, body: mp(mapN(1), keyInterval, 1), want: ErrCorrupt},
		{name: "time as a string", h: k, body: mp(mapN(2), keyTime, "now", keyInterval, 1), want: ErrCorrupt},
		{name: "negative interval", h: k, body: mp(mapN(2), keyTime, 1, keyInterval, -1), want: ErrCorrupt},
		{name: "interval over int64", h: k, body: mp(mapN(2), keyTime, 1, keyInterval, uint64(1<<63)), want: ErrCorrupt},
		{name: "key twice", h: k, body: body(3, keyTime, 6), want: ErrCorrupt},
		{name: "key not an integer", h: k, body: body(3, "x", 1), want: ErrCorrupt},
		{name: "trailing bytes", h: k, body: append(body(2), 0), want: ErrCorrupt},
		{name: "map longer than the body", h: k, body: body(9), want: ErrCorrupt},
		{name: "unknown fields of every kind", h: k, body: body(8, 0, nil, 99, mapN(1), "a", arrN(2), 1.5, []byte{1, 2},
			100, "text", 101, true, 102, -7, 103, nested(maxSkipDepth-1))},
		{name: "unknown field too deep", h: k, body: body(3, append([]any{99}, nested(maxSkipDepth+1)...)...), want: ErrCorrupt},
		{name: "unknown field of type ext", h: k, body: body(3, 99, raw{0xd4, 1, 0}), want: ErrCorrupt},
		{name: "unknown field of the unused code", h: k, body: body(3, 99, raw{0xc1}), want: ErrCorrupt},
		{name: "unknown field longer than the body", h: k, body: body(3, 99, raw{0xdb, 0, 0, 1, 0}), want: ErrCorrupt},
		{name: "series list over the limit", h: k, body: body(3, keySeries, raw{0xdd, 0xff, 0xff, 0xff, 0xff}), want: ErrTooLarge},
		{name: "series list longer than the body", h: k, body: body(3, keySeries, arrN(1000)), want: ErrCorrupt},
		{name: "removals over the limit", h: d, lim: Limits{MaxSeries: 2}, body: body(3, keyRemoved, arrN(3), 1, 2, 3), want: ErrTooLarge},
		{name: "removal not an integer", h: d, body: body(3, keyRemoved, arrN(1), "x"), want: ErrCorrupt},
		{name: "removal in a keyframe", h: k, body: body(3, keyRemoved, arrN(1), 1), want: ErrCorrupt},
		{name: "removed twice", h: d, body: body(3, keyRemoved, arrN(2), 1, 1), want: ErrCorrupt},
		{name: "new series", h: k, body: series(mapN(3), keyRef, 0, keyPath, "/a", keyID, 7)},
		{name: "series without ref", h: d, body: series(mapN(1), keyRxBytes, 1), want: ErrCorrupt},
		{name: "path without id", h: d, body: series(mapN(2), keyRef, 0, keyPath, "/a"), want: ErrCorrupt},
		{name: "empty path", h: d, body: series(mapN(3), keyRef, 0, keyPath, "", keyID, 1), want: ErrCorrupt},
		{name: "path over the limit", h: d, lim: Limits{MaxStringLen: 3}, body: series(mapN(3), keyRef, 0, keyPath, "/abc", keyID, 1), want: ErrTooLarge},
		{name: "string longer than the body", h: d, body: series(mapN(3), keyRef, 0, keyPath, raw{0xdb, 0, 0, 0x10, 0}, keyID, 1), want: ErrCorrupt},
		{name: "path of type bin", h: d, body: series(mapN(3), keyRef, 0, keyPath, []byte("/a"), keyID, 1), want: ErrCorrupt},
		{name: "keyframe series without path", h: k, body: series(mapN(1), keyRef, 0), want: ErrCorrupt},
		{name: "ref twice", h: d, body: body(3, keySeries, arrN(2), mapN(1), keyRef, 0, mapN(1), keyRef, 0), want: ErrCorrupt},
		{name: "negative counter", h: d, body: series(mapN(2), keyRef, 0, keyRxBytes, -1), want: ErrCorrupt},
		{name: "negative gauge delta", h: d, body: series(mapN(2), keyRef, 0, keyRSS, -4096)},
		{name: "gauge over int64", h: d, body: series(mapN(2), keyRef, 0, keyRSS, uint64(1<<63)), want: ErrCorrupt},
		{name: "counter as a float", h: d, body: series(mapN(2), keyRef, 0, keyRxBytes, 1.0), want: ErrCorrupt},
		{name: "unknown series field", h: d, body: series(mapN(2), keyRef, 0, 60, mapN(1), 1, "x")},
		{name: "metadata", h: d, body: series(mapN(2), keyRef, 0, keySeriesMeta, mapN(2), "a", "1", "b", "")},
		{name: "metadata over the limit", h: d, lim: Limits{MaxMetaEntries: 1}, body: series(mapN(2), keyRef, 0,
			keySeriesMeta, mapN(2), "a", "1", "b", "2"), want: ErrTooLarge},
		{name: "metadata key twice", h: d, body: series(mapN(2), keyRef, 0, keySeriesMeta, mapN(2), "a", "1", "a", "2"), want: ErrCorrupt},
		{name: "metadata empty key", h: d, body: series(mapN(2), keyRef, 0, keySeriesMeta, mapN(1), "", "1"), want: ErrCorrupt},
		{name: "metadata value not a string", h: d, body: series(mapN(2), keyRef, 0, keySeriesMeta, mapN(1), "a", 1), want: ErrCorrupt},
		{name: "metadata map longer than the body", h: d, body: series(mapN(2), keyRef, 0, keySeriesMeta, raw{0xde, 0, 100}), want: ErrCorrupt},
		{name: "frame metadata value over the limit", h: d, lim: Limits{MaxStringLen: 2}, body: body(3, keyFrameMeta, mapN(1), "a", "abc"), want: ErrTooLarge},
		{name: "histogram", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(3), 3, 40, arrN(4), 0, 1, 5, 2)},
		{name: "histogram with a future field", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(4), 1, 1, arrN(2), 0, 1, "later")},
		{name: "histogram too short", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(2), 1, 1), want: ErrCorrupt},
		{name: "bucket out of range", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(3), 1, 1, arrN(2), HistBuckets, 1), want: ErrCorrupt},
		{name: "buckets out of order", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(3), 2, 1, arrN(4), 5, 1, 4, 1), want: ErrCorrupt},
		{name: "bucket twice", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(3), 2, 1, arrN(4), 5, 1, 5, 1), want: ErrCorrupt},
		{name: "bucket of zero", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(3), 0, 0, arrN(2), 5, 0), want: ErrCorrupt},
		{name: "odd bucket list", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(3), 1, 1, arrN(1), 5), want: ErrCorrupt},
		{name: "bucket list over 32 pairs", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(3), 1, 1, arrN(66)), want: ErrTooLarge},
		{name: "histogram as a map", h: d, body: series(mapN(2), keyRef, 0, keySRTT, mapN(0)), want: ErrCorrupt},
		{name: "negative bucket index", h: d, body: series(mapN(2), keyRef, 0, keySRTT, arrN(3), 1, 1, arrN(2), -1, 1), want: ErrCorrupt},
		{name: "log-linear histogram", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 3, 60_300, arrN(4), 97, 2, 98, 1)},
		{name: "log-linear last bucket", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 1, 1<<32, arrN(2), LogLinearBuckets-1, 1)},
		{name: "log-linear with a future field", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(4), 1, 1, arrN(2), 1, 1, mapN(0))},
		{name: "log-linear without buckets", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 0, 5, arrN(0))},
		{name: "log-linear too short", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(2), 1, 1), want: ErrCorrupt},
		{name: "log-linear bucket out of range", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 1, 1, arrN(2), LogLinearBuckets, 1), want: ErrCorrupt},
		{name: "log-linear buckets out of order", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 2, 1, arrN(4), 98, 1, 97, 1), want: ErrCorrupt},
		{name: "log-linear bucket twice", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 2, 1, arrN(4), 97, 1, 97, 1), want: ErrCorrupt},
		{name: "log-linear bucket of zero", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 0, 0, arrN(2), 97, 0), want: ErrCorrupt},
		{name: "log-linear odd bucket list", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 1, 1, arrN(1), 5), want: ErrCorrupt},
		{name: "log-linear bucket list over 240 pairs", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 1, 1, arrN(2*LogLinearBuckets+2)), want: ErrTooLarge},
		{name: "log-linear bucket list longer than the body", h: d, body: series(mapN(2), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 1, 1, arrN(2*LogLinearBuckets)), want: ErrCorrupt},
		{name: "log-linear twice", h: d, body: series(mapN(3), keyRef, 0, keyRequestLatencyLogLinear, arrN(3), 0, 0, arrN(0),
			keyRequestLatencyLogLinear, arrN(3), 0, 0, arrN(0)), want: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *Frame
			var err error
			b := rawFrame(tt.h, tt.body)
			if n := allocated(func() { f, err = Decode(b, tt.lim) }); n > 64<<10 {
				t.Errorf("decoding %d bytes allocated %d", len(b), n)
			}
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Decode: %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			// What decodes re-encodes to an equivalent frame.
			again, err := AppendFrame(nil, f, tt.lim)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if g := mustDecode(t, again); !reflect.DeepEqual(g, withBodyLen(f, g.BodyLen)) {
				t.Fatalf("re-encoded frame differs:\n got  %+v\n want %+v", g, f)
			}
		})
	}
}

func withBodyLen(f *Frame, n int) *Frame {
	c := *f
	c.BodyLen = n
	return &c
}

func TestUnknownFieldsIgnored(t *testing.T) {
	h := hdr(testAgent, 1, 1, 0)
	plain := mustDecode(t, rawFrame(h, mp(mapN(3), keyTime, 5, keyInterval, 1, keySeries, arrN(1),
		mapN(4), keyRef, 0, keyPath, "/a", keyID, 7, keyConnect, arrN(3), 1, 3, arrN(2), 1, 1)))
	future := mustDecode(t, rawFrame(h, mp(mapN(5), 40, "x", keyTime, 5, keyInterval, 1, keySeries, arrN(1),
		mapN(6), keyRef, 0, 50, arrN(2), 1, 2, keyPath, "/a", keyID, 7, keyConnect, arrN(5), 1, 3, arrN(2), 1, 1, "a", mapN(0), 51, 1.5,
		41, mapN(1), "k", arrN(0))))
	future.BodyLen = plain.BodyLen
	if !reflect.DeepEqual(plain, future) {
		t.Fatalf("unknown fields changed the frame:\n got  %+v\n want %+v", future, plain)
	}
}

func TestReader(t *testing.T) {
	sim := newSim(1, 10)
	enc := newTestEncoder(t, 3, Limits{})
	var stream bytes.Buffer
	var frames [][]byte
	for range 5 {
		b := mustEncode(t, enc, &sim.snap, false)
		frames = append(frames, b)
		stream.Write(b)
		sim.step()
	}
	all := stream.Bytes()

	t.Run("frames", func(t *testing.T) {
		rd, err := NewReader(iotest.HalfReader(bytes.NewReader(all)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range frames {
			h, err := rd.Next()
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if h.Seq != uint64(i+1) || !bytes.Equal(rd.Raw(), want) {
				t.Fatalf("frame %d: seq %d, raw bytes differ", i, h.Seq)
			}
			f, err := rd.Frame()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f, mustDecode(t, want)) {
				t.Fatalf("frame %d differs from Decode's", i)
			}
		}
		for range 2 {
			if _, err := rd.Next(); err != io.EOF {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
		}
		if _, err := rd.Frame(); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Frame after EOF: %v", err)
		}
	})

	t.Run("truncated", func(t *testing.T) {
		for _, n := range []int{len(frames[0]) + 10, len(frames[0]) + HeaderSize + 2, len(all) - 1} {
			rd, _ := NewReader(bytes.NewReader(all[:n]), Limits{})
			var err error
			for err == nil {
				_, err = rd.Next()
			}
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("cut at %d: %v", n, err)
			}
			if _, again := rd.Next(); again != err {
				t.Fatalf("error not sticky: %v then %v", err, again)
			}
		}
	})

	t.Run("garbage", func(t *testing.T) {
		rd, _ := NewReader(bytes.NewReader(append(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 4), all...)), Limits{})
		if _, err := rd.Next(); !errors.Is(err, ErrBadMagic) {
			t.Fatalf("garbage: %v", err)
		}
	})

	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		rd, _ := NewReader(io.MultiReader(bytes.NewReader(all[:50]), iotest.ErrReader(boom)), Limits{})
		if _, err := rd.Next(); !errors.Is(err, boom) {
			t.Fatalf("read error: %v", err)
		}
	})

	t.Run("corrupt body keeps the stream in step", func(t *testing.T) {
		bad := rawFrame(hdr(testAgent, 3, 1, 0), mp(arrN(0)))
		rd, _ := NewReader(bytes.NewReader(append(bad, frames[0]...)), Limits{})
		if _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		if _, err := rd.Frame(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("corrupt body: %v", err)
		}
		if _, err := rd.Next(); err != nil {
			t.Fatalf("next frame: %v", err)
		}
		if _, err := rd.Frame(); err != nil {
			t.Fatalf("next frame: %v", err)
		}
	})

	t.Run("announced size costs nothing until it arrives", func(t *testing.T) {
		h := hdr(testAgent, 3, 1, 0)
		h.BodyLen = DefaultMaxFrameBytes - HeaderSize - len(testAgent)
		b := appendHeader(nil, &h)
		var err error
		n := allocated(func() {
			rd, _ := NewReader(bytes.NewReader(append(b, make([]byte, 1000)...)), Limits{})
			_, err = rd.Next()
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("short frame: %v", err)
		}
		if n > 4*readChunk {
			t.Fatalf("a 4 MiB announcement with 1000 bytes behind it allocated %d bytes", n)
		}
		h.BodyLen++
		rd, _ := NewReader(bytes.NewReader(appendHeader(nil, &h)), Limits{})
		if _, err := rd.Next(); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("frame over the limit: %v", err)
		}
	})
}

func TestDecodeHeader(t *testing.T) {
	b := testFrame(t)
	h, err := DecodeHeader(b[:HeaderSize+len(testAgent)], Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Keyframe: true, AgentID: testAgent, Incarnation: 5, Seq: 1, BodyLen: len(b) - HeaderSize - len(testAgent)}
	if h != want || h.Len() != len(b) {
		t.Fatalf("header %+v, want %+v", h, want)
	}
	if _, err := DecodeHeader(b, Limits{MaxFrameBytes: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid limits: %v", err)
	}
}
