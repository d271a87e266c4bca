package bpf

import (
	"testing"

	"github.com/cilium/ebpf/rlimit"

	"github.com/pennyhq/penny/internal/testenv"
)

// TestLoad checks that the committed objects pass the verifier of the
// running kernel. Attaching is tested by the agent's probe package.
func TestLoad(t *testing.T) {
	testenv.RequireRoot(t, "it loads eBPF programs")
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	t.Run("memory", func(t *testing.T) {
		var o MemoryObjects
		if err := LoadMemoryObjects(&o, nil); err != nil {
			t.Fatalf("load: %+v", err)
		}
		o.Close()
	})
	t.Run("pagecache", func(t *testing.T) {
		var o PagecacheObjects
		if err := LoadPagecacheObjects(&o, nil); err != nil {
			t.Fatalf("load: %+v", err)
		}
		o.Close()
	})
	t.Run("net", func(t *testing.T) {
		var o NetObjects
		if err := LoadNetObjects(&o, nil); err != nil {
			t.Fatalf("load: %+v", err)
		}
		o.Close()
	})
	t.Run("requests", func(t *testing.T) {
		var o RequestsObjects
		if err := LoadRequestsObjects(&o, nil); err != nil {
			t.Fatalf("load: %+v", err)
		}
		o.Close()
	})
}
