package pricing

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

const gibBytes = 1 << 30

// ratesFile has default prices of its own, whole-node prices for m5.xlarge
// (in us-east-1, in any region, and spot in any region) and for c5.2xlarge
// in eu-west-1 only.
const ratesFile = `
apiVersion: penny.dev/v1
kind: Pricing
defaults:
  cpuCoreHour: 0.04
  ramGiBHour: 0.005
  spotCPUCoreHour: 0.01
  spotRAMGiBHour: 0.002
  egressInternetGiB: 0.09
  egressClusterGiB: 0.01
nodes:
  - instanceType: m5.xlarge
    region: us-east-1
    hourlyPrice: 0.192
  - instanceType: m5.xlarge
    hourlyPrice: 0.2
  - instanceType: m5.xlarge
    capacityType: spot
    hourlyPrice: 0.08
  - instanceType: c5.2xlarge
    region: eu-west-1
    capacityType: on-demand
    hourlyPrice: 0.384
`

// defaultSplitFile has OpenCost's default prices (none set) and one node
// price, so that the split uses OpenCost's default ratio.
const defaultSplitFile = `
apiVersion: penny.dev/v1
kind: Pricing
nodes:
  - {instanceType: m5.xlarge, region: us-east-1, hourlyPrice: 0.192}
  - {instanceType: m5.xlarge, hourlyPrice: 0.2}
  - {instanceType: m5.xlarge, capacityType: spot, hourlyPrice: 0.08}
`

func mustParse(t *testing.T, data string, o Overrides) *Pricing {
	t.Helper()
	p, err := Parse([]byte(data), o)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// m5 is an m5.xlarge: 4 cores, 16 GiB.
func m5(region string, c CapacityType) Facts {
	return Facts{InstanceType: "m5.xlarge", Region: region, Zone: region + "a", CapacityType: c,
		CPUCores: 3.92, MemoryBytes: 15 * gibBytes, CapacityCPUCores: 4, CapacityMemoryBytes: 16 * gibBytes}
}

// TestRates checks the prices of nodes against hand computations (to a
// billionth of a dollar per hour; the split's by Python's decimal module to
// 40 digits: ratio = cpu/ram, ramPrice = nodePrice/(cores*ratio + GiB),
// cpuPrice = ramPrice*ratio).
func TestRates(t *testing.T) {
	defaults := Default()
	file := mustParse(t, ratesFile, Overrides{})
	split := mustParse(t, defaultSplitFile, Overrides{})
	cpu05 := 0.05
	flags := mustParse(t, defaultSplitFile, Overrides{CPUCoreHour: &cpu05})
	flagsOnly, err := New(nil, Overrides{CPUCoreHour: &cpu05})
	if err != nil {
		t.Fatal(err)
	}
	noRAMPrice := mustParse(t, "apiVersion: penny.dev/v1\nkind: Pricing\ndefaults: {ramGiBHour: 0}\nnodes: [{instanceType: m5.xlarge, hourlyPrice: 0.192}]\n", Overrides{})

	tests := []struct {
		name     string
		p        *Pricing
		facts    Facts
		cpu, ram float64
		spot     bool
		source   Source
		egress   [2]float64 // internet, cluster
	}{
		{"no file, on-demand", defaults, m5("us-east-1", CapacityOnDemand), 0.031611, 0.004237, false, SourceDefault, [2]float64{0.12, 0}},
		{"no file, spot", defaults, m5("us-east-1", CapacitySpot), 0.006655, 0.000892, true, SourceDefault, [2]float64{0.12, 0}},
		{"no file, unknown capacity type is on-demand", defaults, m5("", CapacityUnknown), 0.031611, 0.004237, false, SourceDefault, [2]float64{0.12, 0}},
		{"no file, no facts at all", defaults, Facts{}, 0.031611, 0.004237, false, SourceDefault, [2]float64{0.12, 0}},

		{"file defaults: unknown instance type", file, Facts{InstanceType: "t3.micro", Region: "us-east-1", CPUCores: 2, MemoryBytes: gibBytes},
			0.04, 0.005, false, SourceFile, [2]float64{0.09, 0.01}},
		{"file defaults: spot without a spot entry", file, Facts{InstanceType: "c5.2xlarge", Region: "eu-west-1", CapacityType: CapacitySpot, CPUCores: 8, MemoryBytes: 16 * gibBytes},
			0.01, 0.002, true, SourceFile, [2]float64{0.09, 0.01}},
		{"file defaults: on-demand entry in another region only", file, Facts{InstanceType: "c5.2xlarge", Region: "us-east-1", CPUCores: 8, MemoryBytes: 16 * gibBytes},
			0.04, 0.005, false, SourceFile, [2]float64{0.09, 0.01}},

		// OpenCost's default ratio 0.031611/0.004237 = 7.460703327826292.
		// 0.192 / (4*7.460703327826292 + 16) = 0.004188224633950452.
		{"node price, exact region", split, m5("us-east-1", CapacityOnDemand), 0.031247101464198, 0.004188224633950, false, SourceNodePrice, [2]float64{0.12, 0}},
		{"node price, exact region, unknown capacity type", split, m5("us-east-1", ""), 0.031247101464198, 0.004188224633950, false, SourceNodePrice, [2]float64{0.12, 0}},
		{"node price, instance type in another case", split, Facts{InstanceType: "M5.XLarge", Region: "US-East-1", CapacityCPUCores: 4, CapacityMemoryBytes: 16 * gibBytes},
			0.031247101464198, 0.004188224633950, false, SourceNodePrice, [2]float64{0.12, 0}},
		// 0.2 / 45.84281331130517 = 0.004362733993698.
		{"node price, region wildcard", split, m5("eu-west-1", CapacityOnDemand), 0.032549064025206, 0.004362733993698, false, SourceNodePrice, [2]float64{0.12, 0}},
		{"node price, no region: the wildcard", split, m5("", CapacityOnDemand), 0.032549064025206, 0.004362733993698, false, SourceNodePrice, [2]float64{0.12, 0}},
		// The spot price, split by the on-demand default ratio as OpenCost
		// does: 0.08 / 45.84281331130517 = 0.001745093597479.
		{"node price, spot", split, m5("us-east-1", CapacitySpot), 0.013019625610083, 0.001745093597479, true, SourceNodePrice, [2]float64{0.12, 0}},
		// Allocatable only: 3.92 cores count as 4 (rounded up), 15 GiB:
		// 0.192 / (4*7.460703327826292 + 15) = 0.004281622534855.
		{"node price, allocatable only", split, Facts{InstanceType: "m5.xlarge", Region: "us-east-1", CPUCores: 3.92, MemoryBytes: 15 * gibBytes},
			0.031943915494292, 0.004281622534855, false, SourceNodePrice, [2]float64{0.12, 0}},
		{"node price, memory unknown: all of it to CPU", split, Facts{InstanceType: "m5.xlarge", Region: "us-east-1", CPUCores: 4},
			0.048, 0.006433709784569, false, SourceNodePrice, [2]float64{0.12, 0}},
		{"node price, CPU and memory unknown: defaults", split, Facts{InstanceType: "m5.xlarge", Region: "us-east-1"},
			0.031611, 0.004237, false, SourceFile, [2]float64{0.12, 0}},
		{"node price, spot, CPU and memory unknown: spot defaults", split, Facts{InstanceType: "m5.xlarge", CapacityType: CapacitySpot},
			0.006655, 0.000892, true, SourceFile, [2]float64{0.12, 0}},
		// The file's own defaults give the ratio 0.04/0.005 = 8:
		// 0.384 / (8*8 + 16) = 0.0048, 0.0048*8 = 0.0384.
		{"node price, the file's ratio", file, Facts{InstanceType: "c5.2xlarge", Region: "eu-west-1", CapacityCPUCores: 8, CapacityMemoryBytes: 16 * gibBytes},
			0.0384, 0.0048, false, SourceNodePrice, [2]float64{0.09, 0.01}},
		// 0.192 / (4*8 + 16) = 0.004, 0.004*8 = 0.032.
		{"node price, the file's ratio, m5", file, m5("us-east-1", CapacityOnDemand), 0.032, 0.004, false, SourceNodePrice, [2]float64{0.09, 0.01}},
		{"no RAM price: the whole node price to CPU", noRAMPrice, m5("us-east-1", CapacityOnDemand), 0.048, 0, false, SourceNodePrice, [2]float64{0.12, 0}},

		{"flags: on-demand", flagsOnly, Facts{InstanceType: "t3.micro"}, 0.05, 0.004237, false, SourceFlags, [2]float64{0.12, 0}},
		{"flags: spot keeps the spot defaults", flagsOnly, Facts{CapacityType: CapacitySpot}, 0.006655, 0.000892, true, SourceDefault, [2]float64{0.12, 0}},
		{"flags over a file: on-demand", flags, Facts{InstanceType: "t3.micro"}, 0.05, 0.004237, false, SourceFlags, [2]float64{0.12, 0}},
		// The flag's CPU price changes the ratio: 0.05/0.004237:
		// 0.192 / (4*11.800802454567 + 16) = 0.003037820397921.
		{"flags over a file: the split's ratio", flags, m5("us-east-1", CapacityOnDemand), 0.035848718408317, 0.003037820397921, false, SourceNodePrice, [2]float64{0.12, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.p.Rates(tt.facts)
			const eps = 1e-9 // a billionth of a dollar per hour
			if math.Abs(r.CPUCoreHour-tt.cpu) > eps || math.Abs(r.RAMGiBHour-tt.ram) > eps {
				t.Errorf("CPU %.12f/core-h, RAM %.12f/GiB-h; want %.12f, %.12f", r.CPUCoreHour, r.RAMGiBHour, tt.cpu, tt.ram)
			}
			if r.Spot != tt.spot || r.Source != tt.source || r.Currency != "USD" {
				t.Errorf("spot %t, source %s, currency %s; want %t, %s, USD", r.Spot, r.Source, r.Currency, tt.spot, tt.source)
			}
			if r.EgressInternetGiB != tt.egress[0] || r.EgressClusterGiB != tt.egress[1] {
				t.Errorf("egress %v, %v; want %v", r.EgressInternetGiB, r.EgressClusterGiB, tt.egress)
			}
		})
	}
}

// TestSplitAddsUp checks that a split node price adds up to the node's
// price over its capacity, to the micro-dollar over a 730-hour month.
func TestSplitAddsUp(t *testing.T) {
	for _, tt := range []struct {
		price, cores float64
		mem          int64
		cpu, ram     float64
	}{
		{0.192, 4, 16 * gibBytes, DefaultCPUCoreHour, DefaultRAMGiBHour},
		{3.06, 96, 384 * gibBytes, DefaultCPUCoreHour, DefaultRAMGiBHour},
		{0.0104, 2, gibBytes / 2, DefaultCPUCoreHour, DefaultRAMGiBHour},
		{1.5, 16, 128 * gibBytes, 0.05, 0.002},
		{0.5, 8, 0, DefaultCPUCoreHour, DefaultRAMGiBHour},
		{0.5, 8, 32 * gibBytes, 0.05, 0},
		{0.5, 8, 32 * gibBytes, 0, 0.004},
	} {
		cpu, ram, ok := split(tt.price, tt.cores, tt.mem, tt.cpu, tt.ram)
		if !ok {
			t.Errorf("split(%v, %v cores, %v B) refused", tt.price, tt.cores, tt.mem)
			continue
		}
		month := 730 * (cpu*tt.cores + ram*float64(tt.mem)/gibBytes)
		if math.Abs(month-730*tt.price) > 1e-6 {
			t.Errorf("split(%v, %v cores, %v B) = %v, %v: %v a month, want %v", tt.price, tt.cores, tt.mem, cpu, ram, month, 730*tt.price)
		}
	}
}

// TestEffective checks that a resolved Pricing shows every default price,
// and that New leaves the file it was given as it was.
func TestEffective(t *testing.T) {
	f, err := Decode([]byte("apiVersion: penny.dev/v1\nkind: Pricing\ndefaults: {cpuCoreHour: 0.05}\nnodes: [{instanceType: a, hourlyPrice: 1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(f, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Currency != "" || f.Defaults.RAMGiBHour != nil || f.Nodes[0].CapacityType != "" {
		t.Errorf("New changed its file: %+v", f)
	}
	e := p.Effective()
	for _, d := range e.Defaults.fields() {
		if *d.v == nil {
			t.Errorf("effective defaults.%s unset", d.name)
		}
	}
	if *e.Defaults.CPUCoreHour != 0.05 || *e.Defaults.RAMGiBHour != DefaultRAMGiBHour || e.Currency != "USD" || e.Nodes[0].CapacityType != CapacityOnDemand {
		t.Errorf("effective file %+v", e)
	}
	*e.Defaults.CPUCoreHour = 1
	if p.Rates(Facts{}).CPUCoreHour != 0.05 {
		t.Error("changing the effective file changed the prices")
	}
	if p.Source() != SourceFile || Default().Source() != SourceDefault {
		t.Errorf("sources %s, %s", p.Source(), Default().Source())
	}
}

// BenchmarkRates prices a node with a whole-node price among a thousand
// entries, as the cost model does for every node it rolls up.
func BenchmarkRates(b *testing.B) {
	var s strings.Builder
	s.WriteString(header + "nodes:\n")
	for i := range 1000 {
		fmt.Fprintf(&s, "  - {instanceType: type-%d, region: region-%d, hourlyPrice: %d}\n", i, i%10, i)
	}
	p, err := Parse([]byte(s.String()), Overrides{})
	if err != nil {
		b.Fatal(err)
	}
	f := Facts{InstanceType: "type-517", Region: "region-7", CapacityCPUCores: 16, CapacityMemoryBytes: 64 * gibBytes}
	for b.Loop() {
		if r := p.Rates(f); r.Source != SourceNodePrice {
			b.Fatalf("%+v", r)
		}
	}
}
