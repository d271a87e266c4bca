package pricing

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Source says where prices come from.
type Source string

// Sources of prices.
const (
	// SourceDefault: OpenCost's defaults, no pricing file.
	SourceDefault Source = "default"
	// SourceFile: the pricing file's default prices (which may leave some
	// at OpenCost's).
	SourceFile Source = "file"
	// SourceFlags: on-demand prices given on the command line
	// (penny local --price-cpu-core-hour, --price-memory-gib-hour).
	SourceFlags Source = "flags"
	// SourceNodePrice: a whole-node price of the pricing file, split.
	SourceNodePrice Source = "node-price"
)

// Facts are what prices one node: what Kubernetes says of it (or, without
// Kubernetes, the flags or the pricing file).
type Facts struct {
	// InstanceType is node.kubernetes.io/instance-type; Region and Zone
	// are topology.kubernetes.io/region and zone. The zone prices nothing
	// today.
	InstanceType string
	Region       string
	Zone         string
	// CapacityType is spot, on-demand or unknown (also ""), which prices
	// as on-demand.
	CapacityType CapacityType
	// CPUCores and MemoryBytes are the node's allocatable CPU and memory.
	CPUCores    float64
	MemoryBytes int64
	// CapacityCPUCores and CapacityMemoryBytes are the node's capacity
	// (status.capacity), which OpenCost splits a node price by; where they
	// are zero, the allocatable figures stand in for them.
	CapacityCPUCores    float64
	CapacityMemoryBytes int64
}

// Rates are the prices of one node.
type Rates struct {
	// Currency is the ISO 4217 code of every price.
	Currency string
	// CPUCoreHour prices a core-hour of CPU, RAMGiBHour a GiB-hour of
	// memory.
	CPUCoreHour float64
	RAMGiBHour  float64
	// EgressInternetGiB and EgressClusterGiB price a GiB sent to the
	// internet and within the cluster.
	EgressInternetGiB float64
	EgressClusterGiB  float64
	// Spot says the node is a spot node.
	Spot bool
	// Source says where CPUCoreHour and RAMGiBHour come from.
	Source Source
}

// Overrides replace the on-demand default prices, whatever the pricing
// file says (penny local's --price-cpu-core-hour and
// --price-memory-gib-hour). Nil leaves a price as it is.
type Overrides struct {
	CPUCoreHour *float64
	RAMGiBHour  *float64
}

// Validate checks the overrides: finite, not negative.
func (o Overrides) Validate() error {
	var errs []error
	if o.CPUCoreHour != nil {
		if err := validPrice(*o.CPUCoreHour); err != nil {
			errs = append(errs, fmt.Errorf("%w: CPU core-hour price: %v", ErrInvalid, err))
		}
	}
	if o.RAMGiBHour != nil {
		if err := validPrice(*o.RAMGiBHour); err != nil {
			errs = append(errs, fmt.Errorf("%w: memory GiB-hour price: %v", ErrInvalid, err))
		}
	}
	return errors.Join(errs...)
}

func (o Overrides) set() bool { return o.CPUCoreHour != nil || o.RAMGiBHour != nil }

// Pricing is a resolved, valid set of prices. It never changes, and any
// number of goroutines may use it.
type Pricing struct {
	// file is completed and valid, with every default price set and the
	// overrides applied.
	file      *File
	source    Source
	overrides Overrides
	nodes     map[nodeKey]float64
	// cpu, ram, ... are the default prices, resolved.
	cpu, ram, spotCPU, spotRAM, egressInternet, egressCluster float64
}

// Default is OpenCost's default prices.
func Default() *Pricing {
	p, err := New(nil, Overrides{})
	if err != nil { // OpenCost's defaults are valid
		return nil
	}
	return p
}

// Parse decodes a pricing file and resolves it (Decode, then New).
func Parse(data []byte, o Overrides) (*Pricing, error) {
	f, err := Decode(data)
	if err != nil {
		return nil, err
	}
	return New(f, o)
}

// New resolves a pricing file, or OpenCost's defaults for a nil one, with
// the overrides. It completes and validates a copy of f: f is unchanged.
func New(f *File, o Overrides) (*Pricing, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	p := &Pricing{source: SourceFile, overrides: o}
	if f == nil {
		p.source = SourceDefault
		f = &File{APIVersion: APIVersion, Kind: Kind}
	}
	f = f.clone()
	f.Complete()
	if o.CPUCoreHour != nil {
		f.Defaults.CPUCoreHour = ptr(*o.CPUCoreHour)
	}
	if o.RAMGiBHour != nil {
		f.Defaults.RAMGiBHour = ptr(*o.RAMGiBHour)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	for _, d := range f.Defaults.fields() {
		if *d.v == nil {
			*d.v = ptr(d.def)
		}
	}
	p.file = f
	d := f.Defaults
	p.cpu, p.ram, p.spotCPU, p.spotRAM = *d.CPUCoreHour, *d.RAMGiBHour, *d.SpotCPUCoreHour, *d.SpotRAMGiBHour
	p.egressInternet, p.egressCluster = *d.EgressInternetGiB, *d.EgressClusterGiB
	p.nodes = make(map[nodeKey]float64, len(f.Nodes))
	for _, n := range f.Nodes {
		p.nodes[keyOf(n.InstanceType, n.Region, n.CapacityType)] = *n.HourlyPrice
	}
	return p, nil
}

// Source is where the prices come from as a whole: the file if there is
// one, else the flags if they set a price, else OpenCost's defaults.
func (p *Pricing) Source() Source {
	if p.source == SourceDefault && p.overrides.set() {
		return SourceFlags
	}
	return p.source
}

// Currency is the ISO 4217 code of every price.
func (p *Pricing) Currency() string { return p.file.Currency }

// Effective returns the prices in force as a complete pricing file: every
// default price set (the file's, the flags', or OpenCost's) and every node
// entry with its capacity type. It is a copy.
func (p *Pricing) Effective() *File { return p.file.clone() }

// Rates returns the prices of the node f describes.
//
// A node whose instance type (ignoring case) and capacity type (spot, or
// on-demand for on-demand and unknown) match a whole-node price of the
// file, in its region or else in an entry without a region, gets that price
// split into CPU and memory prices the way OpenCost splits one (see split).
// Any other node, or one whose CPU and memory are unknown so that the price
// cannot be split, gets the default prices: the spot ones on a spot node.
func (p *Pricing) Rates(f Facts) Rates {
	r := Rates{Currency: p.file.Currency, EgressInternetGiB: p.egressInternet, EgressClusterGiB: p.egressCluster,
		Spot: f.CapacityType == CapacitySpot}
	capacity := CapacityOnDemand
	if r.Spot {
		capacity = CapacitySpot
	}
	if price, ok := p.nodePrice(f.InstanceType, f.Region, capacity); ok {
		cores, mem := f.CapacityCPUCores, f.CapacityMemoryBytes
		if cores <= 0 || math.IsNaN(cores) || math.IsInf(cores, 0) {
			cores = f.CPUCores
		}
		if mem <= 0 {
			mem = f.MemoryBytes
		}
		if cpu, ram, ok := split(price, cores, mem, p.cpu, p.ram); ok {
			r.CPUCoreHour, r.RAMGiBHour, r.Source = cpu, ram, SourceNodePrice
			return r
		}
	}
	switch {
	case r.Spot:
		r.CPUCoreHour, r.RAMGiBHour, r.Source = p.spotCPU, p.spotRAM, p.source
	case p.overrides.set():
		r.CPUCoreHour, r.RAMGiBHour, r.Source = p.cpu, p.ram, SourceFlags
	default:
		r.CPUCoreHour, r.RAMGiBHour, r.Source = p.cpu, p.ram, p.source
	}
	return r
}

// nodePrice finds the whole-node price of an instance type in a region, or
// in any region.
func (p *Pricing) nodePrice(instanceType, region string, c CapacityType) (float64, bool) {
	if strings.TrimSpace(instanceType) == "" || len(p.nodes) == 0 {
		return 0, false
	}
	if region != "" {
		if v, ok := p.nodes[keyOf(instanceType, region, c)]; ok {
			return v, true
		}
	}
	v, ok := p.nodes[keyOf(instanceType, "", c)]
	return v, ok
}

// gib is a GiB in bytes.
const gib = 1 << 30

// split divides a node's hourly price into a price per core-hour and one
// per GiB-hour, as OpenCost's GetNodeCost does for a node price without a
// RAM price (pkg/costmodel/costmodel.go): memory's share and CPU's are in
// the ratio of the default CPU and RAM prices, weighted by the node's
// cores (whole cores, rounded up, as OpenCost reads status.capacity's
// Quantity.Value()) and GiB:
//
//	ratio    = defaultCPU / defaultRAM
//	ramPrice = nodePrice / (cores × ratio + GiB)
//	cpuPrice = ramPrice × ratio
//
// so that cores × cpuPrice + GiB × ramPrice = nodePrice. With a default RAM
// price of zero the whole price goes to CPU (nodePrice / cores), as in
// OpenCost. ok is false when the node's resources give the split nothing to
// divide by (no cores and no memory, say), where OpenCost would compute an
// infinite price: the caller then uses the default prices.
func split(nodePrice, cores float64, memBytes int64, defaultCPU, defaultRAM float64) (cpuPrice, ramPrice float64, ok bool) {
	if cores < 0 || math.IsNaN(cores) || math.IsInf(cores, 0) {
		cores = 0
	}
	cores = math.Ceil(cores)
	ramGiB := max(float64(memBytes), 0) / gib
	if defaultRAM == 0 {
		if cores == 0 {
			return 0, 0, false
		}
		return nodePrice / cores, 0, true
	}
	ratio := defaultCPU / defaultRAM
	weight := cores*ratio + ramGiB
	if weight == 0 || math.IsNaN(weight) || math.IsInf(weight, 0) {
		return 0, 0, false
	}
	ramPrice = nodePrice / weight
	return ramPrice * ratio, ramPrice, true
}
