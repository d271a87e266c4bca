package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is the first port handed out; the range ends below the kernel's
// ephemeral ports.
const lowest = 10000

var (
	mu sync.Mutex
	// given holds the ports this process handed out: never twice.
	given = map[int]bool{}
)

// Addr returns "127.0.0.1:<port>" for a port that is free now. The port
// is below the kernel's ephemeral range (net.ipv4.ip_local_port_range):
// the kernel never gives it to an outgoing connection or to a listener on
// port 0, so a server restarted on it finds it free, which a port from
// that range (what listening on port 0 returns) is not: any connection
// of the machine may take it while the server is down.
func Addr() (string, error) {
	first := ephemeralStart()
	if first-lowest < 1000 {
		return kernelPort()
	}
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		p := lowest + rand.IntN(first-lowest)
		if given[p] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		given[p] = true
		return addr, nil
	}
	return "", errors.New("freeport: no free port in 100 tries")
}

// kernelPort is a port the kernel picks: from its ephemeral range.
func kernelPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("freeport: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (32768 when it cannot be read, Linux's default).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
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
