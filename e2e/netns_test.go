//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// The test network: a bridge on the host with bridgeIP, and one network
// namespace per test host, each with a veth on the bridge. Traffic stays
// on it: nothing is routed off the machine.
const (
	bridge   = "pe2e0"
	bridgeIP = "10.77.0.1"
	netmask  = "/24"
)

// testHost is a network namespace with one address on the test bridge.
type testHost struct {
	NS string
	IP string
	// Veth is the host's end of its link, on the bridge.
	Veth string
}

// run runs a command and fails the test with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newBridge creates the test bridge, removing what a crashed run left.
func newBridge(t *testing.T) {
	t.Helper()
	_ = exec.Command("ip", "link", "del", bridge).Run()
	run(t, "ip", "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	run(t, "ip", "addr", "add", bridgeIP+netmask, "dev", bridge)
	run(t, "ip", "link", "set", bridge, "up")
}

// newTestHost creates host number i (1..200) on the bridge: namespace
// penny-e2e-i at 10.77.0.(10+i).
func newTestHost(t *testing.T, i int) *testHost {
	t.Helper()
	veth := fmt.Sprintf("pe2e-v%d", i)
	h := &testHost{NS: fmt.Sprintf("penny-e2e-%d", i), IP: fmt.Sprintf("10.77.0.%d", 10+i), Veth: veth}
	_ = exec.Command("ip", "netns", "del", h.NS).Run()
	_ = exec.Command("ip", "link", "del", veth).Run()
	run(t, "ip", "netns", "add", h.NS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", h.NS).Run() })
	run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", veth).Run() })
	run(t, "ip", "link", "set", veth, "master", bridge)
	run(t, "ip", "link", "set", veth, "up")
	for _, args := range [][]string{
		{"addr", "add", h.IP + netmask, "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "lo", "up"},
		{"route", "add", "default", "via", bridgeIP},
	} {
		run(t, "ip", append([]string{"-n", h.NS}, args...)...)
	}
	return h
}

// Command returns a command that runs in the host's namespace.
func (h *testHost) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}
