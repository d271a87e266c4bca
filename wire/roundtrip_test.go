package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

// TestRoundTrip encodes random snapshot sequences and applies every frame:
// after each one the state must equal the snapshot just encoded.
func TestRoundTrip(t *testing.T) {
	for seed := range uint64(40) {
		sim := newSim(seed, 1+int(seed%30))
		enc := newTestEncoder(t, 1000+seed, Limits{})
		st := newTestState(t, Limits{})
		var stream bytes.Buffer
		keyframes := 0
		for i := range 150 {
			b := mustEncode(t, enc, &sim.snap, false)
			stream.Write(b)
			f := mustDecode(t, b)
			if f.Keyframe {
				keyframes++
			}
			if err := st.Apply(f); err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, i, err)
			}
			requireSnapshot(t, st.Snapshot(), &sim.snap)
			sim.step()
		}
		if keyframes != 1 {
			t.Fatalf("seed %d: %d keyframes, want only the first", seed, keyframes)
		}
		// The same frames read back from one stream.
		rd, err := NewReader(&stream, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		st2 := newTestState(t, Limits{})
		for {
			h, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("seed %d: next: %v", seed, err)
			}
			f, err := rd.Frame()
			if err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, h.Seq, err)
			}
			if err := st2.Apply(f); err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, h.Seq, err)
			}
		}
		if !reflect.DeepEqual(st.Snapshot(), st2.Snapshot()) {
			t.Fatalf("seed %d: stream and frame-by-frame states differ", seed)
		}
	}
}

// TestOlderDecoder decodes random sequences whose series carry every
// field as a decoder that knows only the keys of the first version of the
// format (up to 17) does: it skips the fields added since, and its state
// holds exactly the values it knows, frame after frame.
func TestOlderDecoder(t *testing.T) {
	for seed := range uint64(10) {
		sim := newSim(seed, 12)
		enc := newTestEncoder(t, 2000+seed, Limits{})
		st, old := newTestState(t, Limits{}), newTestState(t, Limits{})
		for i := range 100 {
			b := mustEncode(t, enc, &sim.snap, false)
			if err := st.Apply(mustDecode(t, b)); err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, i, err)
			}
			if err := old.Apply(decodeKnowing(t, b, keyCPUUsage)); err != nil {
				t.Fatalf("seed %d frame %d, older decoder: %v", seed, i, err)
			}
			want := st.Snapshot()
			for j := range want.Series {
				want.Series[j].Values = firstVersionValues(&want.Series[j].Values)
			}
			requireSnapshot(t, old.Snapshot(), want)
			sim.step()
		}
	}
}

// decodeKnowing decodes b as a decoder that knows the series keys below
// keys.
func decodeKnowing(t *testing.T, b []byte, keys uint64) *Frame {
	t.Helper()
	c, err := newCodec(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c.mp = newMPReader()
	c.mp.seriesKeys = keys
	h, err := DecodeHeader(b, c.lim)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.decodeBody(&h, b[HeaderSize+len(h.AgentID):])
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// firstVersionValues keeps the fields of keys 4 to 17.
func firstVersionValues(v *Values) Values {
	return Values{Processes: v.Processes, RSSBytes: v.RSSBytes, PageCacheBytes: v.PageCacheBytes,
		PageCacheAddedBytes: v.PageCacheAddedBytes, PageCacheEvictedBytes: v.PageCacheEvictedBytes,
		PageCacheAccesses: v.PageCacheAccesses, PageCacheMisses: v.PageCacheMisses, Retransmits: v.Retransmits,
		RxBytes: v.RxBytes, TxBytes: v.TxBytes, RxPackets: v.RxPackets, TxPackets: v.TxPackets, SRTT: v.SRTT, Connect: v.Connect}
}

// TestGoldenCPUFramesForOlderDecoders: the golden frames of the fields
// added at keys 18 to 32 decode, for a decoder that knows only keys up to
// 17, to what they say without those fields.
func TestGoldenCPUFramesForOlderDecoders(t *testing.T) {
	for _, name := range []string{"keyframe-cpu", "delta-cpu"} {
		golden := readFile(t, "testdata/"+name+".bin")
		full, old := mustDecode(t, golden), decodeKnowing(t, golden, keyCPUUsage)
		for i := range full.Series {
			full.Series[i].Values = firstVersionValues(&full.Series[i].Values)
		}
		if !reflect.DeepEqual(old, full) {
			t.Errorf("%s, decoded knowing keys up to 17:\n %+v\nwant\n %+v", name, old, full)
		}
	}
}

// TestRecovery drops frames on the way. The state refuses what follows a
// gap without changing; the agent then either resends the frames from the
// one the ack names, or sends a keyframe, and the state is back in step.
func TestRecovery(t *testing.T) {
	for _, resend := range []bool{true, false} {
		for seed := range uint64(10) {
			sim := newSim(seed, 20)
			enc := newTestEncoder(t, 7, Limits{})
			st := newTestState(t, Limits{})
			sent := map[uint64][]byte{}
			encoded := map[uint64]*Snapshot{}
			send := func(b []byte) Ack {
				t.Helper()
				f := mustDecode(t, b)
				before, applied := st.Snapshot(), st.Applied()
				err := st.Apply(f)
				if err != nil && !errors.Is(err, ErrGap) {
					t.Fatalf("seed %d frame %d: %v", seed, f.Seq, err)
				}
				if err != nil && (st.Applied() != applied || !reflect.DeepEqual(before, st.Snapshot())) {
					t.Fatalf("seed %d frame %d: refused frame changed the state", seed, f.Seq)
				}
				return st.Ack(&f.Header, err)
			}
			for i := range 200 {
				b := mustEncode(t, enc, &sim.snap, false)
				sent[enc.Seq()] = b
				encoded[enc.Seq()] = sim.snap.Clone()
				sim.step()
				if i > 0 && i%17 == 0 {
					continue // lost on the way
				}
				ack := send(b)
				if ack.Status == StatusOK {
					requireSnapshot(t, st.Snapshot(), encoded[st.Applied()])
					continue
				}
				if ack.Status != StatusGap || ack.Applied != st.Applied() {
					t.Fatalf("seed %d: ack %+v after a gap, applied %d", seed, ack, st.Applied())
				}
				if !resend {
					enc.Reset() // the agent no longer holds the lost frames
					continue
				}
				for seq := ack.Applied + 1; seq <= enc.Seq(); seq++ {
					if a := send(sent[seq]); a.Status != StatusOK {
						t.Fatalf("seed %d: resent frame %d: %+v", seed, seq, a)
					}
				}
				requireSnapshot(t, st.Snapshot(), encoded[st.Applied()])
			}
			// One more frame after a Reset must bring the state in step.
			enc.Reset()
			f := mustDecode(t, mustEncode(t, enc, &sim.snap, false))
			if !f.Keyframe {
				t.Fatal("frame after Reset is not a keyframe")
			}
			if err := st.Apply(f); err != nil {
				t.Fatal(err)
			}
			requireSnapshot(t, st.Snapshot(), &sim.snap)
		}
	}
}

// TestEncodeErrorChangesNothing: a snapshot the encoder refuses leaves it as
// it was, so the next frame still applies.
func TestEncodeErrorChangesNothing(t *testing.T) {
	lim := Limits{MaxSeries: 10}
	sim := newSim(3, 5)
	enc := newTestEncoder(t, 9, lim)
	st := newTestState(t, lim)
	apply := func() {
		t.Helper()
		if err := st.Apply(mustDecode(t, mustEncode(t, enc, &sim.snap, false))); err != nil {
			t.Fatal(err)
		}
		requireSnapshot(t, st.Snapshot(), &sim.snap)
	}
	apply()
	sim.step()
	good := sim.snap.Clone()
	for range 20 {
		sim.add()
	}
	if _, err := enc.Encode(&sim.snap, false); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encode of %d series: %v, want ErrTooLarge", len(sim.snap.Series), err)
	}
	bad := good.Clone()
	bad.Series = append(bad.Series, bad.Series[0])
	if _, err := enc.Encode(bad, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("encode with a duplicate series: %v, want ErrInvalid", err)
	}
	sim.snap = *good
	apply()
}

// TestDeltaContent checks what a delta carries: only changed series, new
// series with their path, removals, restarts as removal plus new series.
func TestDeltaContent(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0).UTC()
	s := &Snapshot{Time: t0, Interval: time.Second, Series: []SeriesState{
		{Path: "/a", ID: 1, Values: Values{RSSBytes: 4096, RxBytes: 10}},
		{Path: "/b", ID: 2, Values: Values{Processes: 1}},
		{Path: "/c", ID: 3, Values: Values{TxBytes: 5}},
		{Path: "/d", ID: 4},
	}}
	enc := newTestEncoder(t, 1, Limits{})
	f := mustDecode(t, mustEncode(t, enc, s, false))
	if !f.Keyframe || len(f.Series) != 4 || f.Series[0].Ref != 0 || f.Series[3].Ref != 3 {
		t.Fatalf("keyframe: %+v", f)
	}
	s = s.Clone()
	s.Time = t0.Add(time.Second)
	s.Series[0].RSSBytes = 0 // /a changed (ref 0)
	s.Series[0].RxBytes = 11 //
	s.Series[2].TxBytes = 1  // /c restarted: ref 2 removed, new ref 4
	s.Series[3] = SeriesState{Path: "/e", ID: 5}
	f = mustDecode(t, mustEncode(t, enc, s, false))
	if f.Keyframe || f.Base != 1 || f.Seq != 2 {
		t.Fatalf("delta header: %+v", f.Header)
	}
	if !reflect.DeepEqual(f.Removed, []uint64{2, 3}) {
		t.Fatalf("removed %v, want [2 3]", f.Removed)
	}
	want := []SeriesUpdate{
		{Ref: 0, Values: Values{RSSBytes: -4096, RxBytes: 1}},
		{Ref: 4, New: true, Path: "/c", ID: 3, MetaSet: true, Values: Values{TxBytes: 1}},
		{Ref: 5, New: true, Path: "/e", ID: 5, MetaSet: true},
	}
	if !reflect.DeepEqual(f.Series, want) {
		t.Fatalf("series:\n got  %+v\n want %+v", f.Series, want)
	}
	// Nothing changed: an empty delta, still a frame (it moves the time).
	s.Time = t0.Add(2 * time.Second)
	f = mustDecode(t, mustEncode(t, enc, s, false))
	if len(f.Series) != 0 || len(f.Removed) != 0 || f.MetaSet || !f.Time.Equal(s.Time) {
		t.Fatalf("idle delta: %+v", f)
	}
	// A keyframe restates every series, under the refs they had.
	f = mustDecode(t, mustEncode(t, enc, s, true))
	refs := map[string]uint64{}
	for _, u := range f.Series {
		if !u.New {
			t.Fatalf("keyframe series not new: %+v", u)
		}
		refs[u.Path] = u.Ref
	}
	if want := map[string]uint64{"/a": 0, "/b": 1, "/c": 4, "/e": 5}; !reflect.DeepEqual(refs, want) {
		t.Fatalf("keyframe refs %v, want %v", refs, want)
	}
}
