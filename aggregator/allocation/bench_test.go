package allocation_test

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/allocation"
	"github.com/pennyhq/penny/aggregator/allocation/allocationtest"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/internal/kvtest"
)

// BenchmarkWeek answers GET /v1/allocation over a week of hour records of
// 167 nodes x 100 cgroups (5,010 pods, 16,700 containers: make
// bench-cost's fleet), from the read to the JSON, with the reader's cache
// of day blocks and without (every hour record decoded by every query).
func BenchmarkWeek(b *testing.B) {
	now := time.Now().UTC()
	end := now.Truncate(time.Hour)
	store := kvtest.Start(b)
	allocationtest.Fleet{Nodes: 167, Containers: 100, Hours: 7 * 24, End: end, Seed: 1}.Write(b, store)
	for _, c := range []struct {
		name  string
		cache int64
	}{{"uncached", -1}, {"cached", 0}} {
		rd, err := history.NewReader(history.ReaderConfig{Store: store, CacheBytes: c.cache})
		if err != nil {
			b.Fatal(err)
		}
		h, err := allocation.NewHandler(allocation.Config{History: rd, Now: func() time.Time { return now }})
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{"aggregate=namespace", "aggregate=pod", "aggregate=namespace&step=1d"} {
			v, err := url.ParseQuery("window=7d&consistency=eventual&" + q)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(c.name+"/"+q, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					res, err := h.Compute(context.Background(), v)
					if err != nil {
						b.Fatal(err)
					}
					if err := json.NewEncoder(io.Discard).Encode(res.Response()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
