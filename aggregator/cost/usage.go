package cost

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// GiB is the unit memory and egress are priced in (2^30 bytes).
const GiB = 1 << 30

// DefaultTenantLabel is the pod label that names a container's tenant.
const DefaultTenantLabel = "cost.tenant-id"

// ErrBadInput means a Series or NodeUsage handed to Compute is malformed
// (a span that ends before it starts, a negative or non-finite quantity):
// a bug in whoever built it, not in the query.
var ErrBadInput = errors.New("cost: bad input")

// Rates are a node's prices over a span. Package aggregator/pricing resolves
// them from the pricing file and the node's facts (it defines the same
// fields; the caller converts).
type Rates struct {
	// Currency of every price, e.g. "USD".
	Currency string
	// CPUCoreHour is the price of one core for one hour.
	CPUCoreHour float64
	// RAMGiBHour is the price of one GiB (2^30 bytes) for one hour.
	RAMGiBHour float64
	// EgressInternetGiB and EgressClusterGiB price a GiB sent to the
	// internet and to in-cluster (private) addresses; loopback is free.
	EgressInternetGiB float64
	EgressClusterGiB  float64
	// Spot says the node is a spot (preemptible) instance.
	Spot bool
	// Source says where the prices come from (e.g. "default", "file",
	// "node-price").
	Source string
}

// DefaultRates are OpenCost's published on-demand defaults, used for a
// container whose node has no NodeUsage at all (see Config.DefaultRates).
var DefaultRates = Rates{
	Currency:          "USD",
	CPUCoreHour:       0.031611,
	RAMGiBHour:        0.004237,
	EgressInternetGiB: 0.12,
	EgressClusterGiB:  0,
	Source:            "default",
}

func (r Rates) validate() error {
	for _, v := range [...]float64{r.CPUCoreHour, r.RAMGiBHour, r.EgressInternetGiB, r.EgressClusterGiB} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("price %v is not a finite non-negative number", v)
		}
	}
	return nil
}

// Container is who a Series belongs to. Kubernetes containers fill every
// field they have; in `penny local` a cgroup path is the Container and the
// node is the host. The tenant is derived (Config.TenantLabel), not stored.
type Container struct {
	Node      string
	Namespace string
	Pod       string
	Container string
	// ControllerKind and Controller name the pod's controller the way
	// OpenCost does: a lowercase kind ("deployment", "statefulset",
	// "daemonset", "job", ...) and its name; see Controller.
	ControllerKind string
	Controller     string
	// Labels are the pod's labels, keys as Kubernetes spells them.
	Labels map[string]string
}

// Usage is one container over one span: a minute, or an hour once the
// store compacts minutes. Quantities are integrals over the span:
// core-seconds, byte-seconds and bytes.
type Usage struct {
	Start, End time.Time
	// Seconds is how long the container was observed in the span (at most
	// End-Start).
	Seconds float64

	// UsageCoreSeconds is the CPU time used. RequestCoreSeconds is the
	// request times the observed seconds. AllocCoreSeconds is the sum over
	// the span's minutes of MinuteAlloc(usage, request): what the container
	// is charged for.
	UsageCoreSeconds   float64
	RequestCoreSeconds float64
	AllocCoreSeconds   float64

	// The same for memory, in byte-seconds. Usage is the measure the
	// operator chose (MemoryMeasure): RSS, RSS + page cache, or the
	// working set.
	UsageByteSeconds   float64
	RequestByteSeconds float64
	AllocByteSeconds   float64

	// Egress bytes by destination class, as the agent classifies them in
	// the kernel; loopback traffic is free and not counted here.
	EgressInternetBytes float64
	EgressClusterBytes  float64

	// Requests is how many requests the container answered in the span
	// (a count; prorated like every quantity at a window's edge).
	Requests float64
}

// MinuteAlloc is what a container is charged for in one minute, from that
// minute's usage and request integrals (core-seconds or byte-seconds):
// max(request, usage). The rollup writer calls it once per minute and per
// resource; an hour's alloc is the sum of its minutes', never the max of
// the hour's sums, so a burst in one minute is not averaged away.
func MinuteAlloc(usage, request float64) float64 {
	return max(usage, request)
}

// Minute builds a minute's Usage from what was measured in it: seconds
// observed, CPU time used, the CPU request in cores, the average memory in
// bytes (in the chosen MemoryMeasure), the memory request in bytes, and the
// egress bytes by class. It sets the alloc fields with MinuteAlloc.
func Minute(start time.Time, seconds, cpuUsedSeconds, cpuRequestCores, memBytes, memRequestBytes, egressInternet, egressCluster float64) Usage {
	u := Usage{
		Start:               start,
		End:                 start.Add(time.Minute),
		Seconds:             seconds,
		UsageCoreSeconds:    cpuUsedSeconds,
		RequestCoreSeconds:  cpuRequestCores * seconds,
		UsageByteSeconds:    memBytes * seconds,
		RequestByteSeconds:  memRequestBytes * seconds,
		EgressInternetBytes: egressInternet,
		EgressClusterBytes:  egressCluster,
	}
	u.AllocCoreSeconds = MinuteAlloc(u.UsageCoreSeconds, u.RequestCoreSeconds)
	u.AllocByteSeconds = MinuteAlloc(u.UsageByteSeconds, u.RequestByteSeconds)
	return u
}

// Add folds v into u, as compaction does with the minutes of an hour: the
// quantities add up and the span grows to cover both.
func (u *Usage) Add(v Usage) {
	if u.Start.IsZero() || v.Start.Before(u.Start) {
		u.Start = v.Start
	}
	if v.End.After(u.End) {
		u.End = v.End
	}
	u.Seconds += v.Seconds
	u.UsageCoreSeconds += v.UsageCoreSeconds
	u.RequestCoreSeconds += v.RequestCoreSeconds
	u.AllocCoreSeconds += v.AllocCoreSeconds
	u.UsageByteSeconds += v.UsageByteSeconds
	u.RequestByteSeconds += v.RequestByteSeconds
	u.AllocByteSeconds += v.AllocByteSeconds
	u.EgressInternetBytes += v.EgressInternetBytes
	u.EgressClusterBytes += v.EgressClusterBytes
	u.Requests += v.Requests
}

// Validate checks a span: it ends after it starts, and every quantity is
// finite and non-negative.
func (u *Usage) Validate() error {
	if !u.End.After(u.Start) {
		return fmt.Errorf("span %s..%s is empty", u.Start.Format(time.RFC3339), u.End.Format(time.RFC3339))
	}
	for _, v := range [...]float64{u.Seconds, u.UsageCoreSeconds, u.RequestCoreSeconds, u.AllocCoreSeconds,
		u.UsageByteSeconds, u.RequestByteSeconds, u.AllocByteSeconds, u.EgressInternetBytes, u.EgressClusterBytes,
		u.Requests} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("quantity %v is not a finite non-negative number", v)
		}
	}
	return nil
}

// Series is one container's spans. Compute reads spans in any order; it is
// fastest when they are sorted by Start, as a store reads them.
type Series struct {
	Container
	Usage []Usage
}

// NodeUsage is one node over one span: what it offers and at what prices.
type NodeUsage struct {
	Node       string
	Start, End time.Time
	// Hours is how long the node was observed in the span.
	Hours float64
	// CPUCores and RAMBytes are the node's allocatable CPU and memory.
	CPUCores float64
	RAMBytes float64
	Rates    Rates
}

// Validate checks a node span.
func (n *NodeUsage) Validate() error {
	if n.Node == "" {
		return errors.New("no node name")
	}
	if !n.End.After(n.Start) {
		return fmt.Errorf("span %s..%s is empty", n.Start.Format(time.RFC3339), n.End.Format(time.RFC3339))
	}
	for _, v := range [...]float64{n.Hours, n.CPUCores, n.RAMBytes} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("quantity %v is not a finite non-negative number", v)
		}
	}
	return n.Rates.validate()
}

// MemoryMeasure is what counts as a container's memory usage.
type MemoryMeasure string

// The memory measures. RSS (the processes' VmRSS) is the default: what a
// container holds while it runs. RSS plus page cache charges for the files
// a container keeps cached; the working set (the kernel's memory.current
// minus inactive file pages, what the kubelet and OpenCost use) sits in
// between.
const (
	MemoryRSS          MemoryMeasure = "rss"
	MemoryRSSPageCache MemoryMeasure = "rss+cache"
	MemoryWorkingSet   MemoryMeasure = "working-set"
)

// ParseMemoryMeasure parses a MemoryMeasure; "" is MemoryRSS.
func ParseMemoryMeasure(s string) (MemoryMeasure, error) {
	switch m := MemoryMeasure(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return MemoryRSS, nil
	case MemoryRSS, MemoryRSSPageCache, MemoryWorkingSet:
		return m, nil
	}
	return "", fmt.Errorf("cost: memory measure %q: want %s, %s or %s", s, MemoryRSS, MemoryRSSPageCache, MemoryWorkingSet)
}

// Controller names a pod's controller the way OpenCost does, from the
// pod's owner reference and labels: the kind in lower case, and a
// ReplicaSet that a Deployment made (its name is the Deployment's plus
// "-" and the pod's pod-template-hash label) becomes that Deployment. No
// owner gives "", "" (OpenCost's __unallocated__ controller).
func Controller(ownerKind, ownerName string, labels map[string]string) (kind, name string) {
	if ownerKind == "" || ownerName == "" {
		return "", ""
	}
	kind = strings.ToLower(ownerKind)
	if kind == "replicaset" {
		if h := labels["pod-template-hash"]; h != "" {
			if d, ok := strings.CutSuffix(ownerName, "-"+h); ok && d != "" {
				return "deployment", d
			}
		}
	}
	return kind, ownerName
}

// Tenant is a container's tenant: the value of its pod's label key (the
// Config's TenantLabel), else its namespace.
func Tenant(c *Container, key string) string {
	if t := c.Labels[key]; t != "" {
		return t
	}
	return c.Namespace
}
