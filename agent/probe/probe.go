package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/bpf"
)

// Config says where to attach.
type Config struct {
	// CgroupV2 is the mount point of the cgroup v2 hierarchy; the network
	// programs attach to its root and so see every socket on the host.
	CgroupV2 string
	Logger   *slog.Logger
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.CgroupV2 == "" {
		return errors.New("probe: no cgroup v2 mount given")
	}
	if st, err := os.Stat(c.CgroupV2 + "/cgroup.procs"); err != nil || st.IsDir() {
		return fmt.Errorf("probe: %s is not a cgroup v2 mount", c.CgroupV2)
	}
	return nil
}

// Tracepoints are the tracepoints Penny's programs attach to.
var Tracepoints = []Tracepoint{
	{Group: "kmem", Name: "rss_stat", Needed: "resident memory"},
	{Group: "sched", Name: "sched_process_exit", Needed: "resident memory"},
	{Group: "cgroup", Name: "cgroup_attach_task", Needed: "resident memory"},
	{Group: "filemap", Name: "mm_filemap_add_to_page_cache", Needed: "page cache"},
	{Group: "filemap", Name: "mm_filemap_delete_from_page_cache", Needed: "page cache"},
	{Group: "filemap", Name: "mm_filemap_get_pages", Needed: "the page cache hit ratio", Optional: true},
	{Group: "filemap", Name: "mm_filemap_map_pages", Needed: "the page cache hit ratio", Optional: true},
	{Group: "filemap", Name: "mm_filemap_fault", Needed: "the page cache hit ratio", Optional: true},
	{Group: "tcp", Name: "tcp_probe", Needed: "TCP round-trip times"},
	{Group: "tcp", Name: "tcp_retransmit_skb", Needed: "TCP retransmits"},
	{Group: "sock", Name: "inet_sock_set_state", Needed: "TCP connect latency"},
}

// Probes are the loaded and attached programs and their maps.
type Probes struct {
	log   *slog.Logger
	mem   bpf.MemoryObjects
	pc    bpf.PagecacheObjects
	net   bpf.NetObjects
	links []link.Link
	progs map[string]*ebpf.Program

	// HitRatio is false when the kernel lacks the tracepoints that count
	// page cache accesses (Linux < 6.10); hit ratios are then unknown.
	HitRatio bool
}

// Load checks the host, loads every program and attaches it. On error
// nothing stays loaded.
func Load(ctx context.Context, cfg Config) (_ *Probes, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	caps, err := effectiveCaps()
	if err != nil {
		return nil, err
	}
	if err := CheckCaps(caps); err != nil {
		return nil, err
	}
	if err := CheckBTF(BTFPath); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise memlock limit: %w", err)
	}
	tracefs, err := EnsureTracefs(log)
	if err != nil {
		return nil, err
	}
	EnsureBPFFS(log)
	missing, err := CheckTracepoints(tracefs, Tracepoints)
	if err != nil {
		return nil, err
	}
	p := &Probes{log: log, HitRatio: len(missing) == 0, progs: map[string]*ebpf.Program{}}
	for _, tp := range missing {
		log.Warn("tracepoint missing: page cache hit ratio unavailable (needs Linux >= 6.10)", "tracepoint", tp.String())
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := loadObjects("memory", func() error { return bpf.LoadMemoryObjects(&p.mem, nil) }); err != nil {
		return nil, err
	}
	if err := loadObjects("pagecache", func() error { return bpf.LoadPagecacheObjects(&p.pc, nil) }); err != nil {
		return nil, err
	}
	if err := loadObjects("net", func() error { return bpf.LoadNetObjects(&p.net, nil) }); err != nil {
		return nil, err
	}

	// Tracepoints attach the classic way; tp_btf programs (BTF-enabled raw
	// tracepoints, typed arguments read with plain loads) through
	// BPF_RAW_TRACEPOINT_OPEN, which needs kernel BTF but no trampolines.
	attach := []struct {
		name  string
		tp    Tracepoint
		btfTP bool
		prog  *ebpf.Program
	}{
		{"rss_stat", Tracepoints[0], false, p.mem.RssStat},
		{"process_exit", Tracepoints[1], false, p.mem.ProcessExit},
		{"cgroup_attach", Tracepoints[2], false, p.mem.CgroupAttach},
		{"cache_add", Tracepoints[3], true, p.pc.CacheAdd},
		{"cache_delete", Tracepoints[4], true, p.pc.CacheDelete},
		{"get_pages", Tracepoints[5], true, p.pc.GetPages},
		{"map_pages", Tracepoints[6], true, p.pc.MapPages},
		{"fault", Tracepoints[7], true, p.pc.Fault},
		{"tcp_probe", Tracepoints[8], true, p.net.TcpProbe},
		{"tcp_retransmit", Tracepoints[9], true, p.net.TcpRetransmit},
		{"sock_set_state", Tracepoints[10], true, p.net.SockSetState},
	}
	for _, a := range attach {
		if a.tp.Optional && !p.HitRatio {
			continue
		}
		var l link.Link
		if a.btfTP {
			l, err = link.AttachTracing(link.TracingOptions{Program: a.prog})
		} else {
			l, err = link.Tracepoint(a.tp.Group, a.tp.Name, a.prog, nil)
		}
		if err != nil {
			return nil, attachError(a.tp.String(), err)
		}
		p.links = append(p.links, l)
		p.progs[a.name] = a.prog
	}
	for _, a := range []struct {
		name string
		typ  ebpf.AttachType
		prog *ebpf.Program
	}{
		{"skb_ingress", ebpf.AttachCGroupInetIngress, p.net.SkbIngress},
		{"skb_egress", ebpf.AttachCGroupInetEgress, p.net.SkbEgress},
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cfg.CgroupV2, Attach: a.typ, Program: a.prog})
		if err != nil {
			return nil, attachError("cgroup "+cfg.CgroupV2+" "+a.typ.String(), err)
		}
		p.links = append(p.links, l)
		p.progs[a.name] = a.prog
	}
	log.Debug("eBPF programs attached", "programs", len(p.progs), "hit_ratio", p.HitRatio)
	return p, nil
}

func loadObjects(what string, load func() error) error {
	err := load()
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: the kernel refused to load the %s programs (%v); run penny as root", ErrPermission, what, err)
	}
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("load %s programs: the kernel's verifier rejected them: %+v", what, ve)
	}
	return fmt.Errorf("load %s programs: %w", what, err)
}

func attachError(what string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: attach to %s: %v; run penny as root", ErrPermission, what, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s: %v", ErrTracepoint, what, err)
	}
	return fmt.Errorf("attach to %s: %w", what, err)
}

// Close detaches and unloads everything.
func (p *Probes) Close() error {
	var errs []error
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	errs = append(errs, p.mem.Close(), p.pc.Close(), p.net.Close())
	return errors.Join(errs...)
}

// ProgramStat is the kernel's accounting of one program, kept only while
// statistics are enabled (EnableStats).
type ProgramStat struct {
	Name     string
	RunTime  uint64 // nanoseconds
	RunCount uint64
}

// EnableStats turns on the kernel's run time accounting of eBPF programs
// (kernel.bpf_stats_enabled) until the returned closer is closed. It costs a
// few nanoseconds per event.
func EnableStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable eBPF statistics: %w", err)
	}
	return c, nil
}

// ProgramStats returns the run time and run count of every attached
// program, in a stable order.
func (p *Probes) ProgramStats() ([]ProgramStat, error) {
	out := make([]ProgramStat, 0, len(p.progs))
	for _, name := range sortedKeys(p.progs) {
		st, err := p.progs[name].Stats()
		if err != nil {
			return nil, fmt.Errorf("stats of %s: %w", name, err)
		}
		out = append(out, ProgramStat{Name: name, RunTime: uint64(st.Runtime.Nanoseconds()), RunCount: st.RunCount})
	}
	return out, nil
}
