package pods

import (
	"cmp"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/parts"
)

// Labels a metric selector matches against each container: a query with
// MetricSelector `container=app` counts only the containers named app.
const (
	LabelContainer = "container"
	LabelNode      = "node"
)

// Pod is one pod's values and identity.
type Pod struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	UID       string            `json:"uid"`
	Node      string            `json:"node"`
	Labels    map[string]string `json:"labels,omitempty"`
	QOSClass  string            `json:"qos_class,omitempty"`
	OwnerKind string            `json:"owner_kind,omitempty"`
	OwnerName string            `json:"owner_name,omitempty"`
	// Containers names the containers counted, sorted; "" is the pod's
	// sandbox and whatever its status did not name.
	Containers []string `json:"containers"`
	// Requests and limits summed over the containers counted.
	RequestCPUMillis   int64 `json:"request_cpu_millis,omitempty"`
	RequestMemoryBytes int64 `json:"request_memory_bytes,omitempty"`
	LimitCPUMillis     int64 `json:"limit_cpu_millis,omitempty"`
	LimitMemoryBytes   int64 `json:"limit_memory_bytes,omitempty"`
	Values
	// RequestLatency is its containers' request latency histograms of the
	// window merged (microseconds), for a workload's quantiles over all
	// its requests.
	RequestLatency histogram.LogLinear `json:"-"`
}

// Values are the metrics of a pod or namespace and when they were current.
type Values struct {
	// Time is the sample time of the oldest value that went in.
	Time time.Time `json:"time"`
	// WindowSeconds is the longest span that the counters, ratios and
	// quantiles that went in cover.
	WindowSeconds float64 `json:"window_seconds"`
	// Metrics holds each metric with data, by name; a metric without data
	// is absent.
	Metrics map[string]float64 `json:"metrics"`
}

// Namespace is the aggregate of one namespace's pods.
type Namespace struct {
	Name string `json:"name"`
	Pods int    `json:"pods"`
	Values
}

// Query selects pods and the containers that count in them. Zero fields
// select everything.
type Query struct {
	Namespace string
	Name      string
	// Selector matches pod labels.
	Selector labels.Selector
	// MetricSelector matches container labels (LabelContainer, LabelNode).
	MetricSelector labels.Selector
}

// Group turns containers into the pods q selects, sorted by namespace and
// name. Containers outside Kubernetes are left out; a pod none of whose
// containers the metric selector matches is absent.
//
// Many containers are summed in parts on up to GOMAXPROCS goroutines, each
// taking a run of whole nodes' containers (reads give them sorted by node,
// and a pod runs on one node) and sorting its pods; the parts are then
// merged. Should a pod's containers be in two parts (containers not
// grouped by node), the pods are summed again in one part. Either way the
// answer is that of summing in one part.
func Group(cs []model.Container, q Query) []Pod {
	ps, _ := groupInParts(cs, q)
	return ps
}

// groupInParts is Group, and the number of parts it summed in.
func groupInParts(cs []model.Container, q Query) ([]Pod, int) {
	cuts := parts.Cuts(len(cs), parts.Count(len(cs), minPart), func(j int) bool { return cs[j].Node == cs[j-1].Node })
	if len(cuts) <= 2 {
		return podsOf(groupPart(cs, q)), 1
	}
	done := make([][]*group, len(cuts)-1)
	_ = parts.Run(cuts, func(i, lo, hi int) error {
		done[i] = groupPart(cs[lo:hi], q)
		return nil
	})
	gs, ok := mergeParts(done)
	if !ok {
		return podsOf(groupPart(cs, q)), 1
	}
	return podsOf(gs), len(done)
}

// minPart is the fewest containers a part sums: a goroutine costs about a
// microsecond, a container's sums about one too.
const minPart = 1024

// groupPart sums the pods of cs that q selects, sorted.
func groupPart(cs []model.Container, q Query) []*group {
	byUID := map[string]*group{}
	var gs []*group
	for i := range cs {
		c := &cs[i]
		k := c.Kubernetes
		if k == nil || !q.selects(c) {
			continue
		}
		g := byUID[k.Pod.UID]
		if g == nil {
			g = &group{Pod: Pod{Namespace: k.Pod.Namespace, Name: k.Pod.Name, UID: k.Pod.UID, Node: c.Node,
				Labels: k.Pod.Labels, QOSClass: k.Pod.QOSClass, OwnerKind: k.Pod.OwnerKind,
				OwnerName: k.Pod.OwnerName}}
			byUID[k.Pod.UID] = g
			gs = append(gs, g)
		}
		p := &g.Pod
		p.Containers = append(p.Containers, k.Container.Name)
		p.RequestCPUMillis += k.Container.RequestCPUMillis
		p.RequestMemoryBytes += k.Container.RequestMemory
		p.LimitCPUMillis += k.Container.LimitCPUMillis
		p.LimitMemoryBytes += k.Container.LimitMemory
		if c.RequestLatency.Count > 0 {
			p.RequestLatency.Add(&c.RequestLatency)
		}
		g.sums.add(c.SampleTime, c.WindowSeconds, func(m *Metric) (float64, bool) { return m.value(c) })
	}
	// Sorted by pointer: a Pod is a few hundred bytes to move.
	slices.SortFunc(gs, compareGroups)
	for _, g := range gs {
		slices.Sort(g.Containers)
		g.Values = g.sums.values()
	}
	return gs
}

// compareGroups orders pods by namespace, name and UID.
func compareGroups(a, b *group) int {
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return cmp.Compare(a.UID, b.UID)
}

// mergeParts merges sorted parts into one sorted list; false when a pod
// is in two of them.
func mergeParts(parts [][]*group) ([]*group, bool) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]*group, 0, n)
	uids := make(map[string]struct{}, n)
	for len(out) < n {
		best := -1
		for i, p := range parts {
			if len(p) > 0 && (best < 0 || compareGroups(p[0], parts[best][0]) < 0) {
				best = i
			}
		}
		g := parts[best][0]
		if _, dup := uids[g.UID]; dup {
			return nil, false
		}
		uids[g.UID] = struct{}{}
		out = append(out, g)
		parts[best] = parts[best][1:]
	}
	return out, true
}

// podsOf returns the pods summed in gs, in order.
func podsOf(gs []*group) []Pod {
	res := make([]Pod, len(gs))
	for i, g := range gs {
		res[i] = g.Pod
	}
	return res
}

// group is a pod being summed.
type group struct {
	Pod
	sums sums
}

// selects reports whether q selects container c (which has a pod).
func (q *Query) selects(c *model.Container) bool {
	p := &c.Kubernetes.Pod
	if q.Namespace != "" && p.Namespace != q.Namespace || q.Name != "" && p.Name != q.Name {
		return false
	}
	if q.Selector != nil && !q.Selector.Empty() && !q.Selector.Matches(labels.Set(p.Labels)) {
		return false
	}
	if q.MetricSelector != nil && !q.MetricSelector.Empty() &&
		!q.MetricSelector.Matches(labels.Set{LabelContainer: c.Kubernetes.Container.Name, LabelNode: c.Node}) {
		return false
	}
	return true
}

// Namespaces aggregates pods into their namespaces, sorted by name.
func Namespaces(ps []Pod) []Namespace {
	byName := map[string]int{}
	var gs []nsGroup
	for i := range ps {
		p := &ps[i]
		j, ok := byName[p.Namespace]
		if !ok {
			j = len(gs)
			byName[p.Namespace] = j
			gs = append(gs, nsGroup{Namespace: Namespace{Name: p.Namespace}})
		}
		g := &gs[j]
		g.Pods++
		g.sums.add(p.Time, p.WindowSeconds, func(m *Metric) (float64, bool) {
			v, ok := p.Metrics[m.Name]
			return v, ok
		})
	}
	res := make([]Namespace, len(gs))
	for i := range gs {
		gs[i].Values = gs[i].sums.values()
		res[i] = gs[i].Namespace
	}
	slices.SortFunc(res, func(a, b Namespace) int { return cmp.Compare(a.Name, b.Name) })
	return res
}

// nsGroup is a namespace being summed.
type nsGroup struct {
	Namespace
	sums sums
}

// sums combines members' values metric by metric, in Metrics' order, into
// one map once they are all in (a map per member's metric costs more).
type sums struct {
	time   time.Time
	window float64
	// metrics are Metrics' combined values (nil: no member yet).
	metrics []sum
}

// sum is one metric's combined value; ok once a member had it.
type sum struct {
	v  float64
	ok bool
}

// add folds one member's values in.
func (s *sums) add(t time.Time, window float64, value func(*Metric) (float64, bool)) {
	if s.time.IsZero() || t.Before(s.time) {
		s.time = t
	}
	s.window = max(s.window, window)
	if s.metrics == nil {
		s.metrics = make([]sum, len(Metrics))
	}
	for i := range Metrics {
		m := &Metrics[i]
		if m.derive != nil {
			continue
		}
		x, ok := value(m)
		if !ok {
			continue
		}
		acc := &s.metrics[i]
		acc.v, acc.ok = m.Rule.combine(acc.v, acc.ok, x), true
	}
}

// values are the combined values, with the derived metrics computed from
// them.
func (s *sums) values() Values {
	n := 0
	for _, x := range s.metrics {
		if x.ok {
			n++
		}
	}
	v := Values{Time: s.time, WindowSeconds: s.window, Metrics: make(map[string]float64, n+1)}
	for i, x := range s.metrics {
		if x.ok {
			v.Metrics[Metrics[i].Name] = x.v
		}
	}
	for i := range Metrics {
		m := &Metrics[i]
		if m.derive == nil {
			continue
		}
		if x, ok := m.derive(v.Metrics); ok {
			v.Metrics[m.Name] = x
		}
	}
	return v
}
