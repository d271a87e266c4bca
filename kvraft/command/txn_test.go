package command

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleTxns() []Txn {
	return []Txn{
		{
			If: []Compare{
				{Key: []byte("agent/1/seq"), Target: TargetValue, Op: CmpLess, Value: []byte{0, 0, 0, 7}},
				{Key: []byte("agent/1"), Target: TargetExists, Op: CmpEqual},
				{Key: []byte("agent/1/x"), Target: TargetModIndex, Op: CmpGreater, ModIndex: 1 << 50},
			},
			Then: []Op{{Type: OpPut, Key: []byte("agent/1/seq"), Value: []byte{0, 0, 0, 7}}, {Type: OpDelete, Key: []byte("old")}},
			Else: []Op{{Type: OpPut, Key: []byte("dups"), Value: []byte("1")}},
		},
		{If: []Compare{{Key: []byte("m"), Target: TargetExists, Op: CmpNotEqual}}},
		{Then: []Op{{Type: OpPut, Key: []byte("a"), Value: []byte{}}}},
		{Else: []Op{{Type: OpDelete, Key: []byte("a")}}},
		{If: []Compare{{Key: []byte("v"), Target: TargetValue, Op: CmpNotEqual}}, Then: []Op{{Type: OpDelete, Key: []byte("v")}}},
	}
}

func TestTxnRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		txns []Txn
	}{
		{"sample", sampleTxns()},
		{"one", sampleTxns()[:1]},
		{"compare only", []Txn{{If: []Compare{{Key: []byte("k"), Target: TargetModIndex, Op: CmpEqual}}}}},
		{"max txns", func() []Txn {
			txns := make([]Txn, MaxTxns)
			for i := range txns {
				txns[i] = Txn{If: []Compare{{Key: []byte{byte(i), byte(i >> 8)}, Target: TargetModIndex, Op: CmpEqual, ModIndex: uint64(i)}},
					Then: []Op{{Type: OpPut, Key: []byte("k"), Value: []byte{byte(i)}}}}
			}
			return txns
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := &Command{ID: 42, Kind: KindTxn, Txns: tt.txns}
			b, err := Encode(want)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			normalize(want)
			normalize(got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip: got %+v, want %+v", got, want)
			}
		})
	}
}

func TestValidateTxnsRejects(t *testing.T) {
	key := []byte("k")
	put := Op{Type: OpPut, Key: key, Value: []byte("v")}
	tests := []struct {
		name string
		txns []Txn
		want error
	}{
		{"no txns", nil, ErrInvalid},
		{"empty txn", []Txn{{}}, ErrInvalid},
		{"too many txns", make([]Txn, MaxTxns+1), ErrTooLarge},
		{"txn too large", []Txn{{Then: make([]Op, MaxTxnOps/2+1), Else: make([]Op, MaxTxnOps/2)}}, ErrTooLarge},
		{"too many ops in all", func() []Txn {
			ops := make([]Op, MaxTxnOps)
			for i := range ops {
				ops[i] = put
			}
			txns := make([]Txn, MaxCommandOps/MaxTxnOps+1)
			for i := range txns {
				txns[i] = Txn{Then: ops}
			}
			return txns
		}(), ErrTooLarge},
		{"too many bytes", func() []Txn {
			big := Op{Type: OpPut, Key: key, Value: make([]byte, MaxValueSize)}
			return []Txn{{Then: []Op{big, big, big, big, big, big, big, big}}, {Then: []Op{big, big, big, big, big, big, big, big}}}
		}(), ErrTooLarge},
		{"bad then op", []Txn{{Then: []Op{{Type: 7, Key: key}}}}, ErrInvalid},
		{"bad else op", []Txn{{Else: []Op{{Type: OpPut}}}}, ErrInvalid},
		{"compare empty key", []Txn{{If: []Compare{{Target: TargetExists, Op: CmpEqual}}}}, ErrInvalid},
		{"compare big key", []Txn{{If: []Compare{{Key: make([]byte, MaxKeySize+1), Target: TargetExists, Op: CmpEqual}}}}, ErrTooLarge},
		{"compare big value", []Txn{{If: []Compare{{Key: key, Target: TargetValue, Op: CmpEqual, Value: make([]byte, MaxValueSize+1)}}}}, ErrTooLarge},
		{"compare unknown target", []Txn{{If: []Compare{{Key: key, Target: 9, Op: CmpEqual}}}}, ErrInvalid},
		{"compare no target", []Txn{{If: []Compare{{Key: key, Op: CmpEqual}}}}, ErrInvalid},
		{"compare unknown op", []Txn{{If: []Compare{{Key: key, Target: TargetValue, Op: 5}}}}, ErrInvalid},
		{"compare no op", []Txn{{If: []Compare{{Key: key, Target: TargetValue}}}}, ErrInvalid},
		{"exists with <", []Txn{{If: []Compare{{Key: key, Target: TargetExists, Op: CmpLess}}}}, ErrInvalid},
		{"exists with a value", []Txn{{If: []Compare{{Key: key, Target: TargetExists, Op: CmpEqual, Value: []byte("v")}}}}, ErrInvalid},
		{"mod index with a value", []Txn{{If: []Compare{{Key: key, Target: TargetModIndex, Op: CmpEqual, Value: []byte("v")}}}}, ErrInvalid},
		{"value with a mod index", []Txn{{If: []Compare{{Key: key, Target: TargetValue, Op: CmpEqual, ModIndex: 3}}}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTxns(tt.txns)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ValidateTxns() error = %v, want %v", err, tt.want)
			}
			if _, err := Encode(&Command{Kind: KindTxn, Txns: tt.txns}); !errors.Is(err, tt.want) {
				t.Fatalf("Encode() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeTxnRejects(t *testing.T) {
	valid, err := Encode(&Command{ID: 1, Kind: KindTxn, Txns: sampleTxns()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{version, byte(KindTxn), 1}
	with := func(b ...byte) []byte { return append(append([]byte{}, hdr...), b...) }
	tests := []struct {
		name string
		b    []byte
		want error
		msg  string
	}{
		{"truncated", valid[:len(valid)-1], ErrInvalid, "truncated"},
		{"trailing", append(append([]byte{}, valid...), 0), ErrInvalid, "trailing"},
		{"no txns", with(0), ErrInvalid, "no transactions"},
		{"txn count over limit", with(0xe9, 0x07, 0, 0, 0), ErrInvalid, "limit 1000"}, // 1001
		{"txn count over input", with(2, 0, 0, 0), ErrInvalid, "remaining"},
		{"empty txn", with(1, 0, 0, 0), ErrInvalid, "empty transaction"},
		{"compare count over input", with(1, 0x7f, 0, 0), ErrInvalid, "remaining"},
		{"compare count over limit", with(1, 0x91, 0x4e, 0, 0), ErrInvalid, "limit 10000"}, // 10001
		{"compare unknown target", with(1, 1, 9, byte(CmpEqual), 1, 'k', 0, 0), ErrInvalid, "unknown compare target"},
		{"exists with >", with(1, 1, byte(TargetExists), byte(CmpGreater), 1, 'k', 0, 0), ErrInvalid, "= or !="},
		{"compare empty key", with(1, 1, byte(TargetExists), byte(CmpEqual), 0, 0, 0), ErrInvalid, "empty key"},
		{"compare huge key", with(1, 1, byte(TargetExists), byte(CmpEqual), 0xff, 0xff, 0x03, 0, 0), ErrTooLarge, "limit 4096"},
		{"compare huge value", with(1, 1, byte(TargetValue), byte(CmpEqual), 1, 'k', 0xff, 0xff, 0xff, 0x01, 0, 0), ErrTooLarge, "limit 1048576"},
		{"truncated mod index", with(1, 1, byte(TargetModIndex), byte(CmpEqual), 1, 'k', 0x80), ErrInvalid, "truncated varint"},
		{"bad then op", with(1, 0, 1, 9, 1, 'k', 0, 0), ErrInvalid, "unknown op type"},
		{"then count over input", with(1, 0, 5, byte(OpDelete), 1, 'k', 0, 0), ErrInvalid, "remaining"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.b); !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Decode() error = %v, want %v with %q", err, tt.want, tt.msg)
			}
		})
	}
	// The fixtures above differ from a valid encoding only where named.
	ok := with(1, 1, byte(TargetModIndex), byte(CmpEqual), 1, 'k', 7, 1, byte(OpDelete), 1, 'k', 0, 0)
	c, err := Decode(ok)
	if err != nil || len(c.Txns) != 1 || c.Txns[0].If[0].ModIndex != 7 || !bytes.Equal(c.Txns[0].Then[0].Key, []byte("k")) {
		t.Fatalf("Decode(valid fixture) = %+v, %v", c, err)
	}
}
