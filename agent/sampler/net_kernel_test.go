package sampler_test

import (
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/histogram"
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
	r := newRig(t, layout(t))
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
	r := newRig(t, layout(t))
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
