package simnode

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/podmeta"
)

// The workload model: a Kubernetes node whose cgroups are a dozen systemd
// units and pods of three containers (pause, app, sidecar), each cgroup in
// one activity class. docs/wire.md states the same numbers.
type class int

const (
	idle  class = iota // pause containers, idle units: RSS moves now and then
	light              // sidecars, small daemons: active 1 interval in 10 (probes, scrapes)
	busy               // serving apps, kubelet: traffic, RTT samples, RSS drift every interval
)

func (c class) String() string { return [...]string{"idle", "light", "busy"}[c] }

const page = 4096

// cgroup is one simulated cgroup: what the agent would report for it.
type cgroup struct {
	sampler.Cgroup
	class      class
	pktRate    float64 // busy: packets received per second
	pktBytes   float64 // mean bytes per packet
	rttBucket  int     // log2 µs of its connections' smoothed RTT
	connBucket int     // log2 µs of its connect latency
	cores      float64 // CPU it uses when active, cores
	limited    bool    // has a CPU limit (a container with limits)
	serves     bool    // answers requests on server sockets (ServeRequests)
}

type Node struct {
	allBusy bool // every cgroup busy: the worst case for deltas
	rng     *rand.Rand
	now     time.Time
	cgroups []*cgroup
	nextID  uint64
	pods    int
	// meta is the pod metadata of each container's cgroup, by path, as
	// the agent's resolver gives it; metaRng draws it, apart from rng so
	// that the workload is the same with metadata or without.
	meta    map[string]map[string]string
	metaRng *rand.Rand
	// cpuRng draws CPU, pressure, working set and egress classes, apart
	// from rng too: the rest of the workload is what it was before them.
	cpuRng *rand.Rand
}

var systemUnits = []struct {
	path  string
	class class
}{
	{"/", idle},
	{"/init.scope", idle},
	{"/system.slice/kubelet.service", busy},
	{"/system.slice/containerd.service", light},
	{"/system.slice/systemd-journald.service", light},
	{"/system.slice/systemd-networkd.service", light},
	{"/system.slice/systemd-resolved.service", light},
	{"/system.slice/systemd-logind.service", idle},
	{"/system.slice/chronyd.service", idle},
	{"/system.slice/dbus.service", idle},
	{"/system.slice/sshd.service", idle},
	{"/user.slice/user-1000.slice/session-3.scope", idle},
}

// New returns a node of n cgroups whose agent has been running for
// uptime, so that its counters have the magnitudes a real one's have.
func New(n int, seed uint64, uptime time.Duration, allBusy bool) *Node {
	nd := &Node{allBusy: allBusy, rng: rand.New(rand.NewPCG(seed, 0x7065_6e6e_7977)), now: time.Unix(1_770_000_000, 0),
		nextID: 2, meta: map[string]map[string]string{}, metaRng: rand.New(rand.NewPCG(seed, 0x6d65_7461)),
		cpuRng: rand.New(rand.NewPCG(seed, 0x6370_7521))}
	for _, u := range systemUnits[:min(len(systemUnits), n)] {
		nd.add(u.path, u.class, uptime, false)
	}
	for len(nd.cgroups) < n {
		nd.addPod(n-len(nd.cgroups), uptime)
	}
	return nd
}

// ServeRequests makes the node's busy pod containers servers: from the
// next step, every tenth packet received is a request, timed around 32
// times the connection's RTT. Without it a node serves no request, and
// its samples are what they were before requests were measured.
func (nd *Node) ServeRequests() {
	for _, c := range nd.cgroups {
		if c.class == busy && strings.HasPrefix(c.Path, "/kubepods") {
			c.serves = true
		}
	}
}

// Classes counts the cgroups of each activity class.
func (nd *Node) Classes() map[string]int {
	m := map[string]int{}
	for _, c := range nd.cgroups {
		m[c.class.String()]++
	}
	return m
}

// addPod adds a pod's containers, at most max of them.
func (nd *Node) addPod(max int, uptime time.Duration) {
	r := nd.rng
	nd.pods++
	qos := []string{"burstable", "besteffort", "guaranteed"}[r.IntN(3)]
	uid := fmt.Sprintf("%08x_%04x_%04x_%04x_%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff,
		r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
	slice := "/kubepods.slice/kubepods-" + qos + ".slice/kubepods-" + qos + "-pod" + uid + ".slice"
	if qos == "guaranteed" {
		slice = "/kubepods.slice/kubepods-pod" + uid + ".slice"
	}
	app, sidecar := light, idle
	if r.Float64() < 0.55 {
		app = busy
	}
	if r.Float64() < 0.6 {
		sidecar = light
	}
	pod := nd.podMeta(uid, qos)
	for i, c := range []class{idle, app, sidecar}[:min(3, max)] {
		id := fmt.Sprintf("%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
		path := slice + "/cri-containerd-" + id + ".scope"
		nd.add(path, c, uptime, i > 0) // app and sidecar have CPU limits
		ctr := podmeta.Container{Name: []string{"", "app", "sidecar"}[i], ID: id}
		if m := nd.metaRng; i > 0 {
			ctr.RequestCPUMillis, ctr.RequestMemory = 100*int64(1+m.IntN(10)), int64(64+m.IntN(960))<<20
			ctr.LimitCPUMillis, ctr.LimitMemory = 2*ctr.RequestCPUMillis, 2*ctr.RequestMemory
		}
		nd.meta[path] = podmeta.Encode(pod, &ctr)
	}
}

// podMeta makes up a pod of a Deployment with the labels such pods carry.
func (nd *Node) podMeta(uid, qos string) *podmeta.Pod {
	r := nd.metaRng
	ns := []string{"default", "shop", "payments", "search", "monitoring", "kube-system"}[r.IntN(6)]
	app := fmt.Sprintf("svc-%d", r.IntN(40))
	hash := fmt.Sprintf("%010x", r.Uint64()&0xffffffffff)[:10-r.IntN(3)]
	return &podmeta.Pod{
		UID: strings.ReplaceAll(uid, "_", "-"), Namespace: ns, Name: fmt.Sprintf("%s-%s-%05x", app, hash, r.IntN(1<<20)),
		Labels: map[string]string{"app": app, "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": ns,
			"pod-template-hash": hash, "version": fmt.Sprintf("v1.%d.%d", r.IntN(20), r.IntN(10)), "team": ns + "-team"},
		QOSClass: strings.ToUpper(qos[:1]) + qos[1:], OwnerKind: "ReplicaSet", OwnerName: app + "-" + hash,
	}
}

// Resolve returns the pod metadata of the cgroup at path, nil for a
// systemd unit: the agent's resolver on a Kubernetes node.
func (nd *Node) Resolve(path string) map[string]string { return nd.meta[path] }

func (nd *Node) add(path string, cl class, uptime time.Duration, limited bool) {
	r := nd.rng
	if nd.allBusy {
		cl = busy
	}
	c := &cgroup{class: cl, pktRate: math.Exp(3 + 3*r.Float64()), pktBytes: 100 + 1300*r.Float64(),
		rttBucket: 6 + r.IntN(5), connBucket: 7 + r.IntN(5), limited: limited}
	c.Path, c.ID = path, nd.nextID
	nd.nextID += 1 + uint64(r.IntN(40))
	c.Processes = 1 + r.IntN(8)
	c.RSSBytes = int64(2+r.IntN(500)) << 20
	c.PageCacheBytes = int64(r.IntN(300)) << 20
	c.HitRatioKnown = true
	// History: uptime at the class's average rates, in one go.
	secs := uptime.Seconds()
	switch cl {
	case busy:
		c.traffic(r, c.pktRate*secs)
		c.Totals.PageCacheAccesses = uint64(200 * 0.3 * secs)
		c.Totals.PageCacheMisses = c.Totals.PageCacheAccesses / 50
		c.Totals.Retransmits = uint64(0.1 * secs)
	case light:
		c.traffic(r, 6*0.1*secs)
	}
	c.Totals.PageCacheAddedBytes = uint64(c.PageCacheBytes) + c.Totals.PageCacheMisses*page
	c.Totals.PageCacheEvictedBytes = c.Totals.PageCacheAddedBytes - uint64(c.PageCacheBytes)
	// CPU: busy cgroups use 0.05 to 0.8 cores, light ones 2 to 20
	// millicores (a daemon's wake-ups, a probe), idle ones nothing.
	cr := nd.cpuRng
	switch cl {
	case busy:
		c.cores = 0.05 + 0.75*cr.Float64()
	case light:
		c.cores = 0.002 + 0.018*cr.Float64()
	}
	c.PressureKnown = true
	c.Totals.CPUUsageUsec = uint64(c.cores * secs * 1e6)
	c.Totals.Pressure[cgroupfs.PressureCPU].Some = c.Totals.CPUUsageUsec / 30
	c.Totals.Pressure[cgroupfs.PressureCPU].Full = c.Totals.CPUUsageUsec / 60
	if c.limited {
		c.Totals.CPUPeriods = uint64(secs * 10) // 100ms periods
		c.Totals.CPUThrottledPeriods = c.Totals.CPUPeriods / 50
		c.Totals.CPUThrottledUsec = c.Totals.CPUThrottledPeriods * 20_000
	}
	c.MemoryWorkingSetBytes = c.workingSet()
	c.splitEgress(c.Totals.TxBytes, &c.Totals.TxClassBytes)
	nd.cgroups = append(nd.cgroups, c)
}

// workingSet is RSS and the active part of the page cache, a third of it.
func (c *cgroup) workingSet() int64 { return c.RSSBytes + c.PageCacheBytes/3 }

// splitEgress splits bytes sent into destination classes: 5% loopback,
// 70% in the cluster, the rest to the internet.
func (c *cgroup) splitEgress(tx uint64, out *[probe.TxClasses]uint64) {
	lo, cl := tx/20, tx*7/10
	out[probe.TxLoopback] += lo
	out[probe.TxCluster] += cl
	out[probe.TxInternet] += tx - lo - cl
}

// cpu records one interval's CPU time, throttling and pressure, in the
// interval's fields and the totals: a cgroup that uses CPU at all does so
// every interval, ±30%.
func (c *cgroup) cpu(r *rand.Rand, interval time.Duration) {
	if c.cores == 0 {
		return
	}
	us := uint64(c.cores * (0.7 + 0.6*r.Float64()) * float64(interval.Microseconds()))
	c.CPUUsageUsec = us
	c.Pressure[cgroupfs.PressureCPU].Some = us / uint64(20+r.IntN(20))
	if r.Float64() < 0.3 {
		c.Pressure[cgroupfs.PressureCPU].Full = us / 100
	}
	if r.Float64() < 0.05 { // a burst of reads stalls on IO
		c.Pressure[cgroupfs.PressureIO].Some = uint64(r.IntN(50_000))
	}
	if c.limited {
		c.CPUPeriods = uint64(interval / (100 * time.Millisecond))
		if r.Float64() < 0.2 {
			c.CPUThrottledPeriods = 1 + uint64(r.IntN(3))
			c.CPUThrottledUsec = c.CPUThrottledPeriods * uint64(5_000+r.IntN(40_000))
		}
	}
	t := &c.Totals
	t.CPUUsageUsec += c.CPUUsageUsec
	t.CPUPeriods += c.CPUPeriods
	t.CPUThrottledPeriods += c.CPUThrottledPeriods
	t.CPUThrottledUsec += c.CPUThrottledUsec
	for i := range t.Pressure {
		t.Pressure[i].Some += c.Pressure[i].Some
		t.Pressure[i].Full += c.Pressure[i].Full
	}
}

// traffic adds pkts received packets' worth of traffic to the totals: as
// many sent, RTT samples (tcp_probe fires on every segment received), one
// connect per 50 packets.
func (c *cgroup) traffic(r *rand.Rand, pkts float64) {
	t := &c.Totals
	rx := uint64(pkts)
	t.RxPackets += rx
	t.TxPackets += rx * 9 / 10
	t.RxBytes += uint64(pkts * c.pktBytes)
	t.TxBytes += uint64(pkts * c.pktBytes * 0.6)
	observe(r, &t.SRTT, c.rttBucket, rx)
	observe(r, &t.Connect, c.connBucket, rx/50)
}

// observe adds n samples spread over bucket b and its neighbours.
func observe(r *rand.Rand, h *histogram.Hist, b int, n uint64) {
	if n == 0 {
		return
	}
	if n < 4 {
		for range n {
			h.Observe(uint64(math.Ldexp(1+r.Float64(), b+r.IntN(3)-1)))
		}
		return
	}
	mid := n * 7 / 10
	lo := (n - mid) / 2
	for i, k := range []uint64{lo, mid, n - mid - lo} {
		h.Buckets[b+i-1] += k
		h.Count += k
		h.Sum += k * uint64(math.Ldexp(1.5, b+i-1))
	}
}

// observeLogLinear adds n request latencies around 1.5 * 2^b µs to h:
// the few of a quiet interval one by one, more in three adjacent buckets.
// It adds rather than observes, so that a copy of h taken before keeps
// its buckets.
func observeLogLinear(r *rand.Rand, h *histogram.LogLinear, b int, n uint64) {
	var d histogram.LogLinear
	if n < 4 {
		for range n {
			d.Observe(uint64(math.Ldexp(1+r.Float64(), b)))
		}
		h.Add(&d)
		return
	}
	mid := n * 7 / 10
	lo := (n - mid) / 2
	c := histogram.LogLinearBucket(uint64(math.Ldexp(1.5, b)))
	for i, k := range []uint64{lo, mid, n - mid - lo} {
		if k == 0 {
			continue
		}
		d.Buckets = append(d.Buckets, histogram.SparseBucket{Index: uint32(c + i - 1), N: k})
		d.Count += k
		d.Sum += k * uint64(histogram.LogLinearLower(c+i-1))
	}
	h.Add(&d)
}

// Step advances the node one interval and returns the sample the agent
// would take: cgroups with processes or activity, sorted by path.
func (nd *Node) Step(interval time.Duration) *sampler.Sample {
	return nd.StepAt(nd.now.Add(interval), interval)
}

// StepAt is Step for a sample taken at now.
func (nd *Node) StepAt(now time.Time, interval time.Duration) *sampler.Sample {
	r := nd.rng
	nd.now = now
	s := &sampler.Sample{Time: nd.now, Interval: interval}
	for _, c := range nd.cgroups {
		c.clearInterval()
		switch c.class {
		case busy:
			pkts := c.pktRate * (0.7 + 0.6*r.Float64()) * interval.Seconds()
			c.interval(r, pkts, r.Float64() < 0.3, r.Float64() < 0.05)
			c.driftRSS(r, 0.7, 256)
			if r.Float64() < 0.002 {
				c.Processes = max(1, c.Processes+r.IntN(3)-1)
			}
		case light:
			if r.Float64() < 0.1 {
				c.interval(r, float64(2+r.IntN(9)), r.Float64() < 0.05, false)
				c.driftRSS(r, 0.5, 16)
			} else {
				c.driftRSS(r, 0.02, 4)
			}
		case idle:
			c.driftRSS(r, 0.01, 4)
		}
		c.cpu(nd.cpuRng, interval)
		c.MemoryWorkingSetBytes = c.workingSet()
		s.Cgroups = append(s.Cgroups, c.Cgroup)
	}
	slices.SortFunc(s.Cgroups, func(a, b sampler.Cgroup) int { return strings.Compare(a.Path, b.Path) })
	return s
}

func (c *cgroup) clearInterval() {
	totals := c.Totals
	c.Cgroup = sampler.Cgroup{Path: c.Path, ID: c.ID, Processes: c.Processes, RSSBytes: c.RSSBytes,
		PageCacheBytes: c.PageCacheBytes, HitRatioKnown: true, PressureKnown: true,
		MemoryWorkingSetBytes: c.MemoryWorkingSetBytes, Totals: totals}
}

// interval records one interval's traffic, page cache reads and
// retransmits, in the interval's fields and the totals, as the sampler
// does.
func (c *cgroup) interval(r *rand.Rand, pkts float64, reads, retransmit bool) {
	before := c.Totals
	c.traffic(r, pkts)
	if reads {
		acc := uint64(10 + r.IntN(500))
		miss := acc * uint64(r.IntN(10)) / 100
		c.Totals.PageCacheAccesses += acc
		c.Totals.PageCacheMisses += miss
		c.Totals.PageCacheAddedBytes += miss * page
		c.PageCacheBytes += int64(miss * page)
		if r.Float64() < 0.3 {
			ev := min(uint64(c.PageCacheBytes), uint64(r.IntN(64))*page)
			c.Totals.PageCacheEvictedBytes += ev
			c.PageCacheBytes -= int64(ev)
		}
	}
	if retransmit {
		c.Totals.Retransmits += 1 + uint64(r.IntN(3))
	}
	t := &c.Totals
	c.splitEgress(t.TxBytes-before.TxBytes, &t.TxClassBytes)
	for i := range t.TxClassBytes {
		c.TxClassBytes[i] = t.TxClassBytes[i] - before.TxClassBytes[i]
	}
	c.RxBytes, c.TxBytes = t.RxBytes-before.RxBytes, t.TxBytes-before.TxBytes
	c.RxPackets, c.TxPackets = t.RxPackets-before.RxPackets, t.TxPackets-before.TxPackets
	c.Retransmits = t.Retransmits - before.Retransmits
	c.PageCacheAccesses, c.PageCacheMisses = t.PageCacheAccesses-before.PageCacheAccesses, t.PageCacheMisses-before.PageCacheMisses
	c.PageCacheAddedBytes = int64(t.PageCacheAddedBytes - before.PageCacheAddedBytes)
	c.PageCacheEvictedBytes = int64(t.PageCacheEvictedBytes - before.PageCacheEvictedBytes)
	c.SRTT = t.SRTT.Delta(&before.SRTT)
	c.Connect = t.Connect.Delta(&before.Connect)
	if c.serves {
		n := uint64(pkts) / 10
		t.Requests += n
		observeLogLinear(r, &t.RequestLatency, c.rttBucket+5, n)
		c.Requests = n
		c.RequestLatency = t.RequestLatency.Delta(&before.RequestLatency)
	}
}

// driftRSS changes RSS by up to pages pages either way with probability p.
func (c *cgroup) driftRSS(r *rand.Rand, p float64, pages int) {
	if r.Float64() < p {
		c.RSSBytes = max(1<<20, c.RSSBytes+int64(r.IntN(2*pages+1)-pages)*page)
	}
}

// ReplacePod deletes the pod of a random container and starts a new one of
// the same size: a rollout.
func (nd *Node) ReplacePod() {
	var pods []string
	for _, c := range nd.cgroups {
		if i := strings.LastIndex(c.Path, "/cri-containerd-"); i > 0 && !slices.Contains(pods, c.Path[:i]) {
			pods = append(pods, c.Path[:i])
		}
	}
	if len(pods) == 0 {
		return
	}
	gone := pods[nd.rng.IntN(len(pods))] + "/"
	n := len(nd.cgroups)
	nd.cgroups = slices.DeleteFunc(nd.cgroups, func(c *cgroup) bool {
		if strings.HasPrefix(c.Path, gone) {
			delete(nd.meta, c.Path)
			return true
		}
		return false
	})
	nd.addPod(n-len(nd.cgroups), 0)
}
