package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

// TestHistoryThroughLeaderKill streams a simulated agent's samples, forty
// times faster than real time, through the real ingest of three
// aggregator processes that roll up every 200 ms; the leader is SIGKILLed
// mid-run and comes back. The minute records every replica ends with tile
// the run without gap or overlap, and add up, to the microsecond and the
// millisecond, to what the agent's counters and samples say: no
// acknowledged minute lost, none counted twice.
func TestHistoryThroughLeaderKill(t *testing.T) {
	c := newProcCluster(t, 3, "--history-roll-every=200ms")
	c.waitHealthy(c.replicas...)
	var urls []string
	for _, r := range c.replicas {
		urls = append(urls, "http://"+r.api)
	}
	const node = "hist-node"
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: node})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := shipper.New(shipper.Config{URLs: urls, BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond,
		AckTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, enc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	shipped := make(chan struct{})
	go func() { _ = sh.Run(ctx); close(shipped) }()
	defer func() { cancel(); <-shipped }()

	// Sample i is taken at start + i seconds: /a runs a core and holds a
	// GiB all along; /b runs half a core from sample 100 and is gone at
	// sample 400, while the leader is away.
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	const last, killAt, backAt = 721, 380, 430
	sample := func(i int) *wire.Snapshot {
		s := &wire.Snapshot{Time: start.Add(time.Duration(i) * time.Second), Interval: time.Second}
		s.Series = append(s.Series, wire.SeriesState{Path: "/a", ID: 1, Values: wire.Values{Processes: 1, RSSBytes: 1 << 30,
			CPUUsageUsec: uint64(i) * 1e6, TxBytes: uint64(i) * 1000, TxInternetBytes: uint64(i) * 1000}})
		if i >= 100 && i < 400 {
			s.Series = append(s.Series, wire.SeriesState{Path: "/b", ID: 2, Values: wire.Values{Processes: 1,
				RSSBytes: 1 << 20, CPUUsageUsec: uint64(i-100) * 5e5}})
		}
		return s
	}
	var lead *replica
	for i := 0; i <= last; i++ {
		switch i {
		case killAt:
			lead = c.leader()
			c.kill(lead)
		case backAt:
			c.start(lead)
		}
		if err := sh.Submit(sample(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	eventually(t, "every frame acknowledged", 30*time.Second, func() error {
		if n, _ := sh.Pending(); n > 0 {
			return fmt.Errorf("%d frames pending", n)
		}
		return nil
	})
	if d := sh.Dropped(); d != 0 {
		t.Fatalf("the agent dropped %v frames", d)
	}
	c.waitHealthy(c.replicas...)

	// The last complete minute: the one that ends at sample 720.
	end := start.Add(720 * time.Second).UnixMilli()
	eventually(t, "the last minute rolled", 30*time.Second, func() error {
		g, err := client(c.replicas[0]).Get(ctx, history.CursorKey(node), kvraft.ReadOptions{})
		if err != nil {
			return err
		}
		cur, err := history.DecodeCursor(g.Value)
		if err != nil {
			return err
		}
		if cur.MinuteMs != end {
			return fmt.Errorf("cursor at %s, want %s", time.UnixMilli(cur.MinuteMs).UTC(), time.UnixMilli(end).UTC())
		}
		return nil
	})

	// Every replica holds the same history.
	var hist []byte
	for _, r := range c.replicas {
		res, err := client(r).RangeAll(ctx, []byte("penny/v1/hist/"), kvraft.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, it := range res.Items {
			fmt.Fprintf(&b, "%s=%x\n", it.Key, it.Value)
		}
		if hist == nil {
			hist = b.Bytes()
		} else if !bytes.Equal(b.Bytes(), hist) {
			t.Errorf("replica %d holds another history", r.id)
		}
	}

	// The minute records tile [start, end) and add up.
	res, err := client(c.replicas[0]).RangeAll(ctx, []byte("penny/v1/hist/m/"), kvraft.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := client(c.replicas[0]).RangeAll(ctx, []byte("penny/v1/hist/c/"+node+"/"), kvraft.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[uint64]string{}
	for _, it := range ids.Items {
		id, err := history.DecodeIdentity(it.Value)
		if err != nil {
			t.Fatal(err)
		}
		var ref uint64
		fmt.Sscanf(it.Key[len(it.Key)-16:], "%x", &ref)
		paths[ref] = id.Path
	}
	sums := map[string]*history.Entry{"/a": {}, "/b": {}}
	next, folds := start.Unix(), 0
	for _, it := range res.Items {
		rec, err := history.DecodeRecord(it.Value)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rec.Segments {
			if s.Start != next {
				t.Fatalf("a span starts at %s, want %s: a gap or an overlap", time.Unix(s.Start, 0).UTC(), time.Unix(next, 0).UTC())
			}
			if s.End-s.Start > 60 {
				folds++
			}
			next = s.End
			for _, e := range s.Entries {
				if sum := sums[paths[e.Ref]]; sum != nil {
					sum.Add(&e)
				}
			}
		}
	}
	if next*1000 != end {
		t.Errorf("the spans end at %s, want %s", time.Unix(next, 0).UTC(), time.UnixMilli(end).UTC())
	}
	t.Logf("%d minute records, %d of them folding minutes rolled late", len(res.Items), folds)
	// /a: 720 s observed, counter 720e6 at sample 720; /b: samples 100 to
	// 399, held to its end at 400.
	want := map[string]history.Entry{
		"/a": {ObservedMs: 720_000, CPUUsedUs: 720e6, CPUAllocUs: 720e6, MemUsedKiBs: 720 << 20, MemAllocKiBs: 720 << 20,
			EgressInternetBytes: 720_000},
		"/b": {ObservedMs: 300_000, CPUUsedUs: 299 * 5e5, CPUAllocUs: 299 * 5e5, MemUsedKiBs: 300 << 10, MemAllocKiBs: 300 << 10},
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		got := *sums[p]
		got.Ref = 0
		if got != want[p] {
			t.Errorf("%s: minutes add up to\n %+v, want\n %+v", p, got, want[p])
		}
	}
	if g, err := client(c.replicas[0]).RangeAll(ctx, model.AllGonePrefix(), kvraft.ReadOptions{}); err != nil || len(g.Items) != 0 {
		t.Errorf("final records left: %d, %v", len(g.Items), err)
	}
}
