package history_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/allocation/allocationtest"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/kvraft"
)

// TestCacheSameSpans reads an uneven history (containers that come and go,
// gaps, price changes, partial hours, minute records at the edges) through
// a reader without a cache and through readers with one, cold, warm, too
// small to hold it, and after a past hour is rewritten: every read must
// return exactly the same spans.
func TestCacheSameSpans(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	end := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	store := kvtest.Start(t)
	fleet := allocationtest.Fleet{Nodes: 5, Containers: 40, Hours: 4*24 + 7, End: end, Seed: seed, Ragged: true}
	fleet.Write(t, store)
	// The last hour ended two minutes ago: not settled, read every time.
	now := func() time.Time { return end.Add(2 * time.Minute) }
	reader := func(cacheBytes int64) *history.Reader {
		t.Helper()
		r, err := history.NewReader(history.ReaderConfig{Store: store, CacheBytes: cacheBytes, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	plain, cached, small := reader(-1), reader(0), reader(64<<10)
	day := 24 * time.Hour
	tomorrow := end.Truncate(day).Add(day)
	cases := []struct {
		start, end time.Time
		step       time.Duration
	}{
		{tomorrow.Add(-7 * day), tomorrow, 7 * day},
		{tomorrow.Add(-7 * day), tomorrow, day},
		{tomorrow.Add(-3 * day), tomorrow, 3 * day},
		{tomorrow.Add(-3 * day), tomorrow, 6 * time.Hour},
		{tomorrow.Add(-3 * day), tomorrow, 7 * time.Hour},
		{tomorrow.Add(-2 * day), tomorrow, time.Hour},
		{end.Add(-50*time.Hour + 17*time.Minute), end.Add(-3*time.Hour + 5*time.Minute), 47 * time.Hour},
		{end.Add(-50*time.Hour + 17*time.Minute), end.Add(5 * time.Minute), 90 * time.Minute},
		{end.Add(-5 * day).Add(23 * time.Minute), end.Add(-time.Hour), day},
		{end.Add(-90 * time.Minute), end.Add(30 * time.Minute), 2 * time.Hour},
	}
	ctx := context.Background()
	opts := kvraft.ReadOptions{Consistency: kvraft.Eventual}
	check := func(t *testing.T, what string) {
		t.Helper()
		for _, c := range cases {
			name := fmt.Sprintf("%s %s..%s step %s", what, c.start.Format(time.RFC3339), c.end.Format(time.RFC3339), c.step)
			ws, wn, err := plain.SpansByStep(ctx, c.start, c.end, c.step, opts)
			if err != nil {
				t.Fatal(name, err)
			}
			if len(ws) == 0 {
				t.Fatal(name, "no spans")
			}
			for _, r := range []struct {
				name string
				r    *history.Reader
			}{{"cold", cached}, {"warm", cached}, {"small", small}} {
				gs, gn, err := r.r.SpansByStep(ctx, c.start, c.end, c.step, opts)
				if err != nil {
					t.Fatal(name, r.name, err)
				}
				if !reflect.DeepEqual(gs, ws) || !reflect.DeepEqual(gn, wn) {
					t.Errorf("%s, %s cache: spans differ from the uncached read (%d and %d series)", name, r.name, len(gs), len(ws))
				}
			}
		}
	}
	check(t, "as written")

	// Rewrite a past hour of a node (a late roll) and an identity: the
	// cache must not answer with what they were.
	h := end.Truncate(day).Add(-day + 5*time.Hour).Unix()
	seg := history.Segment{Start: h + 600, End: h + 3000, ObservedMs: 2_400_000, Node: history.Node{CPUMillis: 2000, MemoryBytes: 8 << 30},
		Rates: cost.DefaultRates, Entries: []history.Entry{{Ref: 3, ObservedMs: 2_400_000, CPUUsedUs: 7_000_000, CPUAllocUs: 7_000_000}}}
	id := history.Identity{Path: "/renamed", Namespace: "renamed", Pod: "renamed-0", Container: "app"}
	if _, err := store.Txn(ctx, kvraft.Txn{Then: []kvraft.Op{
		{Type: kvraft.OpPut, Key: history.HourKey(h, "node-001"), Value: (&history.Record{Segments: []history.Segment{seg}}).Encode()},
		{Type: kvraft.OpPut, Key: history.IdentityKey("node-002", 12), Value: id.Encode()},
	}}); err != nil {
		t.Fatal(err)
	}
	check(t, "rewritten")

	// Readers at once share the cache: the same answers (and no race).
	fresh := reader(0)
	want, _, err := plain.SpansByStep(ctx, cases[1].start, cases[1].end, cases[1].step, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 3 {
				got, _, err := fresh.SpansByStep(ctx, cases[1].start, cases[1].end, cases[1].step, opts)
				if err == nil && !reflect.DeepEqual(got, want) {
					err = fmt.Errorf("concurrent read: spans differ")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
