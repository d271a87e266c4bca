package pricing

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const header = "apiVersion: penny.dev/v1\nkind: Pricing\n"

// TestParseRefuses checks that each bad file is refused with every problem
// it has, each naming its field and the reason.
func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // one line of the error each, in order
	}{
		{"unknown top-level field", header + "currencyCode: USD\n", []string{"currencyCode: unknown field"}},
		{"unknown nested field and a misspelt one", header + "defaults:\n  cpu: 1\n  CPUCoreHour: 1\nnodes:\n  - instanceType: a\n    hourlyPrice: 1\n    price: 2\n",
			[]string{"defaults.CPUCoreHour: unknown field", "defaults.cpu: unknown field", "nodes[0].price: unknown field"}},
		{"wrong types", header + "currency: 1\ndefaults:\n  ramGiBHour: \"0.004\"\n  cpuCoreHour: [1]\nnodes: {instanceType: a}\n",
			[]string{"currency: a string, not the number 1", "defaults.cpuCoreHour: a number, not a list", `defaults.ramGiBHour: a number, not the string "0.004"`,
				"nodes: a list, not a mapping"}},
		{"a node that is not a mapping", header + "nodes: [m5.large]\n", []string{`nodes[0]: a mapping, not the string "m5.large"`}},
		{"number out of range", header + "defaults: {cpuCoreHour: 1e999}\n", []string{`defaults.cpuCoreHour: a number, not the string "1e999"`}},
		{"infinite price", header + "defaults: {cpuCoreHour: .inf}\n", []string{"not valid YAML: json: unsupported value: +Inf"}},
		{"negative prices", header + "defaults:\n  cpuCoreHour: -0.01\n  spotRAMGiBHour: -1\nnodes:\n  - {instanceType: a, hourlyPrice: -0.5}\n",
			[]string{"defaults.cpuCoreHour: negative price -0.01", "defaults.spotRAMGiBHour: negative price -1", "nodes[0].hourlyPrice: negative price -0.5"}},
		{"unknown capacity type", header + "nodes:\n  - {instanceType: a, capacityType: preemptible, hourlyPrice: 1}\n  - {instanceType: b, capacityType: Spot, hourlyPrice: 1}\n",
			[]string{`nodes[0].capacityType: "preemptible" is not on-demand or spot`, `nodes[1].capacityType: "Spot" is not on-demand or spot`}},
		{"missing node fields", header + "nodes:\n  - {region: us-east-1}\n  - {instanceType: ' a', region: 'b ', hourlyPrice: 1}\n",
			[]string{"nodes[0].instanceType: required", "nodes[0].hourlyPrice: required", `nodes[1].instanceType: " a" has spaces around it`,
				`nodes[1].region: "b " has spaces around it`}},
		{"duplicate node entries", header + "nodes:\n  - {instanceType: m5.large, hourlyPrice: 1}\n  - {instanceType: m5.large, capacityType: spot, hourlyPrice: 1}\n" +
			"  - {instanceType: M5.Large, capacityType: on-demand, hourlyPrice: 2}\n  - {instanceType: m5.large, region: us-east-1, hourlyPrice: 1}\n  - {instanceType: m5.large, region: US-EAST-1, hourlyPrice: 1}\n",
			[]string{`nodes[2]: duplicate of nodes[0] (instanceType "M5.Large", region "", capacityType on-demand)`,
				`nodes[4]: duplicate of nodes[3] (instanceType "m5.large", region "US-EAST-1", capacityType on-demand)`}},
		{"bad currency", header + "currency: usd\n", []string{`currency: "usd" is not an ISO 4217 code (three capital letters, such as USD or EUR)`}},
		{"unknown currency", header + "currency: ABC\n", []string{`currency: "ABC" is not an ISO 4217 currency`}},
		{"no currency", header + "currency: XXX\n", []string{`currency: "XXX" is not an ISO 4217 currency`}},
		{"another currency without its default prices", header + "currency: EUR\ndefaults: {cpuCoreHour: 0.03, ramGiBHour: 0.004, egressClusterGiB: 0}\n",
			[]string{"defaults.spotCPUCoreHour: required in a file in EUR: OpenCost's defaults are in USD",
				"defaults.spotRAMGiBHour: required in a file in EUR: OpenCost's defaults are in USD",
				"defaults.egressInternetGiB: required in a file in EUR: OpenCost's defaults are in USD"}},
		{"wrong apiVersion and kind", "apiVersion: penny.dev/v2\nkind: Prices\n", []string{`apiVersion: penny.dev/v1, not "penny.dev/v2"`, `kind: Pricing, not "Prices"`}},
		{"no apiVersion and kind", "currency: USD\n", []string{`apiVersion: penny.dev/v1, not ""`, `kind: Pricing, not ""`}},
		{"empty file", "", []string{"empty file: a pricing file has apiVersion penny.dev/v1 and kind Pricing"}},
		{"only a comment", "# prices\n", []string{"empty file: a pricing file has apiVersion penny.dev/v1 and kind Pricing"}},
		{"not a mapping", "- apiVersion: penny.dev/v1\n", []string{"a pricing file is a mapping (apiVersion: penny.dev/v1, kind: Pricing, ...), not a list"}},
		{"two documents", header + "---\n" + header, []string{"more than one YAML document: a pricing file is one"}},
		{"duplicate key", header + "currency: USD\ncurrency: EUR\n", []string{`not valid YAML: yaml: unmarshal errors:`, `key "currency" already set in map`}},
		{"many problems", header + "nodes:\n" + strings.Repeat("  - {instanceType: a, hourlyPrice: 1}\n", 60),
			append(slices.Repeat([]string{"duplicate of nodes[0]"}, 50), "and 9 more problems")},
		{"not YAML", header + "defaults: {cpuCoreHour: 1\n", []string{"not valid YAML:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.file), Overrides{})
			if err == nil {
				t.Fatalf("accepted: %+v", p.Effective())
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v: not an ErrInvalid", err)
			}
			got := strings.Split(err.Error(), "\n")
			for i, w := range tt.want {
				if i >= len(got) || !strings.Contains(got[i], w) {
					t.Errorf("error:\n%v\nwant line %d to hold %q", err, i, w)
				}
			}
			if len(got) > len(tt.want) && !strings.HasPrefix(tt.name, "duplicate key") {
				t.Errorf("error:\n%v\nwant %d problems", err, len(tt.want))
			}
		})
	}
}

// TestParseAccepts checks files that are valid, and what they decode to.
func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		file string
		want func(p *Pricing) bool
	}{
		{"the smallest file", header, func(p *Pricing) bool {
			return p.cpu == DefaultCPUCoreHour && p.Currency() == "USD" && p.Source() == SourceFile
		}},
		{"null values are absent", header + "currency:\ndefaults:\n  cpuCoreHour: null\nnodes:\n", func(p *Pricing) bool { return p.cpu == DefaultCPUCoreHour }},
		{"zero prices", header + "defaults: {cpuCoreHour: 0, egressInternetGiB: 0}\nnodes: [{instanceType: a, hourlyPrice: 0}]\n",
			func(p *Pricing) bool {
				return p.cpu == 0 && p.egressInternet == 0 && p.nodes[keyOf("a", "", CapacityOnDemand)] == 0
			}},
		{"integers and exponents", header + "defaults: {cpuCoreHour: 1, ramGiBHour: 4.2e-3}\n", func(p *Pricing) bool { return p.cpu == 1 && p.ram == 0.0042 }},
		{"another currency with every default price", header + "currency: EUR\ndefaults: {cpuCoreHour: 0.03, ramGiBHour: 0.004, spotCPUCoreHour: 0.006, " +
			"spotRAMGiBHour: 0.0008, egressInternetGiB: 0.1, egressClusterGiB: 0}\n", func(p *Pricing) bool { return p.Currency() == "EUR" && p.egressInternet == 0.1 }},
		{"the same instance type in two regions and both capacity types", header + "nodes:\n  - {instanceType: a, hourlyPrice: 1}\n" +
			"  - {instanceType: a, region: r, hourlyPrice: 2}\n  - {instanceType: a, capacityType: spot, hourlyPrice: 0.5}\n  - {instanceType: a, region: r, capacityType: spot, hourlyPrice: 0.4}\n",
			func(p *Pricing) bool { return len(p.nodes) == 4 }},
		{"JSON is YAML", `{"apiVersion": "penny.dev/v1", "kind": "Pricing", "defaults": {"cpuCoreHour": 0.02}}`, func(p *Pricing) bool { return p.cpu == 0.02 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.file), Overrides{})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(p) {
				t.Errorf("resolved to %+v", p)
			}
		})
	}
}

// TestValidateChangesNothing checks that Validate leaves a file, valid or
// not, as it was.
func TestValidateChangesNothing(t *testing.T) {
	neg := -1.0
	for _, f := range []*File{
		{APIVersion: APIVersion, Kind: Kind},
		{Currency: "eur", Defaults: Prices{CPUCoreHour: &neg}, Nodes: []NodePrice{{InstanceType: " a"}, {InstanceType: " a"}}},
	} {
		before := f.clone()
		_ = f.Validate()
		if !reflect.DeepEqual(f, before) {
			t.Errorf("Validate changed %+v to %+v", before, f)
		}
	}
}

// TestOverridesRefused checks that bad overrides are refused.
func TestOverridesRefused(t *testing.T) {
	neg := -0.01
	if _, err := New(nil, Overrides{RAMGiBHour: &neg}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "memory GiB-hour price: negative price -0.01") {
		t.Errorf("negative override: %v", err)
	}
}
