package nodemeta

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid means a fact is malformed or out of bounds.
var ErrInvalid = errors.New("nodemeta: invalid")

// Keys of the agent metadata. Every key starts with KeyPrefix; a decoder
// ignores keys with the prefix that it does not know (a newer agent's).
const (
	KeyPrefix            = "node."
	KeyName              = "node.name"
	KeyInstanceType      = "node.instance-type"
	KeyRegion            = "node.region"
	KeyZone              = "node.zone"
	KeyCapacityType      = "node.capacity-type"
	KeyAllocatableCPU    = "node.allocatable.cpu.millis"
	KeyAllocatableMemory = "node.allocatable.memory.bytes"
	KeyCapacityCPU       = "node.capacity.cpu.millis"
	KeyCapacityMemory    = "node.capacity.memory.bytes"
	KeySource            = "node.facts.source"
)

const (
	// maxKeys is the number of keys Encode may write.
	maxKeys          = 10
	sourceSep        = ","
	digitsOfMaxInt64 = 19
)

// Bounds of the facts. Decode leaves a fact beyond them unknown.
const (
	// MaxLen bounds a string fact (a node name is a DNS subdomain of at
	// most 253 bytes; label values are at most 63).
	MaxLen = 253
	// MaxCPUMillis bounds CPU facts: a million cores.
	MaxCPUMillis = 1_000_000_000
	// MaxMemoryBytes bounds memory facts: 1 EiB.
	MaxMemoryBytes = 1 << 60
)

// CapacityType is how a node is bought: Spot or OnDemand; "" is unknown.
type CapacityType string

// Capacity types, as Karpenter's karpenter.sh/capacity-type label names
// them.
const (
	Spot     CapacityType = "spot"
	OnDemand CapacityType = "on-demand"
)

// ParseCapacityType parses "spot" or "on-demand".
func ParseCapacityType(s string) (CapacityType, error) {
	switch c := CapacityType(s); c {
	case Spot, OnDemand:
		return c, nil
	}
	return "", fmt.Errorf("%w: capacity type %q: want %s or %s", ErrInvalid, s, Spot, OnDemand)
}

// Sources of facts, in the order Combine's callers give them precedence.
const (
	// SourceFlags: the agent's command line (--instance-type, ...).
	SourceFlags = "flags"
	// SourceKubernetes: the node's Node object (labels, status).
	SourceKubernetes = "kubernetes"
	// SourceHost: the host itself (/proc/meminfo, online CPUs).
	SourceHost = "host"
)

var sources = []string{SourceFlags, SourceKubernetes, SourceHost}

// Facts are what an agent says of its node. A zero field is unknown.
type Facts struct {
	// Name is the node's name: the agent id of the frames that carry the
	// facts, and the name of the Node object on Kubernetes.
	Name         string       `json:"node,omitempty"`
	InstanceType string       `json:"instance_type,omitempty"`
	Region       string       `json:"region,omitempty"`
	Zone         string       `json:"zone,omitempty"`
	CapacityType CapacityType `json:"capacity_type,omitempty"`
	// Allocatable is what the kubelet lets pods use (status.allocatable):
	// capacity minus the system and kube reservations.
	AllocatableCPUMillis   int64 `json:"allocatable_cpu_millis,omitempty"`
	AllocatableMemoryBytes int64 `json:"allocatable_memory_bytes,omitempty"`
	// Capacity is the whole node (status.capacity, or the host's).
	CapacityCPUMillis   int64 `json:"capacity_cpu_millis,omitempty"`
	CapacityMemoryBytes int64 `json:"capacity_memory_bytes,omitempty"`
	// Source lists where the facts came from, comma separated, most
	// authoritative first (SourceFlags, SourceKubernetes, SourceHost).
	Source string `json:"facts_source,omitempty"`
}

// Known reports whether any fact is known (the name and the source are
// not facts).
func (f *Facts) Known() bool {
	g := *f
	g.Name, g.Source = "", ""
	return g != Facts{}
}

// stringFacts and intFacts list the fields with their keys, for encoding,
// decoding and validating them the same way.
func (f *Facts) stringFacts() []struct {
	key string
	v   *string
} {
	return []struct {
		key string
		v   *string
	}{
		{KeyName, &f.Name}, {KeyInstanceType, &f.InstanceType}, {KeyRegion, &f.Region}, {KeyZone, &f.Zone},
	}
}

func (f *Facts) intFacts() []struct {
	key string
	v   *int64
	max int64
} {
	return []struct {
		key string
		v   *int64
		max int64
	}{
		{KeyAllocatableCPU, &f.AllocatableCPUMillis, MaxCPUMillis},
		{KeyAllocatableMemory, &f.AllocatableMemoryBytes, MaxMemoryBytes},
		{KeyCapacityCPU, &f.CapacityCPUMillis, MaxCPUMillis},
		{KeyCapacityMemory, &f.CapacityMemoryBytes, MaxMemoryBytes},
	}
}

// Encode returns the agent metadata of f: one key per known fact, none
// for an unknown one. It does not validate: call Validate first.
func Encode(f *Facts) map[string]string {
	m := make(map[string]string, maxKeys)
	for _, s := range f.stringFacts() {
		if *s.v != "" {
			m[s.key] = *s.v
		}
	}
	if f.CapacityType != "" {
		m[KeyCapacityType] = string(f.CapacityType)
	}
	for _, i := range f.intFacts() {
		if *i.v != 0 {
			m[i.key] = strconv.FormatInt(*i.v, 10)
		}
	}
	if f.Source != "" {
		m[KeySource] = f.Source
	}
	return m
}

// Decode reads the facts of an agent's metadata. A value that is
// malformed or out of bounds leaves its fact unknown; invalid lists the
// keys of those values, sorted. Keys without KeyPrefix, and keys with it
// that this version does not know, are ignored.
func Decode(m map[string]string) (f Facts, invalid []string) {
	for _, s := range f.stringFacts() {
		if v, ok := m[s.key]; ok {
			if checkString(v) == nil {
				*s.v = v
			} else {
				invalid = append(invalid, s.key)
			}
		}
	}
	if v, ok := m[KeyCapacityType]; ok {
		if c, err := ParseCapacityType(v); err == nil {
			f.CapacityType = c
		} else {
			invalid = append(invalid, KeyCapacityType)
		}
	}
	for _, i := range f.intFacts() {
		if v, ok := m[i.key]; ok {
			if n, err := parseInt(v, i.max); err == nil {
				*i.v = n
			} else {
				invalid = append(invalid, i.key)
			}
		}
	}
	if v, ok := m[KeySource]; ok {
		if f.Source = canonicalSource(v); f.Source == "" {
			invalid = append(invalid, KeySource)
		}
	}
	slices.Sort(invalid)
	return f, invalid
}

// Validate checks every known fact as Decode does, so that what passes
// survives the trip through the wire.
func (f *Facts) Validate() error {
	var errs []error
	for _, s := range f.stringFacts() {
		if *s.v != "" {
			if err := checkString(*s.v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.key, err))
			}
		}
	}
	if f.CapacityType != "" {
		if _, err := ParseCapacityType(string(f.CapacityType)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, i := range f.intFacts() {
		if *i.v != 0 && (*i.v < 0 || *i.v > i.max) {
			errs = append(errs, fmt.Errorf("%w: %s %d: want 1 to %d", ErrInvalid, i.key, *i.v, i.max))
		}
	}
	if f.Source != "" && canonicalSource(f.Source) != f.Source {
		errs = append(errs, fmt.Errorf("%w: %s %q: want a comma-separated list of %s",
			ErrInvalid, KeySource, f.Source, strings.Join(sources, ", ")))
	}
	return errors.Join(errs...)
}

// checkString accepts 1 to MaxLen printable ASCII characters other than
// space: what instance types, regions, zones and node names are made of,
// and safe in a Prometheus label or a log line.
func checkString(s string) error {
	if s == "" || len(s) > MaxLen {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrInvalid, len(s), MaxLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("%w: %.64q: printable ASCII without spaces only", ErrInvalid, s)
		}
	}
	return nil
}

// parseInt accepts a positive decimal of digits only, without leading
// zeros (one spelling per value), at most max.
func parseInt(s string, max int64) (int64, error) {
	if s == "" || len(s) > digitsOfMaxInt64 || s[0] == '0' {
		return 0, fmt.Errorf("%w: %.32q is not a decimal", ErrInvalid, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %.32q is not a decimal", ErrInvalid, s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > max {
		return 0, fmt.Errorf("%w: %.32q: want 1 to %d", ErrInvalid, s, max)
	}
	return n, nil
}

// canonicalSource keeps the known sources of a comma-separated list, once
// each, in precedence order; "" when none is known.
func canonicalSource(s string) string {
	if len(s) > MaxLen {
		return ""
	}
	parts := strings.Split(s, sourceSep)
	var out []string
	for _, src := range sources {
		if slices.Contains(parts, src) {
			out = append(out, src)
		}
	}
	return strings.Join(out, sourceSep)
}

// Combine merges the facts of several sources, the most authoritative
// first: each fact comes from the first layer that knows it, and the
// result's Source lists the layers' sources that gave at least one fact
// (each layer's Source names it). The name comes from the first layer that
// has one and counts for no source.
func Combine(layers ...Facts) Facts {
	var out Facts
	used := make([]bool, len(layers))
	pickString := func(get func(*Facts) *string, counts bool) {
		for i := range layers {
			if v := *get(&layers[i]); v != "" {
				*get(&out), used[i] = v, used[i] || counts
				return
			}
		}
	}
	pickString(func(f *Facts) *string { return &f.Name }, false)
	pickString(func(f *Facts) *string { return &f.InstanceType }, true)
	pickString(func(f *Facts) *string { return &f.Region }, true)
	pickString(func(f *Facts) *string { return &f.Zone }, true)
	pickString(func(f *Facts) *string { return (*string)(&f.CapacityType) }, true)
	for j := range out.intFacts() {
		for i := range layers {
			if v := *layers[i].intFacts()[j].v; v != 0 {
				*out.intFacts()[j].v, used[i] = v, true
				break
			}
		}
	}
	var src []string
	for i := range layers {
		if used[i] && layers[i].Source != "" {
			src = append(src, layers[i].Source)
		}
	}
	out.Source = canonicalSource(strings.Join(src, sourceSep))
	return out
}
