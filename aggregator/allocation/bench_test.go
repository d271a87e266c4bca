package allocation_test

import (
	"net/http"
	"net/http/httptest"
	"syscall"
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
			req := httptest.NewRequest(http.MethodGet, allocation.Path+"?window=7d&consistency=eventual&"+q, nil)
			b.Run(c.name+"/"+q, func(b *testing.B) {
				b.ReportAllocs()
				w := &discard{h: http.Header{}}
				cpu0 := cpuTime(b)
				for b.Loop() {
					w.code, w.n = 0, 0
					h.ServeHTTP(w, req)
					if w.code != http.StatusOK {
						b.Fatal(w.code)
					}
				}
				b.ReportMetric(float64(w.n), "answer-B")
				// CPU time, which other processes on the machine change
				// less than the time per op.
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the process's user and system time.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discard is a ResponseWriter that counts the body and drops it.
type discard struct {
	h    http.Header
	code int
	n    int
}

func (d *discard) Header() http.Header  { return d.h }
func (d *discard) WriteHeader(code int) { d.code = code }
func (d *discard) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	d.n += len(b)
	return len(b), nil
}
