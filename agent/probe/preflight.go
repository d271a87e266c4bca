package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sentinel errors: every error Load returns for a problem on the host wraps
// one of them, and its text says what to do about it.
var (
	ErrPermission = errors.New("not allowed to load eBPF programs")
	ErrNoBTF      = errors.New("kernel BTF is missing")
	ErrTracefs    = errors.New("tracefs is not mounted")
	ErrTracepoint = errors.New("tracepoint missing from this kernel")
)

// Linux capability numbers.
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// CheckCaps checks an effective capability set (CapEff of
// /proc/self/status) for what loading and attaching Penny's programs needs:
// CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) for tracing programs and maps,
// CAP_NET_ADMIN for the cgroup network programs.
func CheckCaps(eff uint64) error {
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	var missing []string
	if !has(capSysAdmin) {
		if !has(capBPF) {
			missing = append(missing, "CAP_BPF")
		}
		if !has(capPerfmon) {
			missing = append(missing, "CAP_PERFMON")
		}
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: missing %s; run penny as root (sudo) or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN",
		ErrPermission, strings.Join(missing, ", "))
}

// effectiveCaps reads CapEff of the current process.
func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read capabilities: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parse CapEff: %w", err)
			}
			return caps, nil
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

// MinKernel is the oldest Linux Penny runs on: its tcp_probe and tp_btf
// programs read a socket's cgroup through sk_cgrp_data.cgroup, which 5.15
// introduced (docs/agent.md#requirements).
const MinKernel = "5.15"

// BTFPath is where the kernel exposes its own BTF.
const BTFPath = "/sys/kernel/btf/vmlinux"

// CheckBTF returns ErrNoBTF when the kernel exposes no BTF at path.
func CheckBTF(path string) error {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s does not exist; Penny needs a kernel >= %s built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels are)",
				ErrNoBTF, path, MinKernel)
		}
		return fmt.Errorf("%w: %v", ErrNoBTF, err)
	}
	return nil
}

// Tracefs mount points the kernel documents, the first one preferred.
var tracefsPaths = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// EnsureTracefs returns the tracefs directory, mounting tracefs at
// /sys/kernel/tracing when no tracefs is mounted.
func EnsureTracefs(log *slog.Logger) (string, error) {
	return ensureTracefs(log, tracefsPaths)
}

func ensureTracefs(log *slog.Logger, paths []string) (string, error) {
	for i, p := range paths {
		if isFS(p, unix.TRACEFS_MAGIC) || (i > 0 && hasEvents(p)) {
			return p, nil
		}
	}
	p := paths[0]
	if err := unix.Mount("nodev", p, "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("%w at %s and mounting it failed (%v); mount it with 'mount -t tracefs nodev %s' or, in a container, mount the host's %s",
			ErrTracefs, p, err, p, p)
	}
	log.Info("mounted tracefs", "path", p)
	return p, nil
}

// EnsureBPFFS mounts the BPF filesystem at /sys/fs/bpf when it is missing.
// Penny pins nothing today, so failing to mount it is only logged.
func EnsureBPFFS(log *slog.Logger) {
	const p = "/sys/fs/bpf"
	if isFS(p, unix.BPF_FS_MAGIC) {
		return
	}
	if err := unix.Mount("bpf", p, "bpf", 0, ""); err != nil {
		log.Debug("bpffs not mounted and mounting failed; Penny does not need it", "path", p, "err", err)
		return
	}
	log.Info("mounted bpffs", "path", p)
}

func isFS(path string, magic int64) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && int64(st.Type) == magic
}

func hasEvents(p string) bool {
	_, err := os.Stat(p + "/events")
	return err == nil
}

// Tracepoint is one kernel tracepoint a program attaches to.
type Tracepoint struct {
	Group, Name string
	// Needed says what the tracepoint is for, in the error when it is missing.
	Needed string
	// Optional tracepoints only disable one metric when missing.
	Optional bool
}

func (t Tracepoint) String() string { return t.Group + ":" + t.Name }

// CheckTracepoints returns the optional tracepoints that are missing, or an
// error wrapping ErrTracepoint for the first required one that is missing.
func CheckTracepoints(tracefs string, tps []Tracepoint) (missingOptional []Tracepoint, err error) {
	for _, tp := range tps {
		_, statErr := os.Stat(tracefs + "/events/" + tp.Group + "/" + tp.Name)
		if statErr == nil {
			continue
		}
		if !errors.Is(statErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("check tracepoint %s: %w", tp, statErr)
		}
		if tp.Optional {
			missingOptional = append(missingOptional, tp)
			continue
		}
		return nil, fmt.Errorf("%w: %s (needed for %s); Penny needs Linux >= %s with this tracepoint",
			ErrTracepoint, tp, tp.Needed, MinKernel)
	}
	return missingOptional, nil
}
