package kvstore

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/pennyhq/penny/kvraft/command"
)

func cmp(key string, target command.CompareTarget, op command.CompareOp, value string, mod uint64) command.Compare {
	c := command.Compare{Key: []byte(key), Target: target, Op: op, ModIndex: mod}
	if target == command.TargetValue {
		c.Value = []byte(value)
	}
	return c
}

func TestModIndex(t *testing.T) {
	s := New()
	s.Apply([]command.Op{put("a", "1"), put("b", "1")}, 3)
	s.Apply([]command.Op{put("a", "1")}, 7) // same value: still a write
	s.Apply([]command.Op{del("b")}, 8)
	s.Apply([]command.Op{put("b", "2")}, 9)
	s.Apply([]command.Op{del("nothing")}, 10)
	tests := []struct {
		key   string
		found bool
		mod   uint64
	}{
		{"a", true, 7},
		{"b", true, 9},
		{"nothing", false, 0},
	}
	for _, tt := range tests {
		kv, ok := s.Get([]byte(tt.key))
		if ok != tt.found || kv.ModIndex != tt.mod {
			t.Errorf("Get(%s) = %+v, %v; want found=%v mod=%d", tt.key, kv, ok, tt.found, tt.mod)
		}
	}
	items, _ := s.Range(nil, nil, 0)
	if len(items) != 2 || items[0].ModIndex != 7 || items[1].ModIndex != 9 {
		t.Fatalf("Range = %+v", items)
	}
}

func TestCompare(t *testing.T) {
	s := New()
	s.Apply([]command.Op{put("k", "m")}, 5)
	s.Apply([]command.Op{put("empty", "")}, 6)
	const (
		exists = command.TargetExists
		value  = command.TargetValue
		mod    = command.TargetModIndex
		eq     = command.CmpEqual
		ne     = command.CmpNotEqual
		lt     = command.CmpLess
		gt     = command.CmpGreater
	)
	tests := []struct {
		c    command.Compare
		want bool
	}{
		{cmp("k", exists, eq, "", 0), true},
		{cmp("k", exists, ne, "", 0), false},
		{cmp("absent", exists, eq, "", 0), false},
		{cmp("absent", exists, ne, "", 0), true},

		{cmp("k", value, eq, "m", 0), true},
		{cmp("k", value, eq, "mm", 0), false},
		{cmp("k", value, ne, "m", 0), false},
		{cmp("k", value, ne, "x", 0), true},
		{cmp("k", value, lt, "n", 0), true},
		{cmp("k", value, lt, "m", 0), false},
		{cmp("k", value, lt, "ma", 0), true}, // a prefix sorts first
		{cmp("k", value, gt, "l", 0), true},
		{cmp("k", value, gt, "", 0), true},
		{cmp("k", value, gt, "m", 0), false},
		{cmp("empty", value, eq, "", 0), true},
		{cmp("empty", value, lt, "a", 0), true},
		// An absent key has no value: every value compare is false.
		{cmp("absent", value, eq, "", 0), false},
		{cmp("absent", value, ne, "x", 0), false},
		{cmp("absent", value, lt, "z", 0), false},
		{cmp("absent", value, gt, "", 0), false},

		{cmp("k", mod, eq, "", 5), true},
		{cmp("k", mod, eq, "", 4), false},
		{cmp("k", mod, ne, "", 4), true},
		{cmp("k", mod, ne, "", 5), false},
		{cmp("k", mod, lt, "", 6), true},
		{cmp("k", mod, lt, "", 5), false},
		{cmp("k", mod, gt, "", 4), true},
		{cmp("k", mod, gt, "", 5), false},
		// An absent key has mod index 0.
		{cmp("absent", mod, eq, "", 0), true},
		{cmp("absent", mod, lt, "", 1), true},
		{cmp("absent", mod, gt, "", 0), false},
		{cmp("k", mod, eq, "", 0), false},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s %v %v %q/%d", tt.c.Key, tt.c.Target, tt.c.Op, tt.c.Value, tt.c.ModIndex)
		t.Run(name, func(t *testing.T) {
			if err := command.ValidateCompare(tt.c); err != nil {
				t.Fatalf("invalid compare: %v", err)
			}
			if got := s.holds([]command.Compare{tt.c}); got != tt.want {
				t.Fatalf("holds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestApplyTxns(t *testing.T) {
	tests := []struct {
		name string
		txns []command.Txn
		want []bool
		// state after the txns, as key=value@mod
		state string
	}{
		{
			name: "then and else",
			txns: []command.Txn{
				{If: []command.Compare{cmp("a", command.TargetValue, command.CmpEqual, "1", 0)},
					Then: []command.Op{put("a", "2")}, Else: []command.Op{put("x", "else")}},
				{If: []command.Compare{cmp("a", command.TargetValue, command.CmpEqual, "1", 0)},
					Then: []command.Op{put("y", "then")}, Else: []command.Op{put("z", "else")}},
			},
			// The second txn sees the first one's write.
			want:  []bool{true, false},
			state: "[a=2@10 b=1@1 z=else@10]",
		},
		{
			name: "all compares must hold",
			txns: []command.Txn{
				{If: []command.Compare{
					cmp("a", command.TargetExists, command.CmpEqual, "", 0),
					cmp("b", command.TargetModIndex, command.CmpEqual, "", 2),
				}, Then: []command.Op{del("a")}, Else: []command.Op{del("b")}},
			},
			want:  []bool{false},
			state: "[a=1@1]",
		},
		{
			name: "empty if holds, empty branch writes nothing",
			txns: []command.Txn{
				{Then: []command.Op{put("c", "3"), put("c", "4"), del("a")}},
				{If: []command.Compare{cmp("c", command.TargetModIndex, command.CmpEqual, "", 10)}},
				{If: []command.Compare{cmp("c", command.TargetValue, command.CmpEqual, "3", 0)}, Then: []command.Op{put("d", "x")}},
			},
			want:  []bool{true, true, false},
			state: "[b=1@1 c=4@10]",
		},
		{
			// The dedup recipe of docs/kvraft.md: If stored seq > seq-1
			// (a duplicate) do nothing, else apply the frame.
			name: "apply each sequence number once",
			txns: []command.Txn{
				dedup("s1", 1), dedup("s1", 1), dedup("s1", 2), dedup("s1", 1), dedup("s1", 0x100), dedup("s1", 0xff),
				dedup("s2", 9),
			},
			want:  []bool{false, true, false, true, false, true, false},
			state: "[a=1@1 b=1@1 frame/s1/1=x@10 frame/s1/2=x@10 frame/s1/256=x@10 frame/s2/9=x@10 s1=\x00\x00\x00\x00\x00\x00\x01\x00@10 s2=\x00\x00\x00\x00\x00\x00\x00\t@10]",
		},
		{
			name: "create if missing",
			txns: []command.Txn{
				{If: []command.Compare{cmp("n", command.TargetExists, command.CmpNotEqual, "", 0)}, Then: []command.Op{put("n", "first")}},
				{If: []command.Compare{cmp("n", command.TargetModIndex, command.CmpEqual, "", 0)}, Then: []command.Op{put("n", "second")}},
			},
			want:  []bool{true, false},
			state: "[a=1@1 b=1@1 n=first@10]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			s.Apply([]command.Op{put("a", "1"), put("b", "1")}, 1)
			got := s.ApplyTxns(tt.txns, 10)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("succeeded = %v, want %v", got, tt.want)
			}
			items, _ := s.Range(nil, nil, 0)
			var state []string
			for _, kv := range items {
				state = append(state, fmt.Sprintf("%s=%s@%d", kv.Key, kv.Value, kv.ModIndex))
			}
			if fmt.Sprint(state) != tt.state {
				t.Fatalf("state = %v, want %s", state, tt.state)
			}
		})
	}
}

// dedup is a txn that applies frame seq of agent once.
func dedup(agent string, seq uint64) command.Txn {
	be := func(v uint64) string { return string(binary.BigEndian.AppendUint64(nil, v)) }
	return command.Txn{
		If:   []command.Compare{cmp(agent, command.TargetValue, command.CmpGreater, be(seq-1), 0)},
		Else: []command.Op{put(fmt.Sprintf("frame/%s/%d", agent, seq), "x"), put(agent, be(seq))},
	}
}

func TestApplyTxnsIsAtomicForReaders(t *testing.T) {
	s := New()
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			items, _ := s.Range(nil, nil, 0)
			if len(items) != 0 && len(items) != 2 {
				done <- fmt.Errorf("reader saw %d of 2 keys", len(items))
				return
			}
			if len(items) == 2 && items[0].ModIndex != items[1].ModIndex {
				done <- fmt.Errorf("reader saw keys from different entries: %+v", items)
				return
			}
		}
	}()
	for i := uint64(1); i <= 2000; i++ {
		txns := []command.Txn{
			{If: []command.Compare{cmp("a", command.TargetExists, command.CmpNotEqual, "", 0)}, Then: []command.Op{put("a", "1")}, Else: []command.Op{del("a")}},
			{If: []command.Compare{cmp("b", command.TargetExists, command.CmpNotEqual, "", 0)}, Then: []command.Op{put("b", "1")}, Else: []command.Op{del("b")}},
		}
		s.ApplyTxns(txns, i)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
