package kvraft_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
)

// TestInflightBytesBounded cuts a follower off and writes past
// MaxInflightBytes: the leader stops sending it entries at the byte bound,
// where the message count alone (256) would have let every entry go out
// and be held for it.
func TestInflightBytesBounded(t *testing.T) {
	const (
		perMsg   = 256 << 10
		inflight = 512 << 10
		value    = 64 << 10
		writes   = 32 // 2 MiB: four times the bound
	)
	tests := []struct {
		name          string
		inflightBytes uint64
		// maxAhead is the most entries the leader may have sent past
		// what the follower acknowledged: the bound plus the message
		// that crosses it, or every write.
		maxAhead, minAhead uint64
	}{
		{"bounded by bytes", inflight, (inflight + perMsg) / value, 1},
		{"bounded by count only", 1 << 40, writes + 4, writes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 3, func(cfg *kvraft.Config) {
				cfg.MaxSizePerMsg, cfg.MaxInflightBytes = perMsg, tt.inflightBytes
				cfg.SnapshotCount, cfg.SnapshotBytes = 1_000_000, 1<<40
			})
			lead := c.waitLeader()
			cut := lead%3 + 1
			var rest []uint64
			for id := uint64(1); id <= 3; id++ {
				if id != cut {
					rest = append(rest, id)
				}
			}
			put(t, c.node(lead), "warm", "up")
			c.net.Partition([]uint64{cut}, rest)
			v := strings.Repeat("x", value)
			for i := range writes {
				put(t, c.node(lead), fmt.Sprintf("k%02d", i), v)
			}
			time.Sleep(200 * time.Millisecond) // heartbeats: nothing comes back
			match, next, ok := c.node(lead).FollowerProgress(cut)
			if !ok {
				t.Fatalf("leader %d has no progress for %d", lead, cut)
			}
			ahead := next - 1 - match
			t.Logf("follower %d: match %d, next %d: %d entries in flight", cut, match, next, ahead)
			if ahead > tt.maxAhead || ahead < tt.minAhead {
				t.Fatalf("%d entries in flight to the cut-off follower, want %d to %d", ahead, tt.minAhead, tt.maxAhead)
			}
		})
	}
}
