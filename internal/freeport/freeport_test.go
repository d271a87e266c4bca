package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrIsBindable(t *testing.T) {
	addr := T(t)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
	if other := T(t); other == "" {
		t.Fatal("empty address")
	}
}

// The ports handed out are below the ephemeral range, where outgoing
// connections never take them, and never the same twice.
func TestAddrBelowEphemeralRange(t *testing.T) {
	seen := map[string]bool{}
	first := ephemeralStart()
	for range 200 {
		addr := T(t)
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.Atoi(p); first-lowest >= 1000 && (n < lowest || n >= first) {
			t.Fatalf("port %d outside [%d, %d)", n, lowest, first)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
	}
}
