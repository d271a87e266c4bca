package kvraft_test

import (
	"context"
	"slices"
	"testing"

	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/kvraft"
)

// TestStateAscend: a View's Ascend walks the pairs of its range in key
// order and stops when told to.
func TestStateAscend(t *testing.T) {
	n := kvtest.Start(t)
	ctx := context.Background()
	var ops []kvraft.Op
	for _, k := range []string{"a", "b", "b1", "c", "d"} {
		ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: []byte(k), Value: []byte("v-" + k)})
	}
	if _, err := n.Batch(ctx, ops); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		start, end string
		stopAfter  int // 0: never
		want       []string
	}{
		{"a range", "b", "d", 0, []string{"b", "b1", "c"}},
		{"to the end", "c", "", 0, []string{"c", "d"}},
		{"stopped", "a", "", 2, []string{"a", "b"}},
		{"empty", "b2", "c", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var end []byte
			if tt.end != "" {
				end = []byte(tt.end)
			}
			var got []string
			err := n.View(ctx, kvraft.ReadOptions{Consistency: kvraft.Linearizable}, func(st kvraft.State) error {
				st.Ascend([]byte(tt.start), end, func(kv kvraft.KV) bool {
					if string(kv.Value) != "v-"+string(kv.Key) {
						t.Errorf("%s holds %s", kv.Key, kv.Value)
					}
					got = append(got, string(kv.Key))
					return tt.stopAfter == 0 || len(got) < tt.stopAfter
				})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Ascend(%q, %q) = %q, want %q", tt.start, tt.end, got, tt.want)
			}
		})
	}
}
