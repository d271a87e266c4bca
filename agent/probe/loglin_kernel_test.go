package probe

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/bpf"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/histogram"
)

// TestLogLinearBucketInKernel checks the eBPF programs' log-linear bucket
// (loglin_bucket in bpf/penny.h) against its Go mirror on real requests.
// It fills this CPU's event log, which nothing drains until the next
// snapshot, so that the requests answered next on this CPU are counted
// the slow way, in the per-cgroup map; one request at a time, each with
// its own delay, the map's latency sum says what the request measured and
// its buckets which bucket the kernel chose.
func TestLogLinearBucketInKernel(t *testing.T) {
	cgtest.RequireRoot(t)
	l, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), Config{CgroupV2: l.V2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Requests {
		t.Fatal("the request programs are not loaded")
	}
	pinToOneCPU(t)

	// A server socket and its client, in this thread: loopback delivers
	// what one sends in the sender's softirq, on this CPU.
	ln := socket(t, unix.SOCK_STREAM)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	addr, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	cli := socket(t, unix.SOCK_STREAM)
	if err := unix.Connect(cli, addr); err != nil {
		t.Fatal(err)
	}
	srv, _, err := unix.Accept(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(srv)
	if _, err := p.Snapshot(); err != nil { // start from an empty log
		t.Fatal(err)
	}

	// Each datagram sent is an event of the cgroup_skb egress program; a
	// ring holds 16384 (EV_SLOTS in bpf/penny.h).
	u := socket(t, unix.SOCK_DGRAM)
	discard := &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}
	for range 20000 {
		if err := unix.Sendto(u, []byte{0}, 0, discard); err != nil && err != unix.ECONNREFUSED {
			t.Fatalf("send: %v", err)
		}
	}

	r := rand.New(rand.NewPCG(1, 2))
	prev := slowLatency(t, p)
	seen := map[int]bool{}
	lo, hi := uint64(1<<63), uint64(0)
	buf := make([]byte, 1)
	for i := range 40 {
		// Delays from none (a few µs) to 30 ms, even on a log scale: a
		// turn of a plain TCP protocol, data in, then data out.
		delay := time.Duration(0)
		if i > 0 {
			delay = time.Duration(1e3 * float64(int64(1)<<r.IntN(15)) * (1 + r.Float64()))
		}
		if _, err := unix.Write(cli, []byte{'q'}); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Read(srv, buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		if _, err := unix.Write(srv, []byte{'a'}); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Read(cli, buf); err != nil {
			t.Fatal(err)
		}
		cur := slowLatency(t, p)
		d := cur.Delta(&prev)
		prev = cur
		if d.Count != 1 || len(d.Buckets) != 1 {
			t.Fatalf("request %d: %+v counted the slow way, want one request (did the event log fill?)", i, d)
		}
		want := histogram.LogLinearBucket(d.Sum)
		if got := int(d.Buckets[0].Index); got != want {
			t.Errorf("%dµs: the kernel counted it in bucket %d, Go in %d", d.Sum, got, want)
		}
		seen[want] = true
		lo, hi = min(lo, d.Sum), max(hi, d.Sum)
	}
	t.Logf("requests of %d to %dµs, in %d buckets", lo, hi, len(seen))
	if len(seen) < 10 {
		t.Errorf("the requests fell in %d buckets only", len(seen))
	}
}

// slowLatency returns the latency histogram of every cgroup's requests
// counted the slow way, added up.
func slowLatency(t *testing.T, p *Probes) histogram.LogLinear {
	t.Helper()
	var sum histogram.LogLinear
	var id uint64
	var v bpf.RequestsReqStats
	it := p.req.ReqByCgroup.Iterate()
	for it.Next(&id, &v) {
		h := logLinear(&v.Latency.Buckets, v.Latency.Count, v.Latency.Sum)
		sum.Add(&h)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}

// pinToOneCPU keeps the test's goroutine on its thread, and the thread on
// one CPU, until the test ends.
func pinToOneCPU(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	var all, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for !all.IsSet(cpu) {
		cpu++
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.SchedSetaffinity(0, &all) })
}

func socket(t *testing.T, typ int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, typ, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}
