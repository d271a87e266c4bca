package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/bpf"
)

// Config says where to attach.
type Config struct {
	// CgroupV2 is the mount point of the cgroup v2 hierarchy; the network
	// programs attach to its root and so see every socket on the host.
	CgroupV2 string
	// SkipRequests leaves the request programs (bpf/requests.bpf.c)
	// unloaded: no request is counted, and no server socket's segment
	// is read.
	SkipRequests bool
	Logger       *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks that CgroupV2 is a cgroup v2 mount.
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
	{Group: "readahead", Name: "page_cache_sync_ra", Needed: "the page cache hit ratio", Optional: true},
	{Group: "readahead", Name: "page_cache_async_ra", Needed: "the page cache hit ratio", Optional: true},
	{Group: "readahead", Name: "page_cache_ra_order", Needed: "the page cache hit ratio", Optional: true},
	{Group: "tcp", Name: "tcp_probe", Needed: "TCP round-trip times"},
	{Group: "tcp", Name: "tcp_retransmit_skb", Needed: "TCP retransmits"},
	{Group: "sock", Name: "inet_sock_set_state", Needed: "TCP connect latency"},
}

// program is one program and where it attaches.
type program struct {
	name string
	tp   Tracepoint
	// btfTP: a BTF-enabled raw tracepoint (tp_btf), whose typed arguments
	// the program reads with plain loads; attached with
	// BPF_RAW_TRACEPOINT_OPEN, which needs kernel BTF but no trampolines.
	// Otherwise a classic tracepoint.
	btfTP bool
	prog  *ebpf.Program
}

func (p *Probes) programs() []program {
	tp := func(name string) Tracepoint {
		for _, t := range Tracepoints {
			if t.Name == name {
				return t
			}
		}
		panic("probe: unknown tracepoint " + name) // a programming error
	}
	return []program{
		{"rss_stat", tp("rss_stat"), false, p.mem.RssStat},
		{"process_exit", tp("sched_process_exit"), true, p.mem.ProcessExit},
		{"cgroup_attach", tp("cgroup_attach_task"), false, p.mem.CgroupAttach},
		{"cache_add", tp("mm_filemap_add_to_page_cache"), true, p.pc.CacheAdd},
		{"cache_delete", tp("mm_filemap_delete_from_page_cache"), true, p.pc.CacheDelete},
		{"get_pages", tp("mm_filemap_get_pages"), true, p.pc.GetPages},
		{"map_pages", tp("mm_filemap_map_pages"), true, p.pc.MapPages},
		{"fault", tp("mm_filemap_fault"), true, p.pc.Fault},
		{"sync_ra", tp("page_cache_sync_ra"), true, p.pc.SyncRa},
		{"async_ra", tp("page_cache_async_ra"), true, p.pc.AsyncRa},
		{"ra_order", tp("page_cache_ra_order"), true, p.pc.RaOrder},
		{"tcp_probe", tp("tcp_probe"), true, p.net.TcpProbe},
		{"tcp_retransmit", tp("tcp_retransmit_skb"), true, p.net.TcpRetransmit},
		{"sock_set_state", tp("inet_sock_set_state"), true, p.net.SockSetState},
	}
}

// Probes are the loaded and attached programs and their maps.
type Probes struct {
	logger *slog.Logger
	mu     sync.Mutex // guards log and closed
	log    *eventLog
	closed bool
	mem    bpf.MemoryObjects
	pc     bpf.PagecacheObjects
	net    bpf.NetObjects
	req    bpf.RequestsObjects
	links  []link.Link
	progs  map[string]*ebpf.Program

	// The RSS watches (watch.go): watched are the cgroups armed last.
	watchMu sync.Mutex
	watched map[uint64]struct{}
	changes *ringbuf.Reader

	// HitRatio is false when the kernel lacks the tracepoints that count
	// page cache accesses (Linux < 6.10); hit ratios are then unknown.
	HitRatio bool
	// Requests is false when the kernel cannot run the request programs
	// (they need bpf_loop, Linux >= 5.17); no request is then counted.
	Requests bool
}

// Load checks the host, loads every program and attaches it. On error
// nothing stays loaded.
func Load(ctx context.Context, cfg Config) (_ *Probes, err error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
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
	p := &Probes{logger: log, HitRatio: len(missing) == 0, progs: map[string]*ebpf.Program{}, watched: map[uint64]struct{}{}}
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
	if err := p.load(cfg.SkipRequests); err != nil {
		return nil, err
	}

	for _, a := range p.programs() {
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
		{"req_sockops", ebpf.AttachCGroupSockOps, p.req.ReqSockops},
		{"req_ingress", ebpf.AttachCGroupInetIngress, p.req.ReqSkbIngress},
		{"req_egress", ebpf.AttachCGroupInetEgress, p.req.ReqSkbEgress},
	} {
		if a.prog == nil {
			continue // not loaded: requests are not counted
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cfg.CgroupV2, Attach: a.typ, Program: a.prog})
		if err != nil {
			return nil, attachError("cgroup "+cfg.CgroupV2+" "+a.typ.String(), err)
		}
		p.links = append(p.links, l)
		p.progs[a.name] = a.prog
	}
	log.Debug("eBPF programs attached", "programs", len(p.progs), "hit_ratio", p.HitRatio, "requests", p.Requests)
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

// load loads the four collections, which share one event log: its maps
// are sized for this machine's CPUs and created with the memory programs.
func (p *Probes) load(skipRequests bool) error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count CPUs: %w", err)
	}
	groupDead, err := exitHasGroupDead()
	if err != nil {
		return err
	}
	// load loads one collection, sizing its event log maps for ncpu.
	load := func(what string, spec func() (*ebpf.CollectionSpec, error), objs any,
		opts *ebpf.CollectionOptions, set func(*ebpf.CollectionSpec) error) error {
		return loadObjects(what, func() error {
			s, err := spec()
			if err != nil {
				return err
			}
			if err := sizeEventLog(s, ncpu); err != nil {
				return err
			}
			if set != nil {
				if err := set(s); err != nil {
					return err
				}
			}
			return s.LoadAndAssign(objs, opts)
		})
	}
	if err := load("memory", bpf.LoadMemory, &p.mem, nil, func(s *ebpf.CollectionSpec) error {
		return s.Variables["exit_has_group_dead"].Set(groupDead)
	}); err != nil {
		return err
	}
	shared := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		"events": p.mem.Events, "event_cursors": p.mem.EventCursors,
	}}
	if err := load("pagecache", bpf.LoadPagecache, &p.pc, shared, nil); err != nil {
		return err
	}
	if err := load("net", bpf.LoadNet, &p.net, shared, nil); err != nil {
		return err
	}
	if skipRequests {
		p.logger.Debug("requests are not counted: turned off")
	} else if err := RequestsSupported(); err != nil {
		p.logger.Warn("requests are not counted: the kernel lacks what the request programs need (Linux >= 5.17)", "err", err)
	} else {
		if err := load("requests", bpf.LoadRequests, &p.req, shared, nil); err != nil {
			return err
		}
		p.Requests = true
	}
	if p.changes, err = ringbuf.NewReader(p.mem.RssChanges); err != nil {
		return fmt.Errorf("read rss changes: %w", err)
	}
	p.log, err = newEventLog(ncpu, ringShift(ncpu), p.mem.Events, p.mem.EventCursors)
	return err
}

// RequestsSupported reports, as an error, what the kernel lacks to run the
// request programs (bpf/requests.bpf.c): bpf_loop in cgroup_skb programs
// (Linux >= 5.17), socket-local storage in sock_ops programs.
func RequestsSupported() error {
	for _, c := range []struct {
		pt ebpf.ProgramType
		fn asm.BuiltinFunc
	}{
		{ebpf.CGroupSKB, asm.FnLoop},
		{ebpf.CGroupSKB, asm.FnSkStorageGet},
		{ebpf.SockOps, asm.FnSkStorageGet},
	} {
		if err := features.HaveProgramHelper(c.pt, c.fn); err != nil {
			return fmt.Errorf("%s in %s programs: %w", c.fn, c.pt, err)
		}
	}
	return nil
}

// exitHasGroupDead reports whether the kernel's sched_process_exit
// tracepoint passes group_dead (Linux >= 6.16), from its BTF.
func exitHasGroupDead() (bool, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrNoBTF, err)
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_sched_process_exit", &td); err != nil {
		return false, fmt.Errorf("%w: sched:sched_process_exit (needed for resident memory): %v", ErrTracepoint, err)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return false, fmt.Errorf("unexpected type of btf_trace_sched_process_exit: %v", td.Type)
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok {
		return false, fmt.Errorf("unexpected type of btf_trace_sched_process_exit: %v", ptr.Target)
	}
	return len(proto.Params) >= 3, nil // (void *, struct task_struct *, bool)
}

// Close detaches and unloads everything.
func (p *Probes) Close() error {
	var errs []error
	if p.changes != nil {
		errs = append(errs, p.changes.Close()) // wakes RSSChange
	}
	p.mu.Lock()
	p.closed = true
	if p.log != nil {
		errs = append(errs, p.log.close())
	}
	p.mu.Unlock()
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	errs = append(errs, p.mem.Close(), p.pc.Close(), p.net.Close(), p.req.Close())
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
