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
