package sampler_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/testenv"
)

var ssRTT = regexp.MustCompile(`\brtt:([0-9.]+)/`)

// ssSRTT returns the smoothed RTTs, in microseconds, that `ss -ti` reports
// for the established TCP connections with port on either end.
func ssSRTT(t *testing.T, port string) []float64 {
	t.Helper()
	out, err := exec.Command("ss", "-Htin", "state", "established",
		"( sport = :"+port+" or dport = :"+port+" )").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	var v []float64
	for _, m := range ssRTT.FindAllStringSubmatch(string(out), -1) {
		ms, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		v = append(v, ms*1000)
	}
	return v
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func TestTCPLatencyMatchesSS(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	g := cgtest.NewGroup(t, r.layout)
	server, client := g.Start(), g.Start()
	addr := server.Do("echo")
	r.sample()

	client.Do("pingpong %s 1024", addr)
	var truth []float64
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		truth = append(truth, ssSRTT(t, port(addr))...)
	}
	rounds := client.Do("pingstop")
	c := r.cgroup(r.sample(), g.Path)
	if len(truth) == 0 {
		t.Fatal("ss saw no established connection")
	}
	slices.Sort(truth)
	ssMedian := truth[len(truth)/2]
	p50, ok50 := c.SRTT.Quantile(0.5)
	p99, ok99 := c.SRTT.Quantile(0.99)
	conn, okConn := c.Connect.Quantile(0.99)
	t.Logf("%s rounds: agent srtt p50 %.0fµs p99 %.0fµs over %d samples, ss srtt median %.0fµs (%.0f..%.0f), connect p99 %.0fµs",
		rounds, p50, p99, c.SRTT.Count, ssMedian, truth[0], truth[len(truth)-1], conn)
	if !ok50 || !ok99 || c.SRTT.Count < 100 {
		t.Fatalf("too few RTT samples: %d", c.SRTT.Count)
	}
	// Log2 buckets make any quantile exact to a factor of two; the kernel's
	// srtt that ss shows must lie in what the agent saw.
	if ssMedian < p50/2 || ssMedian > p99*2 {
		t.Errorf("ss srtt median %.0fµs outside [p50/2, 2*p99] = [%.0f, %.0f]µs", ssMedian, p50/2, 2*p99)
	}
	if b := histogram.Bucket(uint64(ssMedian)); c.SRTT.Buckets[b] == 0 &&
		(b == 0 || c.SRTT.Buckets[b-1] == 0) && (b == histogram.Buckets-1 || c.SRTT.Buckets[b+1] == 0) {
		t.Errorf("no agent sample within one bucket of ss's median %.0fµs: %v", ssMedian, c.SRTT.Buckets)
	}
	if !okConn || c.Connect.Count != 1 || conn <= 0 || conn > 1e6 {
		t.Errorf("connect latency: %d samples, p99 %.0fµs; want 1 sample under 1s", c.Connect.Count, conn)
	}
	if c.RxBytes < 100*1024 || c.TxBytes < 100*1024 {
		t.Errorf("rx %d tx %d bytes for a busy ping-pong", c.RxBytes, c.TxBytes)
	}
}

// TestNoCrossAttribution checks that work one cgroup causes is never
// charged to another: loopback traffic received in softirq while the
// sender's task runs, and page cache evicted by another cgroup's reclaim.
func TestNoCrossAttribution(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	g := cgtest.NewGroup(t, r.layout)

	t.Run("network", func(t *testing.T) {
		a, b := g.Child("net-a"), g.Child("net-b")
		receiver, sender := a.Start(), b.Start()
		addr := receiver.Do("sink")
		r.sample()
		const payload = 64 * mib
		sender.Do("send %s %d", addr, payload)
		time.Sleep(100 * time.Millisecond) // let the receiver drain its socket
		s := r.sample()
		ca, cb := r.cgroup(s, a.Path), r.cgroup(s, b.Path)
		t.Logf("receiver rx %d tx %d, sender rx %d tx %d", ca.RxBytes, ca.TxBytes, cb.RxBytes, cb.TxBytes)
		if ca.RxBytes < payload {
			t.Errorf("receiver got %d bytes, want at least %d", ca.RxBytes, payload)
		}
		if cb.TxBytes < payload {
			t.Errorf("sender sent %d bytes, want at least %d", cb.TxBytes, payload)
		}
		// What the other side carries is acknowledgements only.
		if ca.TxBytes > payload/20 || cb.RxBytes > payload/20 {
			t.Errorf("data counted on the wrong side: receiver tx %d, sender rx %d", ca.TxBytes, cb.RxBytes)
		}
		if cb.Connect.Count != 1 || ca.Connect.Count != 0 {
			t.Errorf("connects: sender %d, receiver %d; want 1 and 0", cb.Connect.Count, ca.Connect.Count)
		}
		// Loopback traffic, all of it.
		if cb.TxClassBytes[probe.TxLoopback] != cb.TxBytes || ca.TxClassBytes[probe.TxLoopback] != ca.TxBytes {
			t.Errorf("loopback bytes: sender %d of %d, receiver %d of %d", cb.TxClassBytes[probe.TxLoopback], cb.TxBytes,
				ca.TxClassBytes[probe.TxLoopback], ca.TxBytes)
		}
	})

	t.Run("page cache eviction", func(t *testing.T) {
		parent := g.Child("mem")
		a, b := parent.Child("a"), parent.Child("b")
		file := cgtest.UncachedFile(t, cgtest.DataDir(t), 128*mib)
		reader, hog := a.Start(), b.Start()
		reader.Do("read %s", file)
		parent.SetMemoryLimit(160 * mib)
		before := r.sample()
		cachedBefore := r.cgroup(before, a.Path).PageCacheBytes

		// The hog's allocations make its own task reclaim a's page cache.
		hog.Do("touch %d", 128*mib)
		s := r.sample()
		ca, cb := r.cgroup(s, a.Path), r.cgroup(s, b.Path)
		truth := a.MemoryStat("file")
		t.Logf("a: page cache %d -> %d (memory.stat %d), evicted %d; b: page cache %d, evicted %d, RSS %d",
			cachedBefore, ca.PageCacheBytes, truth, ca.PageCacheEvictedBytes, cb.PageCacheBytes, cb.PageCacheEvictedBytes, cb.RSSBytes)
		if ca.PageCacheEvictedBytes < 32*mib {
			t.Errorf("a's evictions %d, want at least 32 MiB", ca.PageCacheEvictedBytes)
		}
		if cb.PageCacheEvictedBytes > mib || cb.PageCacheBytes > 4*mib {
			t.Errorf("b charged with a's pages: evicted %d, page cache %d", cb.PageCacheEvictedBytes, cb.PageCacheBytes)
		}
		if d := ca.PageCacheBytes - truth; d > 4*mib || d < -4*mib {
			t.Errorf("a's page cache %d, memory.stat says %d", ca.PageCacheBytes, truth)
		}
	})
}

// TestEgressClasses sends real traffic from a cgroup to loopback, to a
// private address and to a public one (both on a veth pair into a network
// namespace: nothing leaves the machine) and checks each shows in its
// class, and that the classes add up to the bytes sent.
func TestEgressClasses(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	ip := testenv.RequireTool(t, "ip", "apt-get install iproute2")
	ns := newPeerNamespace(t, ip)
	g := cgtest.NewGroup(t, r.layout)
	sink := g.Child("sink").Start()
	sender := g.Child("sender")
	p := sender.Start()
	peer := cgtest.StartCommand(t, exec.Command(ip, "netns", "exec", ns.name, os.Args[0], "-test.run=^$"))

	const payload = 4 * mib
	for _, tt := range []struct {
		name  string
		addr  string
		class int
	}{
		{"loopback", sink.Do("sink"), probe.TxLoopback},
		{"cluster", peer.Do("sink %s", ns.private), probe.TxCluster},
		{"internet", peer.Do("sink %s", ns.public), probe.TxInternet},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r.sample()
			p.Do("send %s %d", tt.addr, payload)
			time.Sleep(300 * time.Millisecond) // until the socket's buffer is sent
			c := r.cgroup(r.sample(), sender.Path)
			var sum uint64
			for _, b := range c.TxClassBytes {
				sum += b
			}
			t.Logf("%s: tx %d bytes: loopback %d, cluster %d, internet %d", tt.addr, c.TxBytes,
				c.TxClassBytes[probe.TxLoopback], c.TxClassBytes[probe.TxCluster], c.TxClassBytes[probe.TxInternet])
			if c.TxClassBytes[tt.class] < payload {
				t.Errorf("%s class: %d bytes, want at least the %d sent", tt.name, c.TxClassBytes[tt.class], payload)
			}
			if sum != c.TxBytes {
				t.Errorf("classes add up to %d bytes, tx is %d", sum, c.TxBytes)
			}
			if other := c.TxBytes - c.TxClassBytes[tt.class]; other > payload/100 {
				t.Errorf("%d bytes in other classes", other)
			}
		})
	}
}

// peerNamespace is a network namespace at the other end of a veth pair,
// reachable from the host at a private and at a public address.
type peerNamespace struct {
	name, private, public string
}

func newPeerNamespace(t *testing.T, ip string) *peerNamespace {
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	suffix := strconv.Itoa(os.Getpid() % 100000)
	ns := &peerNamespace{name: "penny-egress-" + suffix,
		// RFC 1918, and TEST-NET-2: documentation, routed nowhere, and
		// outside every private range, so internet to the classifier.
		private: "10.213.77.2", public: "198.51.100.77"}
	veth := "pnyeg" + suffix
	_ = exec.Command(ip, "netns", "del", ns.name).Run()
	_ = exec.Command(ip, "link", "del", veth).Run()
	run("netns", "add", ns.name)
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns.name).Run() })
	run("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
	t.Cleanup(func() { _ = exec.Command(ip, "link", "del", veth).Run() })
	run("addr", "add", "10.213.77.1/24", "dev", veth)
	run("link", "set", veth, "up")
	run("route", "add", ns.public+"/32", "dev", veth)
	for _, args := range [][]string{
		{"addr", "add", ns.private + "/24", "dev", "eth0"},
		{"addr", "add", ns.public + "/32", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "lo", "up"},
		{"route", "add", "default", "via", "10.213.77.1"},
	} {
		run(append([]string{"-n", ns.name}, args...)...)
	}
	return ns
}
