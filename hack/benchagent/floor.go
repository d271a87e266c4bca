package main

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// A hook is where the agent's programs attach. An empty program on each
// (its only instructions: return 0, or 1 where that lets the packet or
// socket operation through) measures, over the same events and in the same
// run, what the hook and the kernel's run-time accounting cost before a
// program does anything: the floor under every figure of the table, which
// moves with the machine (cache pressure, the hypervisor's clock).
type hook struct {
	name string
	typ  ebpf.ProgramType
	// attach is the attach type of tp_btf, cgroup_skb and sockops hooks.
	attach ebpf.AttachType
	// group and event name a classic tracepoint (group/event), event
	// alone a BTF-enabled one (tp_btf).
	group, event string
	ret          int32
}

// hookOf names each program's hook (bpf/*.bpf.c's SEC lines).
var hookOf = map[string]hook{
	"rss_stat":        {name: "kmem/rss_stat", typ: ebpf.TracePoint, group: "kmem", event: "rss_stat"},
	"cgroup_attach":   {name: "cgroup/cgroup_attach_task", typ: ebpf.TracePoint, group: "cgroup", event: "cgroup_attach_task"},
	"process_exit":    rawTP("sched_process_exit"),
	"tcp_probe":       rawTP("tcp_probe"),
	"tcp_retransmit":  rawTP("tcp_retransmit_skb"),
	"sock_set_state":  rawTP("inet_sock_set_state"),
	"cache_add":       rawTP("mm_filemap_add_to_page_cache"),
	"cache_delete":    rawTP("mm_filemap_delete_from_page_cache"),
	"sync_ra":         rawTP("page_cache_sync_ra"),
	"async_ra":        rawTP("page_cache_async_ra"),
	"ra_order":        rawTP("page_cache_ra_order"),
	"get_pages":       rawTP("mm_filemap_get_pages"),
	"map_pages":       rawTP("mm_filemap_map_pages"),
	"fault":           rawTP("mm_filemap_fault"),
	"skb_ingress":     skbHook,
	"req_skb_ingress": skbHook,
	"skb_egress":      {name: "cgroup_skb/egress", typ: ebpf.CGroupSKB, attach: ebpf.AttachCGroupInetEgress, ret: 1},
	"req_skb_egress":  {name: "cgroup_skb/egress", typ: ebpf.CGroupSKB, attach: ebpf.AttachCGroupInetEgress, ret: 1},
	"req_sockops":     {name: "sockops", typ: ebpf.SockOps, attach: ebpf.AttachCGroupSockOps, ret: 1},
}

var skbHook = hook{name: "cgroup_skb/ingress", typ: ebpf.CGroupSKB, attach: ebpf.AttachCGroupInetIngress, ret: 1}

func rawTP(event string) hook {
	return hook{name: "tp_btf/" + event, typ: ebpf.Tracing, attach: ebpf.AttachTraceRawTp, event: event}
}

// floors holds the empty programs, by hook name.
type floors struct {
	progs map[string]*program
	links []link.Link
}

// attachFloors attaches an empty program to the hook of every program in
// progs, after the agent's: on each hook they run after the agent's
// programs (in the order attached), so the agent's figures are the same as
// without them. cgroupV2 is the cgroup the agent attaches to. A hook that
// cannot take one is left without a floor (printed as "-").
func attachFloors(progs []*program, cgroupV2 string) (*floors, error) {
	f := &floors{progs: map[string]*program{}}
	var errs []error
	for _, p := range progs {
		h, ok := hookOf[p.name]
		if !ok || f.progs[h.name] != nil {
			continue
		}
		fp, l, err := attachEmpty(h, cgroupV2)
		if err != nil {
			errs = append(errs, fmt.Errorf("empty program on %s: %w", h.name, err))
			continue
		}
		f.progs[h.name] = &program{name: "empty " + h.name, prog: fp}
		f.links = append(f.links, l)
	}
	return f, errors.Join(errs...)
}

func attachEmpty(h hook, cgroupV2 string) (*ebpf.Program, link.Link, error) {
	spec := &ebpf.ProgramSpec{
		Name: "penny_floor", Type: h.typ, AttachType: h.attach, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, h.ret), asm.Return()},
	}
	if h.typ == ebpf.Tracing {
		spec.AttachTo = h.event
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return nil, nil, err
	}
	var l link.Link
	switch h.typ {
	case ebpf.TracePoint:
		l, err = link.Tracepoint(h.group, h.event, prog, nil)
	case ebpf.Tracing:
		l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: h.attach})
	default:
		l, err = link.AttachCgroup(link.CgroupOptions{Path: cgroupV2, Attach: h.attach, Program: prog})
	}
	if err != nil {
		prog.Close()
		return nil, nil, err
	}
	return prog, l, nil
}

// of returns the floor of the program named name; nil when it has none.
func (f *floors) of(name string) *program {
	if f == nil {
		return nil
	}
	return f.progs[hookOf[name].name]
}

func (f *floors) close() {
	if f == nil {
		return
	}
	for _, l := range f.links {
		l.Close()
	}
	for _, p := range f.progs {
		p.prog.Close()
	}
}
