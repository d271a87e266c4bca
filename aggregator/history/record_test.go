package history

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
)

func sampleRecord() *Record {
	return &Record{Segments: []Segment{
		{Start: 1_795_600_000, End: 1_795_600_060, ObservedMs: 60_000,
			Node:  Node{InstanceType: "m5.xlarge", Region: "us-east-1", Zone: "us-east-1a", CapacityType: "spot", CPUMillis: 3920, MemoryBytes: 15 * gib},
			Rates: cost.Rates{Currency: "USD", CPUCoreHour: 0.006655, RAMGiBHour: 0.000892, EgressInternetGiB: 0.12, Spot: true, Source: "default"},
			Entries: []Entry{
				{Ref: 1, ObservedMs: 60_000, CPUUsedUs: 30e6, CPURequestUs: 15e6, CPUAllocUs: 30e6, MemUsedKiBs: 60 * mib,
					MemRequestKiBs: 30 * mib, MemAllocKiBs: 60 * mib, EgressInternetBytes: 1000, EgressClusterBytes: 7,
					Requests: 1200},
				{Ref: 9, ObservedMs: 1, CPUAllocUs: 5}, // alloc above max(used, request): an hour's sum
				{Ref: math.MaxUint64, MemUsedKiBs: math.MaxUint64, MemAllocKiBs: math.MaxUint64},
			}},
		{Start: 1_795_600_060, End: 1_795_600_120, Rates: cost.DefaultRates},
	}}
}

// withoutRequests is r with no requests: a record as version 1 wrote it.
func withoutRequests(r *Record) *Record {
	for i := range r.Segments {
		for j := range r.Segments[i].Entries {
			r.Segments[i].Entries[j].Requests = 0
		}
	}
	return r
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		r       *Record
		version byte
	}{
		{"with requests", sampleRecord(), recordVersion2},
		// A record without requests is written as version 1, which a
		// replica not yet upgraded reads.
		{"without requests", withoutRequests(sampleRecord()), recordVersion1},
		{"empty", &Record{}, recordVersion1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.r.Encode()
			if b[1] != tt.version {
				t.Errorf("version %d, want %d", b[1], tt.version)
			}
			got, err := DecodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.r.Segments) == 0 {
				got.Segments = tt.r.Segments // nil and empty
			}
			if !reflect.DeepEqual(got, tt.r) {
				t.Errorf("round trip\n %+v, want\n %+v", got, tt.r)
			}
		})
	}
}

// version1Record is a record as the code before requests encoded it
// (main at 1288efd: recordVersion 1, entries of at most 10 elements): one
// segment of 1795600000..1795600060 observed 60 s, an on-demand m5.xlarge
// in us-east-1 at the default rates, and two entries.
var version1Record = []byte{
	0x92, 0x01, 0x91, 0x96, 0xce, 0x6b, 0x06, 0xae, 0x80, 0xce, 0x6b, 0x06, 0xae, 0xbc, 0xcd, 0xea,
	0x60, 0x96, 0xa9, 0x6d, 0x35, 0x2e, 0x78, 0x6c, 0x61, 0x72, 0x67, 0x65, 0xa9, 0x75, 0x73, 0x2d,
	0x65, 0x61, 0x73, 0x74, 0x2d, 0x31, 0xa0, 0xa9, 0x6f, 0x6e, 0x2d, 0x64, 0x65, 0x6d, 0x61, 0x6e,
	0x64, 0xcd, 0x0f, 0x50, 0xcf, 0x00, 0x00, 0x00, 0x03, 0xc0, 0x00, 0x00, 0x00, 0x97, 0xa3, 0x55,
	0x53, 0x44, 0xcb, 0x3f, 0xa0, 0x2f, 0x51, 0x26, 0x63, 0x41, 0x18, 0xcb, 0x3f, 0x71, 0x5a, 0xd1,
	0x06, 0xee, 0x30, 0xcb, 0xcb, 0x3f, 0xbe, 0xb8, 0x51, 0xeb, 0x85, 0x1e, 0xb8, 0xcb, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc2, 0xa7, 0x64, 0x65, 0x66, 0x61, 0x75, 0x6c, 0x74, 0x92,
	0x9a, 0x01, 0xcd, 0xea, 0x60, 0xce, 0x01, 0xc9, 0xc3, 0x80, 0xce, 0x00, 0xe4, 0xe1, 0xc0, 0x00,
	0xce, 0x00, 0x5a, 0x00, 0x00, 0xce, 0x00, 0x2d, 0x00, 0x00, 0x00, 0xcd, 0x03, 0xe8, 0x07, 0x92,
	0x02, 0xcd, 0xea, 0x60,
}

// TestDecodeVersion1Record: records written before requests still decode,
// with no requests.
func TestDecodeVersion1Record(t *testing.T) {
	got, err := DecodeRecord(version1Record)
	if err != nil {
		t.Fatal(err)
	}
	want := &Record{Segments: []Segment{{Start: 1_795_600_000, End: 1_795_600_060, ObservedMs: 60_000,
		Node:  Node{InstanceType: "m5.xlarge", Region: "us-east-1", CapacityType: "on-demand", CPUMillis: 3920, MemoryBytes: 15 * gib},
		Rates: cost.DefaultRates,
		Entries: []Entry{
			{Ref: 1, ObservedMs: 60_000, CPUUsedUs: 30e6, CPURequestUs: 15e6, CPUAllocUs: 30e6, MemUsedKiBs: 5_898_240,
				MemRequestKiBs: 2_949_120, MemAllocKiBs: 5_898_240, EgressInternetBytes: 1000, EgressClusterBytes: 7},
			{Ref: 2, ObservedMs: 60_000},
		}}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n %+v, want\n %+v", got, want)
	}
	// And it encodes back to the same bytes: version 1, as before.
	if b := got.Encode(); !bytes.Equal(b, version1Record) {
		t.Errorf("re-encoded\n% x, want\n% x", b, version1Record)
	}
}

func TestDecodeRecordRefuses(t *testing.T) {
	good := sampleRecord().Encode()
	mutate := func(f func(r *Record)) []byte {
		r := sampleRecord()
		f(r)
		return r.Encode()
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte{}, good...), 0)},
		{"other version", append([]byte{0x92, 0x03}, good[2:]...)},
		// Version 1 has no requests: an entry of 11 elements is corrupt.
		{"requests in version 1", append([]byte{0x92, 0x01}, good[2:]...)},
		{"empty span", mutate(func(r *Record) { r.Segments[0].End = r.Segments[0].Start })},
		{"observed beyond the span", mutate(func(r *Record) { r.Segments[0].ObservedMs = 60_001 })},
		{"negative price", mutate(func(r *Record) { r.Segments[0].Rates.CPUCoreHour = -1 })},
		{"NaN price", mutate(func(r *Record) { r.Segments[0].Rates.RAMGiBHour = math.NaN() })},
		{"entries out of order", mutate(func(r *Record) { r.Segments[0].Entries[1].Ref = 1 })},
		{"segments overlap", mutate(func(r *Record) { r.Segments[1].Start = r.Segments[0].Start })},
		{"huge array", []byte{0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		if _, err := DecodeRecord(tt.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", tt.name, err)
		}
	}
}

func TestRecordAdd(t *testing.T) {
	seg := func(start int64, rates cost.Rates, refs ...uint64) *Segment {
		s := &Segment{Start: start, End: start + 60, ObservedMs: 60_000, Rates: rates}
		for _, r := range refs {
			s.Entries = append(s.Entries, Entry{Ref: r, ObservedMs: 60_000, CPUUsedUs: r})
		}
		return s
	}
	spot := cost.DefaultRates
	spot.Spot = true
	var r Record
	r.add(seg(0, cost.DefaultRates, 1, 3))
	r.add(seg(60, cost.DefaultRates, 2, 3))
	r.add(seg(120, spot, 3)) // a price change starts a segment
	r.add(seg(240, spot, 3)) // so does a gap
	if len(r.Segments) != 3 {
		t.Fatalf("%d segments: %+v", len(r.Segments), r.Segments)
	}
	s := r.Segments[0]
	want := []Entry{{Ref: 1, ObservedMs: 60_000, CPUUsedUs: 1}, {Ref: 2, ObservedMs: 60_000, CPUUsedUs: 2},
		{Ref: 3, ObservedMs: 120_000, CPUUsedUs: 6}}
	if s.Start != 0 || s.End != 120 || s.ObservedMs != 120_000 || !reflect.DeepEqual(s.Entries, want) {
		t.Errorf("merged segment %+v", s)
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	id := &Identity{Path: "/kubepods/pod1/c1", Namespace: "shop", Pod: "api-1", Container: "api",
		ControllerKind: "deployment", Controller: "api", Labels: map[string]string{"a": "1", "b": ""}, LastSeen: 1_795_600_000}
	b := id.Encode()
	got, err := DecodeIdentity(b)
	if err != nil || !reflect.DeepEqual(got, id) {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if ls, err := lastSeenOf(b); err != nil || ls != id.LastSeen {
		t.Errorf("lastSeenOf = %d %v", ls, err)
	}
	// The hash ignores LastSeen and sees the labels.
	other := *id
	other.LastSeen = 7
	if other.hash() != id.hash() {
		t.Error("hash depends on LastSeen")
	}
	other.Labels = map[string]string{"a": "1"}
	if other.hash() == id.hash() {
		t.Error("hash ignores the labels")
	}
	// Equal maps encode equal, whatever their order.
	if !bytes.Equal(id.Encode(), b) {
		t.Error("identity encoding is not stable")
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := &Cursor{MinuteMs: 1_795_600_000_000, NodeBorn: 5, NodeObservedMs: 6, NextRef: 7, Entries: []CursorEntry{
		{PathHash: 1, Born: 2, Ref: 3, IDHash: 4, IDHour: 5, Cumulative: model.Cumulative{ObservedMs: 6,
			RSS: model.Int128{Hi: 1, Lo: 2}, PageCache: model.Int128{Lo: 3}, CPUUsec: 7, TxInternet: 8, TxCluster: 9,
			Requests: 10}},
		{PathHash: math.MaxUint64},
	}}
	got, err := DecodeCursor(c.Encode())
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip %+v %v", got, err)
	}
	// A cursor written before requests (version 1, entries of 12
	// elements) decodes with its entries' requests unknown.
	old := enc{}
	old.array(6)
	old.uint(cursorVersion1)
	old.int(60_000)
	old.int(5)
	old.uint(6)
	old.uint(7)
	old.array(1)
	old.array(minCursorFields)
	for _, v := range []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} {
		old.uint(v)
	}
	got, err = DecodeCursor(old.b)
	if err != nil {
		t.Fatal(err)
	}
	if e := got.Entries[0]; !e.noRequests || e.Requests != 0 || e.CPUUsec != 7 || e.WorkingSet.Lo != 12 {
		t.Errorf("version 1 cursor entry %+v", e)
	}
	// An entry of a version 1 cursor with requests is corrupt, and so is
	// one of version 2 without.
	for _, v := range []uint64{cursorVersion1, cursorVersion} {
		b := c.Encode()
		b[1] = byte(v)
		if v == cursorVersion {
			b = old.b
			b[1] = byte(v)
		}
		if _, err := DecodeCursor(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("version %d with the other version's entries: %v", v, err)
		}
	}
	if _, err := DecodeCursor(c.Encode()[:10]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated cursor: %v", err)
	}
}

func TestKeys(t *testing.T) {
	if sec, node, err := parseTimeKey(minutePrefix, MinuteKey(1_795_600_000, "node-1")); err != nil || sec != 1_795_600_000 || node != "node-1" {
		t.Errorf("minute key: %d %q %v", sec, node, err)
	}
	if node, ref, err := parseIdentityKey(IdentityKey("node-1", 42)); err != nil || node != "node-1" || ref != 42 {
		t.Errorf("identity key: %q %d %v", node, ref, err)
	}
	// Keys sort by time, whatever the node.
	if bytes.Compare(MinuteKey(99, "zz"), MinuteKey(100, "aa")) >= 0 {
		t.Error("minute keys do not sort by time")
	}
	for _, bad := range []string{"penny/v1/hist/m/1/n", "penny/v1/hist/m/0000000001/", "penny/v1/hist/m/000000000x/n", "penny/v1/hist/m/0000000001/N_"} {
		if _, _, err := parseTimeKey(minutePrefix, []byte(bad)); err == nil {
			t.Errorf("parseTimeKey(%q) accepted", bad)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(sampleRecord().Encode())
	f.Add([]byte{0x92, 0x01, 0x90})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		// What decodes encodes to something that decodes the same.
		r2, err := DecodeRecord(r.Encode())
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzDecodeIdentity(f *testing.F) {
	f.Add((&Identity{Path: "/a", Labels: map[string]string{"k": "v"}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := DecodeIdentity(b)
		if err != nil {
			return
		}
		if _, err := DecodeIdentity(id.Encode()); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add((&Cursor{MinuteMs: 60_000, Entries: []CursorEntry{{PathHash: 1, Cumulative: model.Cumulative{RSS: model.Int128{Hi: 1}}}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCursor(b)
		if err != nil {
			return
		}
		if _, err := DecodeCursor(c.Encode()); err != nil {
			t.Fatal(err)
		}
	})
}
