package exporter

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// builder builds one metric family directly, as a registry would gather
// it (the metrics of one family in one scrape), from slabs allocated once
// per family instead of several allocations per series.
type builder struct {
	mf       *dto.MetricFamily
	metrics  []dto.Metric
	gauges   []dto.Gauge
	counters []dto.Counter
	values   []float64
}

// newBuilder returns a builder of up to n series of the family described
// by d (a description of about) of type t.
func newBuilder(d *prometheus.Desc, t dto.MetricType, n int) *builder {
	f := about[d]
	b := &builder{mf: &dto.MetricFamily{Name: new(f.name), Help: new(f.help), Type: new(t), Metric: make([]*dto.Metric, 0, n)},
		metrics: make([]dto.Metric, n), values: make([]float64, n)}
	if t == dto.MetricType_COUNTER {
		b.counters = make([]dto.Counter, n)
	} else {
		b.gauges = make([]dto.Gauge, n)
	}
	return b
}

// add adds the series of labels (sorted by name, as a constant metric's)
// with value v.
func (b *builder) add(labels []*dto.LabelPair, v float64) {
	k := len(b.mf.Metric)
	m := &b.metrics[k]
	m.Label = labels
	b.values[k] = v
	if b.counters != nil {
		b.counters[k].Value = &b.values[k]
		m.Counter = &b.counters[k]
	} else {
		b.gauges[k].Value = &b.values[k]
		m.Gauge = &b.gauges[k]
	}
	b.mf.Metric = append(b.mf.Metric, m)
}

// family returns the family built, nil when it has no series (a registry
// leaves such a family out).
func (b *builder) family() *dto.MetricFamily {
	if len(b.mf.Metric) == 0 {
		return nil
	}
	return b.mf
}

// compareMetrics orders series as a registry sorts them: by their label
// values in the order of the label names.
func compareMetrics(a, b *dto.Metric) int {
	if c := cmp.Compare(len(a.Label), len(b.Label)); c != 0 {
		return c
	}
	for i, p := range a.Label {
		if c := cmp.Compare(p.GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return 0
}

// sortRuns sorts each run of series with the same first label value; the
// runs themselves are in order already (built in the order of that
// label), so that the family ends up as a registry sorts it.
func sortRuns(ms []*dto.Metric) {
	for i := 0; i < len(ms); {
		j := i + 1
		for j < len(ms) && ms[j].Label[0].GetValue() == ms[i].Label[0].GetValue() {
			j++
		}
		if run := ms[i:j]; len(run) > 1 && !slices.IsSortedFunc(run, compareMetrics) {
			slices.SortFunc(run, compareMetrics)
		}
		i = j
	}
}

// slab is how many label pairs pairs allocates at once.
const slab = 4096

// pairs allocates the label pairs of a scrape in slabs, and their
// pointers in slices that share one array.
type pairs struct {
	pairs  []dto.LabelPair
	values []string
	ptrs   []*dto.LabelPair
}

// pair returns a label pair of name and value.
func (p *pairs) pair(name *string, value string) *dto.LabelPair {
	if len(p.pairs) == 0 {
		p.pairs, p.values = make([]dto.LabelPair, slab), make([]string, slab)
	}
	lp, v := &p.pairs[0], &p.values[0]
	p.pairs, p.values = p.pairs[1:], p.values[1:]
	*v = value
	lp.Name, lp.Value = name, v
	return lp
}

// labels returns the label pairs lps in a slice of their own length and
// capacity.
func (p *pairs) labels(lps ...*dto.LabelPair) []*dto.LabelPair {
	if len(p.ptrs) < len(lps) {
		p.ptrs = make([]*dto.LabelPair, max(slab, len(lps)))
	}
	out := p.ptrs[:len(lps):len(lps)]
	copy(out, lps)
	p.ptrs = p.ptrs[len(lps):]
	return out
}
