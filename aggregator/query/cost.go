package query

import (
	"fmt"
	"slices"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/usage"
)

// Prices give a node's prices from its facts: a *pricing.Watcher (the
// prices in force, following the pricing file) or a *pricing.Pricing.
type Prices interface {
	Rates(pricing.Facts) pricing.Rates
}

// NodeCost is a node's cost rate, as GET /v1/nodes shows it beside its
// facts.
type NodeCost struct {
	// Rates are the node's prices: from its facts and the pricing in force.
	Rates NodeRates `json:"rates"`
	// CostDollarsPerHour is what the node offers its containers costs per
	// hour at its rates: its allocatable CPU and memory, or without them
	// (outside Kubernetes) its capacity; null when neither is known.
	CostDollarsPerHour *float64 `json:"cost_dollars_per_hour"`
	// AllocatedCostDollarsPerHour is the CPU and memory its containers
	// are charged per hour (egress is not the node's): its pods'
	// containers on a node that runs pods, every cgroup elsewhere.
	AllocatedCostDollarsPerHour float64 `json:"allocated_cost_dollars_per_hour"`
	// IdleCostDollarsPerHour is the cost minus the allocated, per resource
	// and never below zero; null without a cost.
	IdleCostDollarsPerHour *float64 `json:"idle_cost_dollars_per_hour"`
	// Warning says what was priced on a guess: a node without facts at the
	// default prices, or one whose CPU and memory are unknown.
	Warning string `json:"warning,omitempty"`
	// Offered and Idle are the cost and the idle with their parts, for
	// readers in Go; zero without a cost.
	Offered cost.Hourly `json:"-"`
	Idle    cost.Hourly `json:"-"`
}

// NodeRates are a node's prices, per hour and per GiB, in the currency of
// the answer.
type NodeRates struct {
	CPUCoreHour       float64 `json:"cpu_core_hour"`
	RAMGiBHour        float64 `json:"ram_gib_hour"`
	EgressInternetGiB float64 `json:"egress_internet_gib"`
	EgressClusterGiB  float64 `json:"egress_cluster_gib"`
	Spot              bool    `json:"spot"`
	// Source says where the CPU and memory prices come from: default
	// (OpenCost's), file, flags or node-price.
	Source string `json:"source"`
}

// PricingFacts are a node's facts as package pricing prices them.
func PricingFacts(f *nodemeta.Facts) pricing.Facts {
	return pricing.Facts{InstanceType: f.InstanceType, Region: f.Region, Zone: f.Zone,
		CapacityType:     pricing.CapacityType(f.CapacityType),
		CPUCores:         float64(f.AllocatableCPUMillis) / 1000,
		MemoryBytes:      f.AllocatableMemoryBytes,
		CapacityCPUCores: float64(f.CapacityCPUMillis) / 1000, CapacityMemoryBytes: f.CapacityMemoryBytes}
}

// CostRates are a node's prices as package cost takes them.
func CostRates(r pricing.Rates) cost.Rates {
	return cost.Rates{Currency: r.Currency, CPUCoreHour: r.CPUCoreHour, RAMGiBHour: r.RAMGiBHour,
		EgressInternetGiB: r.EgressInternetGiB, EgressClusterGiB: r.EgressClusterGiB, Spot: r.Spot, Source: string(r.Source)}
}

// Demand is what a cgroup uses and requests now, as its cost rate charges
// it: CPU cores and egress bytes per second over the window its counters
// cover, memory in measure m, and the requests of its Kubernetes container
// (k; nil outside Kubernetes, where usage alone is charged). ok is false
// without a window to take rates over.
func Demand(c *usage.Cgroup, windowSeconds float64, k *model.Kube, m cost.MemoryMeasure) (n cost.Now, ok bool) {
	if !(windowSeconds > 0) {
		return cost.Now{}, false
	}
	n = cost.Now{
		CPUUsageCores:                c.CPUUsageSeconds / windowSeconds,
		RAMUsageBytes:                float64(c.RSSBytes),
		EgressInternetBytesPerSecond: float64(c.NetTxInternetBytes) / windowSeconds,
		EgressClusterBytesPerSecond:  float64(c.NetTxClusterBytes) / windowSeconds,
	}
	switch m {
	case cost.MemoryRSSPageCache:
		n.RAMUsageBytes += float64(c.PageCacheBytes)
	case cost.MemoryWorkingSet:
		n.RAMUsageBytes = float64(c.MemoryWorkingSetBytes)
	}
	if k != nil {
		n.CPURequestCores = float64(k.Container.RequestCPUMillis) / 1000
		n.RAMRequestBytes = float64(k.Container.RequestMemory)
	}
	return n, true
}

// Price sets a cgroup's cost rate at rates r (null without a window) and
// returns it.
func Price(c *usage.Cgroup, windowSeconds float64, k *model.Kube, m cost.MemoryMeasure, r cost.Rates) (cost.Hourly, bool) {
	n, ok := Demand(c, windowSeconds, k, m)
	if !ok {
		c.ClearCost()
		return cost.Hourly{}, false
	}
	h := cost.HourlyRate(n, r)
	c.SetCost(h.CPUCost, h.RAMCost, h.NetworkCost)
	return h, true
}

// nodePricing is one node's facts and prices during a read.
type nodePricing struct {
	name  string
	facts nodemeta.Facts
	known bool // the node has facts
	rates cost.Rates
	// pods: the node runs pods, so only its pods' containers are
	// allocated from what it offers; its other cgroups (the kubelet, the
	// container runtime, systemd units) run in the capacity the kubelet
	// reserves. The allocation model applies the same rule.
	pods      bool
	allocated cost.Hourly
}

// price prices the containers of a read and the nodes that have an agent
// record, and puts the answer together.
func (r *Reader) price(index uint64, agents map[string]*model.Agent, cs []model.Container) *Snapshot {
	out := &Snapshot{Index: index, Currency: r.cfg.Prices.Rates(pricing.Facts{}).Currency, Containers: cs, Nodes: []Node{}}
	byNode := map[string]*nodePricing{}
	var last *nodePricing // the containers come by node: most lookups are the last one's
	nodeOf := func(name string) *nodePricing {
		if last != nil && last.name == name {
			return last
		}
		if np := byNode[name]; np != nil {
			last = np
			return np
		}
		np := &nodePricing{name: name}
		last = np
		if a := agents[name]; a != nil {
			np.facts, _ = nodemeta.Decode(a.Meta)
		}
		np.known = np.facts.Known()
		np.rates = CostRates(r.cfg.Prices.Rates(PricingFacts(&np.facts)))
		byNode[name] = np
		if !np.known {
			out.Warnings = append(out.Warnings, fmt.Sprintf("node %s has no facts: its containers are priced at the default prices", name))
		}
		return np
	}
	for i := range cs {
		if c := &cs[i]; c.Kubernetes != nil {
			nodeOf(c.Node).pods = true
		}
	}
	nps := make([]*nodePricing, len(cs))
	for i := range cs {
		nps[i] = nodeOf(cs[i].Node)
	}
	// The containers are priced in parts, and their rates added to their
	// nodes' in order: the same sums as one by one.
	type priced struct {
		h  cost.Hourly
		ok bool
	}
	hs := make([]priced, len(cs))
	_ = inParts(len(cs), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			c := &cs[i]
			hs[i].h, hs[i].ok = Price(&c.Cgroup, c.WindowSeconds, c.Kubernetes, r.cfg.MemoryMeasure, nps[i].rates)
		}
		return nil
	})
	for i := range cs {
		if np := nps[i]; hs[i].ok && (!np.pods || cs[i].Kubernetes != nil) {
			np.allocated = np.allocated.Add(hs[i].h)
		}
	}
	names := make([]string, 0, len(agents))
	for name := range agents {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		n := NodeOf(name, agents[name])
		np := nodeOf(name)
		n.NodeCost = nodeCost(np)
		out.Nodes = append(out.Nodes, n)
	}
	return out
}

// nodeCost is a node's cost rate: what it offers (allocatable, else
// capacity, per resource) at its rates, and the idle its containers leave.
func nodeCost(np *nodePricing) NodeCost {
	r := &np.rates
	nc := NodeCost{Rates: NodeRates{CPUCoreHour: r.CPUCoreHour, RAMGiBHour: r.RAMGiBHour, EgressInternetGiB: r.EgressInternetGiB,
		EgressClusterGiB: r.EgressClusterGiB, Spot: r.Spot, Source: r.Source},
		AllocatedCostDollarsPerHour: np.allocated.CPUCost + np.allocated.RAMCost}
	f := &np.facts
	cpu, mem := f.AllocatableCPUMillis, f.AllocatableMemoryBytes
	if cpu <= 0 {
		cpu = f.CapacityCPUMillis
	}
	if mem <= 0 {
		mem = f.CapacityMemoryBytes
	}
	switch {
	case !np.known:
		nc.Warning = "no facts: priced at the default prices, without a cost or idle"
	case cpu <= 0 && mem <= 0:
		nc.Warning = "neither its CPU nor its memory is known: no cost or idle"
	}
	if cpu <= 0 && mem <= 0 {
		return nc
	}
	nc.Offered = cost.NodeRate(float64(cpu)/1000, float64(mem), *r)
	nc.Idle = nc.Offered.Idle(np.allocated)
	total, idle := nc.Offered.TotalCost(), nc.Idle.TotalCost()
	nc.CostDollarsPerHour, nc.IdleCostDollarsPerHour = &total, &idle
	return nc
}
