package nodemeta_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/wire"
)

var full = nodemeta.Facts{
	Name: "ip-10-0-1-17.ec2.internal", InstanceType: "m5.xlarge", Region: "us-east-1", Zone: "us-east-1a",
	CapacityType: nodemeta.Spot, AllocatableCPUMillis: 3920, AllocatableMemoryBytes: 15 << 30,
	CapacityCPUMillis: 4000, CapacityMemoryBytes: 16 << 30, Source: "flags,kubernetes",
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		facts nodemeta.Facts
		keys  int
	}{
		{"every fact", full, 10},
		{"none", nodemeta.Facts{}, 0},
		{"flags only", nodemeta.Facts{Name: "laptop", InstanceType: "t3.large", CapacityType: nodemeta.OnDemand,
			Source: nodemeta.SourceFlags}, 4},
		{"host capacity", nodemeta.Facts{Name: "n", CapacityCPUMillis: 2000, CapacityMemoryBytes: 8 << 30,
			Source: nodemeta.SourceHost}, 4},
		{"largest values", nodemeta.Facts{Name: strings.Repeat("a", nodemeta.MaxLen), AllocatableCPUMillis: nodemeta.MaxCPUMillis,
			AllocatableMemoryBytes: nodemeta.MaxMemoryBytes}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.facts.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			m := nodemeta.Encode(&tt.facts)
			if len(m) != tt.keys {
				t.Errorf("%d keys, want %d: %v", len(m), tt.keys, m)
			}
			for k := range m {
				if !strings.HasPrefix(k, nodemeta.KeyPrefix) {
					t.Errorf("key %q without the prefix %q", k, nodemeta.KeyPrefix)
				}
			}
			s := wire.Snapshot{Meta: m}
			if err := checkWireMeta(&s); err != nil {
				t.Errorf("the wire refuses the metadata: %v", err)
			}
			got, invalid := nodemeta.Decode(m)
			if got != tt.facts || invalid != nil {
				t.Errorf("Decode = %+v, %v; want %+v", got, invalid, tt.facts)
			}
			if got.Known() != (tt.keys > 1) {
				t.Errorf("Known() = %v", got.Known())
			}
		})
	}
}

var timeForWire = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// checkWireMeta checks m against the wire format's default limits.
func checkWireMeta(s *wire.Snapshot) error {
	c := *s
	c.Time, c.Interval = timeForWire, 0
	return c.Validate(wire.Limits{})
}

func TestDecodeLeavesBadFactsUnknown(t *testing.T) {
	good := nodemeta.Encode(&full)
	tests := []struct {
		key, value string
	}{
		{nodemeta.KeyName, ""},
		{nodemeta.KeyName, strings.Repeat("n", nodemeta.MaxLen+1)},
		{nodemeta.KeyInstanceType, "m5 large"},
		{nodemeta.KeyRegion, "us-east-1\n"},
		{nodemeta.KeyZone, "zone\x00"},
		{nodemeta.KeyZone, "zoné"},
		{nodemeta.KeyCapacityType, "SPOT"},
		{nodemeta.KeyCapacityType, "preemptible"},
		{nodemeta.KeyCapacityType, ""},
		{nodemeta.KeyAllocatableCPU, "3.9"},
		{nodemeta.KeyAllocatableCPU, "3920m"},
		{nodemeta.KeyAllocatableCPU, "+3920"},
		{nodemeta.KeyAllocatableCPU, "03920"},
		{nodemeta.KeyAllocatableCPU, "-1"},
		{nodemeta.KeyAllocatableCPU, "0"},
		{nodemeta.KeyAllocatableCPU, "1000000001"},
		{nodemeta.KeyAllocatableMemory, "16Gi"},
		{nodemeta.KeyCapacityMemory, "99999999999999999999"},
		{nodemeta.KeyCapacityMemory, "1152921504606846977"}, // MaxMemoryBytes + 1
		{nodemeta.KeyCapacityCPU, ""},
		{nodemeta.KeySource, "cloud"},
		{nodemeta.KeySource, ""},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			m := maps.Clone(good)
			m[tt.key] = tt.value
			got, invalid := nodemeta.Decode(m)
			if !slices.Equal(invalid, []string{tt.key}) {
				t.Errorf("invalid = %q, want [%s]", invalid, tt.key)
			}
			// Only that fact is unknown; the others stay.
			want := nodemeta.Encode(&full)
			delete(want, tt.key)
			if again := nodemeta.Encode(&got); !maps.Equal(again, want) {
				t.Errorf("decoded facts\n%v\nwant\n%v", again, want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("decoded facts do not validate: %v", err)
			}
		})
	}
}

func TestDecodeIgnores(t *testing.T) {
	m := map[string]string{
		"agent.version":            "v1.2.3", // not a node fact
		"node.gpu.count":           "8",      // a newer agent's fact
		nodemeta.KeyInstanceType:   "c6i.large",
		nodemeta.KeySource:         "host,cloud,kubernetes,kubernetes",
		nodemeta.KeyCapacityMemory: "4294967296",
		nodemeta.KeyAllocatableCPU: "1930",
		nodemeta.KeyCapacityType:   "on-demand",
	}
	got, invalid := nodemeta.Decode(m)
	want := nodemeta.Facts{InstanceType: "c6i.large", CapacityMemoryBytes: 4 << 30, AllocatableCPUMillis: 1930,
		CapacityType: nodemeta.OnDemand, Source: "kubernetes,host"}
	if got != want || invalid != nil {
		t.Errorf("Decode = %+v, %v; want %+v", got, invalid, want)
	}
	if got, invalid := nodemeta.Decode(nil); got.Known() || got != (nodemeta.Facts{}) || invalid != nil {
		t.Errorf("Decode(nil) = %+v, %v", got, invalid)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*nodemeta.Facts)
	}{
		{"space in the instance type", func(f *nodemeta.Facts) { f.InstanceType = "m5 large" }},
		{"long region", func(f *nodemeta.Facts) { f.Region = strings.Repeat("r", nodemeta.MaxLen+1) }},
		{"capacity type", func(f *nodemeta.Facts) { f.CapacityType = "Spot" }},
		{"negative cpu", func(f *nodemeta.Facts) { f.AllocatableCPUMillis = -1 }},
		{"too much memory", func(f *nodemeta.Facts) { f.CapacityMemoryBytes = nodemeta.MaxMemoryBytes + 1 }},
		{"unknown source", func(f *nodemeta.Facts) { f.Source = "cloud" }},
		{"source out of order", func(f *nodemeta.Facts) { f.Source = "kubernetes,flags" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := full
			tt.edit(&f)
			before := f
			err := f.Validate()
			if !errors.Is(err, nodemeta.ErrInvalid) {
				t.Errorf("Validate = %v, want ErrInvalid", err)
			}
			if f != before {
				t.Error("Validate changed the facts")
			}
		})
	}
}

func TestParseCapacityType(t *testing.T) {
	for in, want := range map[string]nodemeta.CapacityType{"spot": nodemeta.Spot, "on-demand": nodemeta.OnDemand,
		"": "", "SPOT": "", "ondemand": ""} {
		got, err := nodemeta.ParseCapacityType(in)
		if got != want || (err == nil) != (want != "") || err != nil && !errors.Is(err, nodemeta.ErrInvalid) {
			t.Errorf("ParseCapacityType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCombine(t *testing.T) {
	flags := nodemeta.Facts{Name: "n", InstanceType: "custom.large", CapacityType: nodemeta.OnDemand, Source: nodemeta.SourceFlags}
	kube := nodemeta.Facts{Name: "n", InstanceType: "m5.large", Region: "eu-west-1", Zone: "eu-west-1b",
		CapacityType: nodemeta.Spot, AllocatableCPUMillis: 1930, AllocatableMemoryBytes: 7 << 30,
		CapacityCPUMillis: 2000, CapacityMemoryBytes: 8 << 30, Source: nodemeta.SourceKubernetes}
	host := nodemeta.Facts{Name: "n", CapacityCPUMillis: 2000, CapacityMemoryBytes: 8<<30 - 4096, Source: nodemeta.SourceHost}
	tests := []struct {
		name   string
		layers []nodemeta.Facts
		want   nodemeta.Facts
	}{
		{"nothing", nil, nodemeta.Facts{}},
		{"kubernetes alone", []nodemeta.Facts{kube}, kube},
		{"flags override kubernetes; the host adds nothing", []nodemeta.Facts{flags, kube, host},
			nodemeta.Facts{Name: "n", InstanceType: "custom.large", Region: "eu-west-1", Zone: "eu-west-1b",
				CapacityType: nodemeta.OnDemand, AllocatableCPUMillis: 1930, AllocatableMemoryBytes: 7 << 30,
				CapacityCPUMillis: 2000, CapacityMemoryBytes: 8 << 30, Source: "flags,kubernetes"}},
		{"flags and the host, without kubernetes", []nodemeta.Facts{flags, {Source: nodemeta.SourceKubernetes}, host},
			nodemeta.Facts{Name: "n", InstanceType: "custom.large", CapacityType: nodemeta.OnDemand,
				CapacityCPUMillis: 2000, CapacityMemoryBytes: 8<<30 - 4096, Source: "flags,host"}},
		{"a name alone is no source", []nodemeta.Facts{{Name: "n", Source: nodemeta.SourceFlags}, host},
			nodemeta.Facts{Name: "n", CapacityCPUMillis: 2000, CapacityMemoryBytes: 8<<30 - 4096, Source: "host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nodemeta.Combine(tt.layers...)
			if got != tt.want {
				t.Errorf("Combine =\n%+v\nwant\n%+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("combined facts do not validate: %v", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	add := func(m map[string]string) {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(m)) {
			b.WriteString(k + "\x00" + m[k] + "\x00")
		}
		f.Add(b.String())
	}
	add(nodemeta.Encode(&full))
	add(map[string]string{nodemeta.KeyAllocatableCPU: "-0", nodemeta.KeySource: ",,flags", nodemeta.KeyCapacityType: "spot"})
	add(map[string]string{nodemeta.KeyCapacityMemory: "0001152921504606846976", nodemeta.KeyZone: "a b"})
	f.Fuzz(func(t *testing.T, s string) {
		// The input is key NUL value NUL ..., as many pairs as it holds.
		m := map[string]string{}
		parts := strings.Split(s, "\x00")
		for i := 0; i+1 < len(parts); i += 2 {
			m[parts[i]] = parts[i+1]
		}
		got, invalid := nodemeta.Decode(m)
		if err := got.Validate(); err != nil {
			t.Fatalf("Decode(%q) = %+v, which does not validate: %v", m, got, err)
		}
		for _, k := range invalid {
			if _, ok := m[k]; !ok {
				t.Fatalf("invalid key %q is not in the input", k)
			}
		}
		// What Decode kept survives another trip unchanged.
		again, invalid := nodemeta.Decode(nodemeta.Encode(&got))
		if again != got || invalid != nil {
			t.Fatalf("re-decoded %+v, %v; want %+v", again, invalid, got)
		}
		// Every known key decodes to a fact or is reported.
		enc := nodemeta.Encode(&got)
		for k, v := range m {
			if !strings.HasPrefix(k, nodemeta.KeyPrefix) || slices.Contains(invalid, k) {
				continue
			}
			if e, ok := enc[k]; ok && e != v && k != nodemeta.KeySource {
				t.Fatalf("key %q: %q decoded as %q", k, v, e)
			}
		}
	})
}
