package probe_test

import (
	"net"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/probetest"
)

// TestEventLogFullLosesConnects fills this CPU's event log, which nothing
// drains until the next snapshot, then connects on the same CPU. The
// connect records have no slow path, so they are lost: the snapshot must
// count them as lost to a full event log, not as lost to a full map.
func TestEventLogFullLosesConnects(t *testing.T) {
	p := probetest.Load(t, cgtest.Layout(t), probe.Config{})
	if _, err := p.Snapshot(); err != nil { // start from an empty log
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lnAddr := ln.Addr().(*net.TCPAddr)

	// One thread on one CPU: every event below lands in that CPU's ring.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
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
	defer func() { _ = unix.SchedSetaffinity(0, &all) }()

	// Each datagram sent is an event of the cgroup_skb egress program; a
	// ring holds 16384 (EV_SLOTS in bpf/penny.h).
	u, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(u)
	discard := &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}
	for range 20000 {
		if err := unix.Sendto(u, []byte{0}, 0, discard); err != nil && err != unix.ECONNREFUSED {
			t.Fatalf("send: %v", err)
		}
	}
	// connect(2) moves the socket to SYN_SENT on this CPU: a connect record.
	const connects = 10
	for range connects {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Connect(s, &unix.SockaddrInet4{Port: lnAddr.Port, Addr: [4]byte{127, 0, 0, 1}})
		unix.Close(s)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
	}

	snap, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Overflow["net"] == 0 {
		t.Fatalf("the event log of CPU %d never filled: no overflow counted (drops %v)", cpu, snap.Drops)
	}
	if snap.LogFullDrops["net"] < connects {
		t.Errorf("connect records lost to the full event log: %d counted, want at least %d", snap.LogFullDrops["net"], connects)
	}
	if snap.Drops["net"] != 0 {
		t.Errorf("%d network events counted as lost to a full map; no map was full", snap.Drops["net"])
	}
}
