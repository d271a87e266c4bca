package janitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/janitor"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/kvraft"
)

func TestSweepDeletesSilentNodesOnly(t *testing.T) {
	n := kvtest.Start(t)
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	write := func(node string, at time.Time) {
		p, err := model.PlanUpdate(&model.NodeState{Node: node}, &model.Update{Node: node, Incarnation: 1, Seq: 1,
			Time: at, Interval: time.Second, Keyframe: true,
			Changed: []model.SeriesState{{Path: "/a", RSSBytes: 1}, {Path: "/b", RSSBytes: 2}}}, at)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := n.Txn(context.Background(), model.Txn(node, p.Expect, p.Ops)); err != nil || !r.Succeeded {
			t.Fatal(r, err)
		}
	}
	write("silent", t0)
	write("alive", t0.Add(9*time.Minute))
	// Series whose agent record is gone (an older version's leftovers).
	if _, err := n.Put(context.Background(), model.SeriesKey("orphan", "/x"), []byte("v")); err != nil {
		t.Fatal(err)
	}

	now := t0.Add(10*time.Minute + time.Second)
	j, err := janitor.New(janitor.Config{Store: n, TTL: 10 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := j.Sweep(context.Background())
	if err != nil || deleted != 2 {
		t.Fatalf("Sweep = %d, %v; want 2 (silent, orphan)", deleted, err)
	}
	res, err := n.Range(context.Background(), kvraft.RangeRequest{Prefix: model.AllNodesPrefix()},
		kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range res.Items {
		if node, _, _, _ := model.ParseKey(kv.Key); node != "alive" {
			t.Errorf("left behind: %s", kv.Key)
		}
	}
	if len(res.Items) != 3 {
		t.Errorf("%d keys left, want alive's record and two series", len(res.Items))
	}
	if d, _ := j.Sweep(context.Background()); d != 0 {
		t.Errorf("second sweep deleted %d", d)
	}
}

func TestConfig(t *testing.T) {
	n := kvtest.Start(t)
	tests := []struct {
		name       string
		cfg        janitor.Config
		ttl, every time.Duration
		ok         bool
	}{
		{"defaults", janitor.Config{Store: n}, 10 * time.Minute, time.Minute, true},
		{"every from the ttl", janitor.Config{Store: n, TTL: time.Minute}, time.Minute, 6 * time.Second, true},
		{"both set", janitor.Config{Store: n, TTL: time.Minute, Every: time.Second}, time.Minute, time.Second, true},
		{"no store", janitor.Config{}, 10 * time.Minute, time.Minute, false},
		{"ttl under a second", janitor.Config{Store: n, TTL: time.Millisecond}, time.Millisecond, 100 * time.Microsecond, false},
		{"negative interval", janitor.Config{Store: n, Every: -time.Second}, 10 * time.Minute, -time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			_ = cfg.Validate()
			if cfg.TTL != tt.cfg.TTL || cfg.Every != tt.cfg.Every || cfg.Logger != nil || cfg.Now != nil {
				t.Fatalf("Validate changed the config: %+v", cfg)
			}
			cfg.Complete()
			if cfg.TTL != tt.ttl || cfg.Every != tt.every || cfg.Logger == nil || cfg.Now == nil {
				t.Fatalf("completed: TTL %v, Every %v, logger %v, clock set %v", cfg.TTL, cfg.Every, cfg.Logger, cfg.Now != nil)
			}
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if _, err := janitor.New(tt.cfg); (err == nil) != tt.ok {
				t.Fatalf("New() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
