// Package freeport hands out loopback addresses with a free TCP port, for
// tests and benchmark drivers that start servers in other processes and
// must name their address before they listen.
//
// The port is free when it is returned; another process can take it before
// the server binds it, which on a test machine is rare enough to accept.
package freeport

import (
	"fmt"
	"net"
	"testing"
)

// Addr returns "127.0.0.1:<port>" for a port that is free now.
func Addr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("freeport: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// T is Addr for a test, failing it when no port can be had.
func T(t testing.TB) string {
	t.Helper()
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
