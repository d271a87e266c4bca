package pricing

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocs checks docs/pricing.md against the code: every pricing file it
// shows is accepted, the worked example's numbers are what Rates computes,
// and the refusal it shows is the error such a file gets.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/pricing.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var example *Pricing
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		if !strings.Contains(m[1], "kind: Pricing") {
			continue
		}
		p, err := Parse([]byte(m[1]), Overrides{})
		if err != nil {
			t.Fatalf("docs/pricing.md's file is refused: %v\n%s", err, m[1])
		}
		if example == nil {
			example = p
		}
	}
	if example == nil {
		t.Fatal("docs/pricing.md shows no pricing file")
	}
	for _, f := range []Facts{{}, {CapacityType: CapacitySpot}} {
		got, want := example.Rates(f), Default().Rates(f)
		got.Source = want.Source
		if got != want {
			t.Errorf("the example's defaults are not OpenCost's, as its comments say: %+v, want %+v", got, want)
		}
	}

	// The worked example: an m5.xlarge in us-east-1, on-demand and spot,
	// by capacity and by allocatable resources.
	for _, f := range []Facts{
		{InstanceType: "m5.xlarge", Region: "us-east-1", CapacityCPUCores: 4, CapacityMemoryBytes: 16 << 30},
		{InstanceType: "m5.xlarge", Region: "us-east-1", CapacityType: CapacitySpot, CapacityCPUCores: 4, CapacityMemoryBytes: 16 << 30},
		{InstanceType: "m5.xlarge", Region: "us-east-1", CPUCores: 3.92, MemoryBytes: 15 << 30},
	} {
		r := example.Rates(f)
		for _, v := range []float64{r.CPUCoreHour, r.RAMGiBHour} {
			if s := fmt.Sprintf("%.8f", v); !strings.Contains(doc, s) {
				t.Errorf("%+v: the docs lack the price %s", f, s)
			}
		}
	}
	if !strings.Contains(doc, "0.374965 + 0.201035 =\n**0.576 $**") {
		t.Error("the docs lack the worked day of a container")
	}

	// The refusal.
	bad := header + "defaults: {cpuCoreHour: -0.03}\nnodes:\n" +
		"  - {instanceType: m5.xlarge, region: us-east-1, hourlyPrice: 0.192}\n" +
		"  - {instanceType: m5.xlarge, capacityType: preemptible, hourlyPrice: 0.1}\n" +
		"  - {instanceType: m5.xlarge, hourlyPrice: 0.214}\n" +
		"  - {instanceType: m5.xlarge, region: us-east-1, hourlyPrice: 0.19}\n"
	_, err = Parse([]byte(bad), Overrides{})
	want := "```\npricing file /etc/penny/pricing/pricing.yaml: " + fmt.Sprint(err) + "\n```"
	if err == nil || !strings.Contains(doc, want) {
		t.Errorf("the docs lack the refusal\n%s", want)
	}
}
