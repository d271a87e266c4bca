package mpcheck

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestCheckAcceptsWhatMsgpackWrites(t *testing.T) {
	values := []any{
		nil, true, 1, -1, 300, -70000, uint64(1) << 40, 1.5, float32(2.5), "", "hi",
		string(bytes.Repeat([]byte("x"), 70000)), []byte{1, 2, 3}, []any{1, "a", []any{}},
		map[string]any{"a": 1, "b": map[string]any{"c": []int{1, 2}}},
		struct {
			A []uint64 `msgpack:"a"`
			B string   `msgpack:"b"`
		}{[]uint64{1, 1 << 33}, "x"},
	}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(b); err != nil {
			t.Errorf("Check(%T %.20v) = %v", v, v, err)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"str32 longer than the input", []byte{0xdb, 0xcf, 0, 0, 0, 'a'}},
		{"bin32 longer than the input", []byte{0xc6, 0, 0, 1, 0}},
		{"array32 of 4G elements", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0}},
		{"map16 short", []byte{0xde, 0, 2, 1, 1, 1}},
		{"truncated int64", []byte{0xd3, 0, 0}},
		{"unknown code", []byte{0xc1}},
		{"trailing bytes", []byte{0x01, 0x02}},
		{"too deep", append(bytes.Repeat([]byte{0x91}, MaxDepth+1), 0)},
		{"ext32 longer than the input", []byte{0xc9, 0, 0, 0, 9, 1, 2}},
	}
	for _, tt := range tests {
		if err := Check(tt.in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check = %v, want ErrMalformed", tt.name, err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	b, _ := msgpack.Marshal(map[string]any{"a": []any{1, "x", []byte{2}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if Check(b) != nil {
			return
		}
		// What passes decodes without error into a generic value... or a
		// clean error, never a huge allocation.
		var v any
		_ = msgpack.Unmarshal(b, &v)
	})
}
