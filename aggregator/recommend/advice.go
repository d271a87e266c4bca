package recommend

import (
	"math"
)

// HoursPerMonth is the month costs are projected to: 730 hours, as
// OpenCost's and the cloud providers' monthly figures use.
const HoursPerMonth = 730

// Capacity types of a node, as the history prices it.
const (
	Spot     = "spot"
	OnDemand = "on-demand"
)

// Share is a workload's cost and requests on the nodes of one capacity
// type over the window.
type Share struct {
	// Cost is what its containers cost there (CPU, memory and network),
	// without the nodes' idle.
	Cost float64 `json:"cost"`
	// CPUCost and RAMCost are the parts of Cost that a node's capacity
	// type prices (network is priced the same on every node).
	CPUCost float64 `json:"cpu_cost"`
	RAMCost float64 `json:"ram_cost"`
	// Requests answered there.
	Requests float64 `json:"requests"`
	// Hours is how long it ran there: the span of its data.
	Hours float64 `json:"hours"`
	// CostPer1kRequests is Cost per 1,000 Requests; nil without requests.
	CostPer1kRequests *float64 `json:"cost_per_1k_requests"`
}

func (s *Share) add(o *Share) {
	s.Cost += o.Cost
	s.CPUCost += o.CPUCost
	s.RAMCost += o.RAMCost
	s.Requests += o.Requests
	s.Hours = max(s.Hours, o.Hours)
}

func (s *Share) finish() {
	s.CostPer1kRequests = per1k(s.Cost, s.Requests)
}

func per1k(cost, requests float64) *float64 {
	if !(requests > 0) {
		return nil
	}
	v := cost / requests * 1000
	return &v
}

// Ratio is what a spot node costs relative to an on-demand node of the
// same instance type and region, per resource: spot price over on-demand
// price.
type Ratio struct {
	CPU, RAM float64
}

// valid reports whether both ratios are usable.
func (r Ratio) valid() bool {
	return r.CPU >= 0 && r.RAM >= 0 && !math.IsInf(r.CPU, 0) && !math.IsInf(r.RAM, 0) && !math.IsNaN(r.CPU+r.RAM)
}

// Basis says where a spot saving comes from.
const (
	// BasisMeasured: the workload ran on both, and its cost per 1,000
	// requests on each is what it measured.
	BasisMeasured = "measured"
	// BasisPrices: the workload ran on on-demand nodes only (or served no
	// requests on one of them); the saving is the pricing's spot over
	// on-demand ratio applied to its CPU and memory cost.
	BasisPrices = "prices"
)

// SpotSaving is the monthly saving of moving a workload's on-demand part
// to spot nodes, and how it was computed; ok is false when there is
// nothing to move (no cost on on-demand nodes) or nothing to compute it
// from.
//
//   - measured, when it answered requests on both: the on-demand part's
//     monthly cost × (1 − spot cost per 1k / on-demand cost per 1k). It
//     is negative when the workload did more work per dollar on on-demand
//     nodes.
//   - prices, otherwise: the on-demand part's monthly CPU cost × (1 −
//     ratio.CPU) + its monthly memory cost × (1 − ratio.RAM).
//
// The on-demand part's monthly cost is its cost over the hours it ran
// there × HoursPerMonth.
func SpotSaving(od, spot *Share, ratio Ratio) (saving float64, basis string, ok bool) {
	if !(od.Cost > 0) || !(od.Hours > 0) {
		return 0, "", false
	}
	monthly := HoursPerMonth / od.Hours
	if od.Requests > 0 && spot.Requests > 0 && spot.Hours > 0 {
		perOD, perSpot := od.Cost/od.Requests, spot.Cost/spot.Requests
		return od.Cost * monthly * (1 - perSpot/perOD), BasisMeasured, true
	}
	if !ratio.valid() {
		return 0, "", false
	}
	return (od.CPUCost*(1-ratio.CPU) + od.RAMCost*(1-ratio.RAM)) * monthly, BasisPrices, true
}

// ReplicaSaving is the monthly saving of running recommended replicas
// instead of now, at what its pods cost per hour now: costPerHour (of all
// its pods) / now × (now − recommended) × HoursPerMonth. ok is false
// unless the recommendation has fewer replicas and the cost is known.
func ReplicaSaving(now, recommended int, costPerHour float64) (float64, bool) {
	if now <= 0 || recommended >= now || recommended < 0 || !(costPerHour >= 0) || math.IsInf(costPerHour, 0) {
		return 0, false
	}
	return costPerHour / float64(now) * float64(now-recommended) * HoursPerMonth, true
}
