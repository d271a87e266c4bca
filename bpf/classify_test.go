package bpf

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/pennyhq/penny/internal/testenv"
)

// Destination classes, as enum tx_class in penny.h.
const (
	txLoopback = 1
	txCluster  = 2
	txInternet = 3
)

// evTx is EV_TX in penny.h; evSlotsShift is EV_SLOTS_SHIFT.
const (
	evTx         = 3
	evSlotsShift = 14
)

// TestEgressClass feeds packets to the real cgroup_skb egress program
// (BPF_PROG_TEST_RUN) and reads the class it logged for each: the kernel's
// classifier of destination addresses, address by address.
func TestEgressClass(t *testing.T) {
	testenv.RequireRoot(t, "it loads and runs eBPF programs")
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	o := loadNetForTest(t)
	tests := []struct {
		dst  string
		want uint64
	}{
		{"127.0.0.1", txLoopback},
		{"127.255.255.254", txLoopback},
		{"10.0.0.1", txCluster},
		{"10.255.255.255", txCluster},
		{"172.16.0.1", txCluster},
		{"172.31.255.255", txCluster},
		{"172.15.255.255", txInternet},
		{"172.32.0.0", txInternet},
		{"192.168.1.10", txCluster},
		{"192.167.255.255", txInternet},
		{"192.169.0.1", txInternet},
		{"100.64.0.1", txCluster},
		{"100.127.255.255", txCluster},
		{"100.63.255.255", txInternet},
		{"100.128.0.0", txInternet},
		{"169.254.169.254", txCluster},
		{"169.253.0.1", txInternet},
		{"8.8.8.8", txInternet},
		{"11.0.0.1", txInternet},
		{"128.0.0.1", txInternet},
		{"::1", txLoopback},
		{"::", txInternet},
		{"::2", txInternet},
		{"fc00::1", txCluster},
		{"fd12:3456:789a::1", txCluster},
		{"fe80::1", txCluster},
		{"febf:ffff::1", txCluster},
		{"fec0::1", txInternet},
		{"fbff::1", txInternet},
		{"2001:4860:4860::8888", txInternet},
		{"100::1", txInternet},
		// An IPv4-mapped address never is an IPv6 packet's destination
		// (the kernel sends IPv4), so it is not unwrapped.
		{"::ffff:127.0.0.1", txInternet},
	}
	for _, tt := range tests {
		t.Run(tt.dst, func(t *testing.T) {
			rec := o.send(t, packet(t, netip.MustParseAddr(tt.dst)))
			if rec.Kind != evTx {
				t.Fatalf("record kind %d, want %d (EV_TX)", rec.Kind, evTx)
			}
			if rec.Val2 != tt.want {
				t.Errorf("class of %s = %d, want %d", tt.dst, rec.Val2, tt.want)
			}
		})
	}
}

// netRig is the net programs loaded on their own, with an event log sized
// for this machine.
type netRig struct {
	NetObjects
	ncpu  int
	heads []uint64
}

func loadNetForTest(t *testing.T) *netRig {
	t.Helper()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := LoadNet()
	if err != nil {
		t.Fatal(err)
	}
	spec.Maps["events"].MaxEntries = uint32(ncpu << evSlotsShift)
	spec.Maps["event_cursors"].MaxEntries = uint32(ncpu)
	r := &netRig{ncpu: ncpu, heads: make([]uint64, ncpu)}
	if err := spec.LoadAndAssign(&r.NetObjects, nil); err != nil {
		t.Fatalf("load: %+v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// send runs the egress program on pkt and returns the one record it logged.
func (r *netRig) send(t *testing.T, pkt []byte) NetEvent {
	t.Helper()
	ret, err := r.SkbEgress.Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if ret != 1 {
		t.Fatalf("egress program returned %d, want 1 (pass)", ret)
	}
	var (
		got   []NetEvent
		saw   int
		value NetEventCursor
	)
	for cpu := range r.ncpu {
		if err := r.EventCursors.Lookup(uint32(cpu), &value); err != nil {
			t.Fatal(err)
		}
		for ; r.heads[cpu] < value.Head; r.heads[cpu]++ {
			var ev NetEvent
			idx := uint32(cpu<<evSlotsShift) | uint32(r.heads[cpu]&(1<<evSlotsShift-1))
			if err := r.Events.Lookup(idx, &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
			saw++
		}
	}
	if saw != 1 {
		t.Fatalf("the program logged %d records, want 1 (has the test's task a cgroup?)", saw)
	}
	return got[0]
}

// packet returns an Ethernet frame carrying an IP packet to dst with a
// 32-byte payload, as BPF_PROG_TEST_RUN takes it (it strips the Ethernet
// header: a cgroup_skb program sees the network header first).
func packet(t *testing.T, dst netip.Addr) []byte {
	t.Helper()
	eth := make([]byte, 14)
	payload := make([]byte, 32)
	if dst.Is4() {
		binary.BigEndian.PutUint16(eth[12:], 0x0800)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+len(payload)))
		ip[8], ip[9] = 64, 17 // TTL, UDP
		copy(ip[12:], []byte{192, 0, 2, 1})
		a := dst.As4()
		copy(ip[16:], a[:])
		return append(append(eth, ip...), payload...)
	}
	binary.BigEndian.PutUint16(eth[12:], 0x86dd)
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(payload)))
	ip[6], ip[7] = 17, 64 // next header UDP, hop limit
	src := netip.MustParseAddr("2001:db8::1").As16()
	copy(ip[8:], src[:])
	a := dst.As16()
	copy(ip[24:], a[:])
	return append(append(eth, ip...), payload...)
}
