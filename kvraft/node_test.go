package kvraft_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
)

func TestBasicOperations(t *testing.T) {
	for _, size := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			c := newCluster(t, size, nil)
			lead := c.waitLeader()
			// Write through every member: followers forward to the leader.
			var last uint64
			for _, n := range c.running() {
				idx := put(t, n, fmt.Sprintf("k/%d", n.ID()), fmt.Sprintf("v%d", n.ID()))
				if idx <= last {
					t.Fatalf("commit index went from %d to %d", last, idx)
				}
				last = idx
			}
			ctx := context.Background()
			bidx, err := c.node(lead).Batch(ctx, []kvraft.Op{
				{Type: kvraft.OpPut, Key: []byte("b/1"), Value: []byte("x")},
				{Type: kvraft.OpPut, Key: []byte("b/2"), Value: []byte("y")},
				{Type: kvraft.OpDelete, Key: []byte("k/1")},
			})
			if err != nil || bidx <= last {
				t.Fatalf("batch: index %d err %v", bidx, err)
			}
			for _, n := range c.running() {
				if r := get(t, n, "k/1", linearizable); r.Found {
					t.Fatalf("member %d: deleted key still found", n.ID())
				}
				r := get(t, n, "b/2", linearizable)
				if !r.Found || string(r.Value) != "y" || r.Index < bidx {
					t.Fatalf("member %d: b/2 = %+v", n.ID(), r)
				}
				rr, err := n.Range(ctx, kvraft.RangeRequest{Prefix: []byte("b/"), Limit: 1}, linearizable)
				if err != nil || len(rr.Items) != 1 || !rr.More || string(rr.Items[0].Key) != "b/1" {
					t.Fatalf("member %d: range = %+v, %v", n.ID(), rr, err)
				}
			}
		})
	}
}

func TestRejectsBadRequests(t *testing.T) {
	c := newCluster(t, 1, nil)
	n := c.node(c.waitLeader())
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"empty key", func() error { _, err := n.Put(ctx, nil, []byte("v")); return err }, kvraft.ErrInvalid},
		{"huge key", func() error { _, err := n.Put(ctx, make([]byte, 5000), nil); return err }, kvraft.ErrTooLarge},
		{"huge value", func() error { _, err := n.Put(ctx, []byte("k"), make([]byte, 2<<20)); return err }, kvraft.ErrTooLarge},
		{"empty batch", func() error { _, err := n.Batch(ctx, nil); return err }, kvraft.ErrInvalid},
		{"bounded without staleness", func() error {
			_, err := n.Get(ctx, []byte("k"), kvraft.ReadOptions{Consistency: kvraft.Bounded})
			return err
		}, kvraft.ErrInvalid},
		{"session without index", func() error {
			_, err := n.Get(ctx, []byte("k"), kvraft.ReadOptions{Consistency: kvraft.Session})
			return err
		}, kvraft.ErrInvalid},
		{"session index from the future", func() error {
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, err := n.Get(ctx, []byte("k"), kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: 1 << 40})
			return err
		}, kvraft.ErrTimeout},
		{"remove unknown member", func() error { _, err := n.RemoveMember(ctx, 42); return err }, kvraft.ErrMemberNotFound},
		{"add existing member", func() error {
			_, err := n.AddMember(ctx, kvraft.Member{ID: 1, PeerURL: "http://x:1"})
			return err
		}, kvraft.ErrMemberExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() kvraft.Config {
		c := kvraft.Config{ID: 1, DataDir: "/tmp/x", InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://a:1"}},
			NewTransport: func(kvraft.Receiver) (kvraft.Transport, error) { return nil, nil }}
		c.Complete()
		return c
	}
	tests := []struct {
		name   string
		mutate func(*kvraft.Config)
		ok     bool
	}{
		{"good", func(*kvraft.Config) {}, true},
		{"no id", func(c *kvraft.Config) { c.ID = 0 }, false},
		{"id too large", func(c *kvraft.Config) { c.ID = 1 << 20 }, false},
		{"not in cluster", func(c *kvraft.Config) { c.ID = 2 }, false},
		{"no dir", func(c *kvraft.Config) { c.DataDir = "" }, false},
		{"bad peer url", func(c *kvraft.Config) { c.InitialCluster[0].PeerURL = "ftp://x" }, false},
		{"bad api url", func(c *kvraft.Config) { c.APIURL = "nope" }, false},
		{"no transport", func(c *kvraft.Config) { c.NewTransport = nil }, false},
		{"election <= heartbeat", func(c *kvraft.Config) { c.ElectionTicks, c.HeartbeatTicks = 2, 2 }, false},
		{"in-flight bytes one message", func(c *kvraft.Config) { c.MaxInflightBytes = c.MaxSizePerMsg }, true},
		{"in-flight bytes below a message", func(c *kvraft.Config) { c.MaxInflightBytes = c.MaxSizePerMsg - 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.mutate(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestConfigComplete checks that Complete fills the defaults, keeps what
// is set, and that Validate fills nothing.
func TestConfigComplete(t *testing.T) {
	var empty kvraft.Config
	if err := empty.Validate(); err == nil {
		t.Fatal("an empty config validates")
	}
	if empty.TickInterval != 0 || empty.Logger != nil {
		t.Fatalf("Validate changed the config: %+v", empty)
	}
	c := kvraft.Config{TickInterval: 20 * time.Millisecond, SnapshotCount: 7}
	c.Complete()
	if c.TickInterval != 20*time.Millisecond || c.SnapshotCount != 7 || c.BoundedRefresh != c.TickInterval ||
		c.ElectionTicks != 10 || c.HeartbeatTicks != 1 || c.RequestTimeout != 5*time.Second || c.Logger == nil ||
		c.MaxInflightBytes != kvraft.DefaultMaxInflightBytes {
		t.Fatalf("completed config: %+v", c)
	}
}

func TestParseCluster(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1=http://a:1,2=http://b:2,3=http://c:3", 3, true},
		{"1=http://a:1", 1, true},
		{"", 0, false},
		{"1=http://a:1,1=http://b:2", 0, false},
		{"0=http://a:1", 0, false},
		{"x=http://a:1", 0, false},
		{"1http://a:1", 0, false},
		{"1=a:1", 0, false},
	}
	for _, tt := range tests {
		got, err := kvraft.ParseCluster(tt.in)
		if (err == nil) != tt.ok || len(got) != tt.want {
			t.Errorf("ParseCluster(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestParseConsistency(t *testing.T) {
	for _, s := range []string{"linearizable", "bounded", "session", "eventual"} {
		c, err := kvraft.ParseConsistency(s)
		if err != nil || c.String() != s {
			t.Errorf("ParseConsistency(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := kvraft.ParseConsistency("strong"); !errors.Is(err, kvraft.ErrInvalid) {
		t.Errorf("ParseConsistency(strong) error = %v", err)
	}
}
