package cost

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

// benchData is 7 days of hourly usage for pods containers (one per pod) in
// 50 namespaces on pods/50 nodes, half of them spot.
func benchData(pods int) ([]Series, []NodeUsage, time.Time) {
	start := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	const hours = 7 * 24
	nnodes := max(pods/50, 1)
	var nodes []NodeUsage
	for n := range nnodes {
		r := onDemand
		if n%2 == 1 {
			r = spotRate
		}
		for h := range hours {
			nodes = append(nodes, nodeSpan(fmt.Sprintf("node-%03d", n), start.Add(time.Duration(h)*time.Hour), time.Hour, 16, 64, r))
		}
	}
	series := make([]Series, pods)
	for p := range pods {
		rows := make([]Usage, hours)
		for h := range hours {
			use := float64(p%7) * 0.1
			rows[h] = Usage{
				Start: start.Add(time.Duration(h) * time.Hour), End: start.Add(time.Duration(h+1) * time.Hour), Seconds: 3600,
				UsageCoreSeconds: use * 3600, RequestCoreSeconds: 0.25 * 3600, AllocCoreSeconds: max(use, 0.25) * 3600,
				UsageByteSeconds: 300e6 * 3600, RequestByteSeconds: 256e6 * 3600, AllocByteSeconds: 300e6 * 3600,
				EgressInternetBytes: 1e6, EgressClusterBytes: 5e6,
			}
		}
		ns := fmt.Sprintf("ns-%02d", p%50)
		series[p] = Series{
			Container: Container{Node: fmt.Sprintf("node-%03d", p%nnodes), Namespace: ns, Pod: fmt.Sprintf("app-%d-7d9f8c6b5-x%d", p/10, p),
				Container: "app", ControllerKind: "deployment", Controller: fmt.Sprintf("app-%d", p/10),
				Labels: map[string]string{"app": fmt.Sprintf("app-%d", p/10), "team": fmt.Sprintf("team-%d", p%13), "pod-template-hash": "7d9f8c6b5"}},
			Usage: rows,
		}
	}
	return series, nodes, start
}

// BenchmarkCompute prices 7 days of hourly usage of 5,000 pods, the pure
// compute behind GET /v1/allocation?window=7d (the target for the
// whole endpoint is a p99 of 100 ms for aggregate=namespace).
func BenchmarkCompute(b *testing.B) {
	series, nodes, start := benchData(5000)
	window := start.Format(time.RFC3339) + "," + start.Add(7*24*time.Hour).Format(time.RFC3339)
	m, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	spans := 0
	for i := range series {
		spans += len(series[i].Usage)
	}
	for _, bc := range []struct{ name, params string }{
		{"namespace", "aggregate=namespace"},
		{"pod", "aggregate=pod"},
		{"namespace/shareIdle", "aggregate=namespace&shareIdle=true"},
		{"namespace/step=1d", "aggregate=namespace&step=1d"},
		{"namespace/filter", `aggregate=namespace&filter=namespace:"ns-01","ns-02"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v, err := url.ParseQuery(bc.params)
			if err != nil {
				b.Fatal(err)
			}
			v.Set("window", window)
			q, err := ParseQuery(v, start.Add(8*24*time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Compute(&q, series, nodes); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(spans), "ns/span")
		})
	}
}
