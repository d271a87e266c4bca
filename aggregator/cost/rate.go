package cost

import "math"

// Now is what a container uses and requests at one moment, for its cost
// rate: CPU and egress as rates over a short window (the agent's interval,
// or a reader's window), memory as a gauge in the operator's
// MemoryMeasure. Zero is no request; a negative or non-finite quantity
// counts as zero.
type Now struct {
	CPUUsageCores   float64
	CPURequestCores float64
	RAMUsageBytes   float64
	RAMRequestBytes float64
	// Egress bytes per second by destination class; loopback is free.
	EgressInternetBytesPerSecond float64
	EgressClusterBytesPerSecond  float64
}

// Hourly is a cost rate: the CPU and memory charged (or, for a node,
// offered) and their cost per hour, in the currency of the Rates it was
// priced with.
type Hourly struct {
	// CPUCores and RAMBytes are what is charged: max(request, usage).
	CPUCores float64
	RAMBytes float64
	// CPUCost, RAMCost and NetworkCost are per hour.
	CPUCost     float64
	RAMCost     float64
	NetworkCost float64
}

// TotalCost is the cost per hour, all resources.
func (h Hourly) TotalCost() float64 { return h.CPUCost + h.RAMCost + h.NetworkCost }

// Add sums two rates (a pod's containers, a node's).
func (h Hourly) Add(o Hourly) Hourly {
	return Hourly{CPUCores: h.CPUCores + o.CPUCores, RAMBytes: h.RAMBytes + o.RAMBytes,
		CPUCost: h.CPUCost + o.CPUCost, RAMCost: h.RAMCost + o.RAMCost, NetworkCost: h.NetworkCost + o.NetworkCost}
}

// HourlyRate is what a container costs per hour if it goes on as it is
// now, by the rules the history applies to each minute (docs/cost.md):
// CPU charged is max(request, usage) cores (MinuteAlloc), memory
// max(request, usage) bytes, each priced at the node's rates, and egress
// bytes per second priced per GiB by class. An hour of minutes that each
// look like n costs, in the allocation model, exactly HourlyRate(n, r).
func HourlyRate(n Now, r Rates) Hourly {
	p := pricesOf(&r)
	cpu := MinuteAlloc(quantity(n.CPUUsageCores), quantity(n.CPURequestCores))
	ram := MinuteAlloc(quantity(n.RAMUsageBytes), quantity(n.RAMRequestBytes))
	return Hourly{
		CPUCores: cpu,
		RAMBytes: ram,
		// An hour's core-seconds and byte-seconds at the per-second
		// prices the model charges them at.
		CPUCost: cpu * 3600 * p.coreSec,
		RAMCost: ram * 3600 * p.byteSec,
		NetworkCost: 3600 * (quantity(n.EgressInternetBytesPerSecond)*p.inetByte +
			quantity(n.EgressClusterBytesPerSecond)*p.clusterByte),
	}
}

// NodeRate is what a node offers (its allocatable CPU cores and memory
// bytes) and what that costs per hour at its rates, as the model prices a
// node for idle.
func NodeRate(cpuCores, ramBytes float64, r Rates) Hourly {
	cpuCores, ramBytes = quantity(cpuCores), quantity(ramBytes)
	return Hourly{CPUCores: cpuCores, RAMBytes: ramBytes,
		CPUCost: cpuCores * r.CPUCoreHour, RAMCost: ramBytes / GiB * r.RAMGiBHour}
}

// Idle is what of a node's rate (NodeRate) its containers' charges (the
// sum of their HourlyRates) leave unallocated, per resource and never below
// zero: containers charged more CPU than the node offers leave no CPU idle
// and take none from memory's. Egress is no part of a node's cost, so idle
// has none.
func (h Hourly) Idle(charged Hourly) Hourly {
	return Hourly{
		CPUCores: max(0, h.CPUCores-charged.CPUCores),
		RAMBytes: max(0, h.RAMBytes-charged.RAMBytes),
		CPUCost:  max(0, h.CPUCost-charged.CPUCost),
		RAMCost:  max(0, h.RAMCost-charged.RAMCost),
	}
}

// quantity is x, or 0 when x is negative or not a finite number.
func quantity(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 1) {
		return 0
	}
	return x
}
