package command

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
	}{
		{"put", Command{ID: 7, Kind: KindBatch, Ops: []Op{{Type: OpPut, Key: []byte("a"), Value: []byte("1")}}}},
		{"empty value", Command{ID: 1, Kind: KindBatch, Ops: []Op{{Type: OpPut, Key: []byte("a"), Value: []byte{}}}}},
		{"mixed", Command{ID: 1 << 60, Kind: KindBatch, Ops: []Op{
			{Type: OpPut, Key: []byte("k/1"), Value: bytes.Repeat([]byte{0xff}, 300)},
			{Type: OpDelete, Key: []byte("k/2")},
		}}},
		{"member attr", Command{ID: 3, Kind: KindMemberAttr, MemberID: 2, APIURL: "http://127.0.0.1:2379"}},
		{"quota", Command{ID: 4, Kind: KindQuota, QuotaBytes: 256 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(&tt.cmd)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			normalize(&tt.cmd)
			normalize(got)
			if !reflect.DeepEqual(got, &tt.cmd) {
				t.Fatalf("round trip: got %+v, want %+v", got, tt.cmd)
			}
		})
	}
}

// normalize makes empty and nil values and lists compare equal.
func normalize(c *Command) {
	normalizeOps(c.Ops)
	for i := range c.Txns {
		t := &c.Txns[i]
		normalizeOps(t.Then)
		normalizeOps(t.Else)
		for j := range t.If {
			if len(t.If[j].Value) == 0 {
				t.If[j].Value = nil
			}
		}
		if len(t.If) == 0 {
			t.If = nil
		}
		if len(t.Then) == 0 {
			t.Then = nil
		}
		if len(t.Else) == 0 {
			t.Else = nil
		}
	}
}

func normalizeOps(ops []Op) {
	for i := range ops {
		if len(ops[i].Value) == 0 {
			ops[i].Value = nil
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want error
	}{
		{"empty batch", Command{Kind: KindBatch}, ErrInvalid},
		{"empty key", Command{Kind: KindBatch, Ops: []Op{{Type: OpPut}}}, ErrInvalid},
		{"bad op", Command{Kind: KindBatch, Ops: []Op{{Type: 9, Key: []byte("a")}}}, ErrInvalid},
		{"big key", Command{Kind: KindBatch, Ops: []Op{{Type: OpPut, Key: make([]byte, MaxKeySize+1)}}}, ErrTooLarge},
		{"big value", Command{Kind: KindBatch, Ops: []Op{{Type: OpPut, Key: []byte("a"), Value: make([]byte, MaxValueSize+1)}}}, ErrTooLarge},
		{"too many ops", Command{Kind: KindBatch, Ops: make([]Op, MaxBatchOps+1)}, ErrTooLarge},
		{"unknown kind", Command{Kind: 99}, ErrInvalid},
		{"member 0", Command{Kind: KindMemberAttr}, ErrInvalid},
		{"long url", Command{Kind: KindMemberAttr, MemberID: 1, APIURL: strings.Repeat("x", MaxURLSize+1)}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Encode(&tt.cmd); !errors.Is(err, tt.want) {
				t.Fatalf("Encode() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	valid, err := Encode(&Command{ID: 1, Kind: KindBatch, Ops: []Op{{Type: OpPut, Key: []byte("key"), Value: []byte("value")}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrInvalid},
		{"bad version", append([]byte{9}, valid[1:]...), ErrInvalid},
		{"truncated", valid[:len(valid)-1], ErrInvalid},
		{"trailing", append(append([]byte{}, valid...), 0), ErrInvalid},
		{"huge count", []byte{version, byte(KindBatch), 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrInvalid},
		{"zero count", []byte{version, byte(KindBatch), 1, 0}, ErrInvalid},
		{"huge key length", []byte{version, byte(KindBatch), 1, 1, byte(OpPut), 0xff, 0xff, 0x03, 0, 0}, ErrTooLarge},
		{"unknown kind", []byte{version, 42, 1}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("Decode() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range []Command{
		{ID: 1, Kind: KindBatch, Ops: []Op{{Type: OpPut, Key: []byte("a"), Value: []byte("b")}, {Type: OpDelete, Key: []byte("c")}}},
		{ID: 2, Kind: KindMemberAttr, MemberID: 3, APIURL: "http://x"},
		{ID: 3, Kind: KindTxn, Txns: sampleTxns()},
		{ID: 4, Kind: KindTxn, Txns: []Txn{{If: []Compare{{Key: []byte("k"), Target: TargetModIndex, Op: CmpEqual, ModIndex: 9}}}}},
		{ID: 5, Kind: KindQuota, QuotaBytes: 1 << 28},
	} {
		b, err := Encode(&c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrInvalid nor ErrTooLarge", err)
			}
			return
		}
		// Whatever decodes must re-encode to something that decodes to the
		// same command, unless it is an entry over the proposal bound that
		// an earlier version wrote.
		b2, err := Encode(c)
		if errors.Is(err, ErrTooLarge) && len(b) > MaxEntrySize {
			return
		}
		if err != nil {
			t.Fatalf("decoded command does not encode: %v", err)
		}
		c2, err := Decode(b2)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		normalize(c)
		normalize(c2)
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the command: %+v != %+v", c, c2)
		}
	})
}

func BenchmarkEncodeBatch(b *testing.B) {
	ops := make([]Op, 1000)
	for i := range ops {
		ops[i] = Op{Type: OpPut, Key: []byte("prefix/key/000000" + string(rune('a'+i%26))), Value: make([]byte, 256)}
	}
	c := &Command{ID: 1, Kind: KindBatch, Ops: ops}
	for b.Loop() {
		if _, err := Encode(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	ops := make([]Op, 1000)
	for i := range ops {
		ops[i] = Op{Type: OpPut, Key: []byte("prefix/key/000000"), Value: make([]byte, 256)}
	}
	enc, err := Encode(&Command{ID: 1, Kind: KindBatch, Ops: ops})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
