package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pennyhq/penny/internal/procstat"
)

// stages is where a load's time went besides the replicas' CPU: what
// freshness is made of, so that a tail can be traced to its cause.
type stages struct {
	// busy and steal are the machine's CPU time used and stolen by its
	// hypervisor, in cores; gen is the load generator's own CPU (this
	// process), in cores.
	busy, steal, gen float64
	// proposal is the leader's p99 from proposing a write to applying it
	// (penny_kvraft_proposal_duration_seconds), persist the largest p99 of
	// a replica's WAL write and fsync per Raft Ready
	// (penny_kvraft_persist_duration_seconds), backpressure the largest
	// p99 a stream waited for room in a replica's proposal queue; over the
	// whole run, warmup included.
	proposal, persist, backpressure time.Duration
	// snapshots counts the replicas' snapshots, summed.
	snapshots float64
	// store is the largest replica's store bytes (keys and values,
	// penny_store_bytes) at the end; heap its live heap at the last
	// collection, estimated from the collector's goal
	// (go_memstats_next_gc_bytes / (1 + GOGC/100)).
	store, heap float64
}

// machineUse returns the machine's CPU used and stolen between a and b,
// in cores over the wall time d.
func machineUse(a, b procstat.Machine, d time.Duration) (busy, steal float64) {
	m := b.Since(a)
	return m.Busy / d.Seconds(), m.Steal / d.Seconds()
}

// scrapeStages reads the replicas' /metrics into st (token: a bearer
// token, or none).
func scrapeStages(ctx context.Context, urls []string, token string, st *stages) error {
	// Only these families: the containers' would cost a replica seconds
	// of CPU to encode at 50,000 series (it still gathers them), which a
	// replica's CPU profile would show.
	q := url.Values{"name[]": {"penny_kvraft_is_leader", "penny_kvraft_proposal_duration_seconds",
		"penny_kvraft_persist_duration_seconds", "penny_ingest_backpressure_seconds", "penny_kvraft_snapshots_total",
		"penny_store_bytes", "go_gc_gogc_percent", "go_memstats_next_gc_bytes"}}
	for _, u := range urls {
		fams, err := scrape(ctx, u+"/metrics?"+q.Encode(), token)
		if err != nil {
			return err
		}
		if gauge(fams["penny_kvraft_is_leader"]) == 1 {
			st.proposal = quantile(fams["penny_kvraft_proposal_duration_seconds"], 0.99)
		}
		st.persist = max(st.persist, quantile(fams["penny_kvraft_persist_duration_seconds"], 0.99))
		st.backpressure = max(st.backpressure, quantile(fams["penny_ingest_backpressure_seconds"], 0.99))
		st.snapshots += counter(fams["penny_kvraft_snapshots_total"])
		st.store = max(st.store, gauge(fams["penny_store_bytes"]))
		if gogc := gauge(fams["go_gc_gogc_percent"]); gogc > 0 {
			st.heap = max(st.heap, gauge(fams["go_memstats_next_gc_bytes"])/(1+gogc/100))
		}
	}
	return nil
}

func scrape(ctx context.Context, target, token string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", target, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", target, err)
	}
	return fams, nil
}

func gauge(f *dto.MetricFamily) float64 {
	if f == nil || len(f.GetMetric()) == 0 {
		return math.NaN()
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

func counter(f *dto.MetricFamily) float64 {
	var n float64
	for _, m := range f.GetMetric() {
		n += m.GetCounter().GetValue()
	}
	return n
}

// quantile estimates the q-quantile of a histogram family's first series
// as Prometheus' histogram_quantile does: linear within the bucket that
// holds it; the largest finite bound when it falls in the last bucket.
func quantile(f *dto.MetricFamily, q float64) time.Duration {
	if f == nil || len(f.GetMetric()) == 0 {
		return 0
	}
	h := f.GetMetric()[0].GetHistogram()
	rank := q * float64(h.GetSampleCount())
	if rank == 0 {
		return 0
	}
	lower, below := 0.0, 0.0
	for _, b := range h.GetBucket() {
		upper, n := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if n >= rank {
			if n == below {
				return seconds(upper)
			}
			return seconds(lower + (upper-lower)*(rank-below)/(n-below))
		}
		lower, below = upper, n
	}
	return seconds(lower)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
