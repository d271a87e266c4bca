package freeport

import (
	"net"
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
