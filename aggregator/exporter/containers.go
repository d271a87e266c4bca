package exporter

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pennyhq/penny/aggregator/model"
)

const (
	gauge   = dto.MetricType_GAUGE
	counter = dto.MetricType_COUNTER
)

// perContainer is a family of one series per container labelled node
// and cgroup: its description, type, and each container's value (false:
// no series).
type perContainer struct {
	d     *prometheus.Desc
	t     dto.MetricType
	value func(c *model.Container) (float64, bool)
}

// containerFamilies are the families of one series per container that
// Gather builds, with the values collectContainer, collectContainerPod
// and collectContainerCosts send.
var containerFamilies = []perContainer{
	{descRSS, gauge, func(c *model.Container) (float64, bool) { return float64(c.RSSBytes), true }},
	{descPageCache, gauge, func(c *model.Container) (float64, bool) { return float64(c.PageCacheBytes), true }},
	{descHitRatio, gauge, func(c *model.Container) (float64, bool) { return optional(c.PageCacheHitRatio) }},
	{descSRTT50, gauge, func(c *model.Container) (float64, bool) { return optional(c.TCPSRTTP50Seconds) }},
	{descSRTT99, gauge, func(c *model.Container) (float64, bool) { return optional(c.TCPSRTTP99Seconds) }},
	{descConnect99, gauge, func(c *model.Container) (float64, bool) { return optional(c.TCPConnectP99Seconds) }},
	{descRequest50, gauge, func(c *model.Container) (float64, bool) { return optional(c.RequestLatencyP50Seconds) }},
	{descRequest99, gauge, func(c *model.Container) (float64, bool) { return optional(c.RequestLatencyP99Seconds) }},
	{descRetrans, counter, func(c *model.Container) (float64, bool) { return float64(c.Totals.Retransmits), true }},
	{descRequests, counter, func(c *model.Container) (float64, bool) { return float64(c.Totals.Requests), true }},
	{descRx, counter, func(c *model.Container) (float64, bool) { return float64(c.Totals.RxBytes), true }},
	{descTx, counter, func(c *model.Container) (float64, bool) { return float64(c.Totals.TxBytes), true }},
	{descPCAdded, counter, func(c *model.Container) (float64, bool) { return float64(c.Totals.PageCacheAddedBytes), true }},
	{descPCEvicted, counter, func(c *model.Container) (float64, bool) { return float64(c.Totals.PageCacheEvictedBytes), true }},
	{descCPU, counter, func(c *model.Container) (float64, bool) { return float64(c.Totals.CPUUsageUsec) / 1e6, true }},
	{descCFSPeriods, counter, func(c *model.Container) (float64, bool) { return float64(c.Totals.CPUPeriods), true }},
	{descCFSThrottledPeriods, counter, func(c *model.Container) (float64, bool) {
		return float64(c.Totals.CPUThrottledPeriods), true
	}},
	{descCFSThrottledSeconds, counter, func(c *model.Container) (float64, bool) {
		return float64(c.Totals.CPUThrottledUsec) / 1e6, true
	}},
	{descPressure[0], counter, func(c *model.Container) (float64, bool) {
		return float64(c.Totals.CPUPressureSomeUsec) / 1e6, c.PressureKnown
	}},
	{descPressure[1], counter, func(c *model.Container) (float64, bool) {
		return float64(c.Totals.MemoryPressureSomeUsec) / 1e6, c.PressureKnown
	}},
	{descPressure[2], counter, func(c *model.Container) (float64, bool) {
		return float64(c.Totals.IOPressureSomeUsec) / 1e6, c.PressureKnown
	}},
	{descWorkingSet, gauge, func(c *model.Container) (float64, bool) { return float64(c.MemoryWorkingSetBytes), true }},
	{descUpdated, gauge, func(c *model.Container) (float64, bool) {
		return float64(c.SampleTime.UnixNano()) / 1e9, !c.SampleTime.IsZero()
	}},
	{descContainerCost, gauge, func(c *model.Container) (float64, bool) { return optional(c.CostDollarsPerHour) }},
	{descRequestCPU, gauge, func(c *model.Container) (float64, bool) {
		if c.Kubernetes == nil || c.Kubernetes.Container.RequestCPUMillis <= 0 {
			return 0, false
		}
		return float64(c.Kubernetes.Container.RequestCPUMillis) / 1000, true
	}},
	{descRequestMemory, gauge, func(c *model.Container) (float64, bool) {
		if c.Kubernetes == nil || c.Kubernetes.Container.RequestMemory <= 0 {
			return 0, false
		}
		return float64(c.Kubernetes.Container.RequestMemory), true
	}},
}

func optional(v *float64) (float64, bool) {
	if v == nil {
		return 0, false
	}
	return *v, true
}

// containerScrape builds the per-container families of one scrape.
type containerScrape struct {
	cs []model.Container
	// order are the indices of the containers exposed, sorted by cgroup
	// and node (as a registry sorts series labelled cgroup and node);
	// labels are their node and cgroup label pairs, in that order.
	order  []int
	labels [][]*dto.LabelPair
	pairs  pairs
	// Label names, shared by every pair of a scrape.
	cgroup, node, class string
	// left are the series left out: label values that are not valid
	// UTF-8, or a container read twice.
	left int
}

// buildContainers returns the per-container families of cs (sorted by
// node and path, as query.Snapshot has them) sorted by name, and how
// many series it left out.
func buildContainers(cs []model.Container, tenantLabel string) ([]*dto.MetricFamily, int) {
	s := &containerScrape{cs: cs, cgroup: "cgroup", node: "node", class: "class"}
	s.sortContainers()
	s.labels = make([][]*dto.LabelPair, len(s.order))
	for k, i := range s.order {
		s.labels[k] = s.pairs.labels(s.pairs.pair(&s.cgroup, cs[i].Path), s.pairs.pair(&s.node, cs[i].Node))
	}
	out := make([]*dto.MetricFamily, 0, len(containerFamilies)+2)
	for _, f := range containerFamilies {
		out = appendFamily(out, s.family(f))
	}
	out = appendFamily(out, s.egress())
	out = appendFamily(out, s.info(tenantLabel))
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, s.left
}

func appendFamily(out []*dto.MetricFamily, mf *dto.MetricFamily) []*dto.MetricFamily {
	if mf == nil {
		return out
	}
	return append(out, mf)
}

// sortContainers orders the containers with valid labels by cgroup and
// node, once for every family; a container read twice is exposed once.
func (s *containerScrape) sortContainers() {
	s.order = make([]int, 0, len(s.cs))
	for i := range s.cs {
		if c := &s.cs[i]; utf8.ValidString(c.Path) && utf8.ValidString(c.Node) {
			s.order = append(s.order, i)
		} else {
			s.left++
		}
	}
	compare := func(i, j int) int {
		a, b := &s.cs[i], &s.cs[j]
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Node, b.Node))
	}
	slices.SortFunc(s.order, compare)
	n := len(s.order)
	s.order = slices.CompactFunc(s.order, func(i, j int) bool { return compare(i, j) == 0 })
	s.left += n - len(s.order)
}

// family builds one family of f, nil when it has no series.
func (s *containerScrape) family(f perContainer) *dto.MetricFamily {
	n := 0
	for _, i := range s.order {
		if _, ok := f.value(&s.cs[i]); ok {
			n++
		}
	}
	b := newBuilder(f.d, f.t, n)
	for k, i := range s.order {
		if v, ok := f.value(&s.cs[i]); ok {
			b.add(s.labels[k], v)
		}
	}
	return b.family()
}

// egress builds penny_container_network_egress_bytes_total: three series
// per container, labelled cgroup, class and node.
func (s *containerScrape) egress() *dto.MetricFamily {
	// The classes in the order of their names, and the bytes of each.
	classes := [...]*dto.LabelPair{s.pairs.pair(&s.class, txClasses[1]), s.pairs.pair(&s.class, txClasses[2]),
		s.pairs.pair(&s.class, txClasses[0])}
	b := newBuilder(descEgress, counter, len(classes)*len(s.order))
	for k, i := range s.order {
		t := &s.cs[i].Totals
		for j, n := range [...]uint64{t.TxClusterBytes, t.TxInternetBytes, t.TxLoopbackBytes} {
			b.add(s.pairs.labels(s.labels[k][0], classes[j], s.labels[k][1]), float64(n))
		}
	}
	sortRuns(b.mf.Metric) // a cgroup on several nodes
	return b.family()
}

// info builds penny_container_info: one series per container in a pod,
// labelled with its pod, container, owner and tenant.
func (s *containerScrape) info(tenantLabel string) *dto.MetricFamily {
	n := 0
	for _, i := range s.order {
		if s.cs[i].Kubernetes != nil {
			n++
		}
	}
	b := newBuilder(descContainerInfo, gauge, n)
	names := [...]string{"container", "namespace", "owner_kind", "owner_name", "pod", "tenant"}
	for k, i := range s.order {
		k8s := s.cs[i].Kubernetes
		if k8s == nil {
			continue
		}
		p := &k8s.Pod
		values := [...]string{k8s.Container.Name, p.Namespace, p.OwnerKind, p.OwnerName, p.Name,
			tenant(p.Labels, p.Namespace, tenantLabel)}
		if !validUTF8(values[:]) {
			s.left++
			continue
		}
		var lps [len(names)]*dto.LabelPair
		for j, v := range values {
			lps[j] = s.pairs.pair(&names[j], v)
		}
		// Sorted by name: cgroup, container, namespace, node, owner_kind,
		// owner_name, pod, tenant. Labels that sort before node: a cgroup
		// on several nodes is sorted again below.
		b.add(s.pairs.labels(s.labels[k][0], lps[0], lps[1], s.labels[k][1], lps[2], lps[3], lps[4], lps[5]), 1)
	}
	sortRuns(b.mf.Metric) // a cgroup on several nodes
	return b.family()
}

func validUTF8(vs []string) bool {
	for _, v := range vs {
		if !utf8.ValidString(v) {
			return false
		}
	}
	return true
}
