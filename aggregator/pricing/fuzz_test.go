package pricing

import (
	"errors"
	"math"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzParse decodes arbitrary input as a pricing file. It must never
// panic; what it accepts must be valid, price any node with finite,
// non-negative prices, and read back the same from its effective file.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		ratesFile, defaultSplitFile, header, "", "a: b", "[1, 2]", header + "---\n" + header,
		header + "currency: EUR\n", header + "nodes: [{instanceType: a, hourlyPrice: 1}, {instanceType: A, hourlyPrice: 2}]\n",
		header + "defaults: {cpuCoreHour: 1e-3, ramGiBHour: 0}\nnodes: [{instanceType: x, region: r, capacityType: spot, hourlyPrice: 5}]\n",
		"&a [*a, *a]", "a: &a [*a]", "{\"apiVersion\": \"penny.dev/v1\", \"kind\": \"Pricing\", \"defaults\": null}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 { // bounded input; MaxFileBytes bounds real files
			return
		}
		p, err := Parse(data, Overrides{})
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error of an unexpected kind: %v", err)
			}
			return
		}
		e := p.Effective()
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted, but its effective file is invalid: %v", err)
		}
		facts := []Facts{{}, {CapacityType: CapacitySpot}}
		for _, n := range e.Nodes {
			facts = append(facts, Facts{InstanceType: n.InstanceType, Region: n.Region, CapacityType: n.CapacityType, CPUCores: 2, MemoryBytes: 8 << 30})
		}
		b, err := yaml.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b, Overrides{})
		if err != nil {
			t.Fatalf("the effective file is refused: %v\n%s", err, b)
		}
		for _, fc := range facts {
			r := p.Rates(fc)
			for _, v := range []float64{r.CPUCoreHour, r.RAMGiBHour, r.EgressInternetGiB, r.EgressClusterGiB} {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%+v: rates %+v", fc, r)
				}
			}
			if r2 := again.Rates(fc); r2 != r {
				t.Fatalf("%+v: %+v, read back %+v", fc, r, r2)
			}
		}
	})
}
