package probe

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pennyhq/penny/internal/testenv"
)

func TestCheckCaps(t *testing.T) {
	bit := func(caps ...uint) uint64 {
		var v uint64
		for _, c := range caps {
			v |= 1 << c
		}
		return v
	}
	tests := []struct {
		name    string
		eff     uint64
		missing string // "" when allowed
	}{
		{"root", ^uint64(0), ""},
		{"sys_admin and net_admin", bit(capSysAdmin, capNetAdmin), ""},
		{"bpf, perfmon and net_admin", bit(capBPF, capPerfmon, capNetAdmin), ""},
		{"unprivileged", 0, "missing CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN;"},
		{"no net_admin", bit(capBPF, capPerfmon), "missing CAP_NET_ADMIN;"},
		{"no perfmon", bit(capBPF, capNetAdmin), "missing CAP_PERFMON;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCaps(tt.eff)
			if tt.missing == "" {
				if err != nil {
					t.Fatalf("CheckCaps = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrPermission) {
				t.Fatalf("CheckCaps = %v, want ErrPermission", err)
			}
			want := "not allowed to load eBPF programs: " + tt.missing + " run penny as root (sudo) or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN"
			if err.Error() != want {
				t.Fatalf("message\n got: %s\nwant: %s", err, want)
			}
		})
	}
}

func TestCheckBTF(t *testing.T) {
	if err := CheckBTF("/nonexistent/vmlinux"); !errors.Is(err, ErrNoBTF) ||
		!strings.Contains(err.Error(), "CONFIG_DEBUG_INFO_BTF=y") {
		t.Fatalf("CheckBTF(missing) = %v", err)
	}
	f := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(f, []byte{1}, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckBTF(f); err != nil {
		t.Fatalf("CheckBTF(present) = %v", err)
	}
}

func TestCheckTracepoints(t *testing.T) {
	tracefs := t.TempDir()
	for _, tp := range []string{"kmem/rss_stat", "filemap/mm_filemap_add_to_page_cache"} {
		if err := os.MkdirAll(filepath.Join(tracefs, "events", tp), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	req := Tracepoint{Group: "kmem", Name: "rss_stat", Needed: "resident memory"}
	opt := Tracepoint{Group: "filemap", Name: "mm_filemap_get_pages", Needed: "the page cache hit ratio", Optional: true}
	absent := Tracepoint{Group: "tcp", Name: "tcp_probe", Needed: "TCP round-trip times"}

	missing, err := CheckTracepoints(tracefs, []Tracepoint{req, opt})
	if err != nil || len(missing) != 1 || missing[0] != opt {
		t.Fatalf("optional missing: %v, %v", missing, err)
	}
	_, err = CheckTracepoints(tracefs, []Tracepoint{req, absent})
	want := "tracepoint missing from this kernel: tcp:tcp_probe (needed for TCP round-trip times); Penny needs Linux >= 5.15 with this tracepoint"
	if !errors.Is(err, ErrTracepoint) || err.Error() != want {
		t.Fatalf("required missing:\n got: %v\nwant: %s", err, want)
	}
}

func TestTracefsMountFailure(t *testing.T) {
	testenv.RequireRoot(t, "it mounts tracefs")
	// A regular file cannot be a mount point: the mount fails.
	f := filepath.Join(t.TempDir(), "tracing")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ensureTracefs(slog.New(slog.DiscardHandler), []string{f})
	if !errors.Is(err, ErrTracefs) {
		t.Fatalf("err = %v, want ErrTracefs", err)
	}
	want := "tracefs is not mounted at " + f + " and mounting it failed (not a directory); mount it with 'mount -t tracefs nodev " + f + "'"
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("message\n got: %s\nwant: %s…", err, want)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Error("empty config accepted")
	}
	if err := (Config{CgroupV2: t.TempDir()}).Validate(); err == nil {
		t.Error("a directory that is not a cgroup v2 mount accepted")
	}
}

func TestTracepointsExistHere(t *testing.T) {
	testenv.RequireRoot(t, "it reads tracefs")
	tracefs, err := EnsureTracefs(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	missing, err := CheckTracepoints(tracefs, Tracepoints)
	if err != nil || len(missing) != 0 {
		t.Fatalf("on this kernel: missing %v, %v", missing, err)
	}
}
