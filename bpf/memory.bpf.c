//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Resident memory per process, from the kmem:rss_stat tracepoint.
 *
 * The kernel fires rss_stat whenever one of an mm's RSS counters changes and
 * reports the counter's new absolute value, so the programs keep the latest
 * value of each counter per mm (keyed by the tracepoint's hashed mm_id) and
 * which process owns that mm. The agent sums processes into cgroups.
 *
 * Events on an mm that is not current's (curr == 0) come from fork copying
 * the parent's page tables into a brand new mm, from exec building the new
 * stack, from reclaim and from process teardown. The first two create a new
 * mm whose counters start at zero, which the programs mark RSS_NEW; reclaim
 * of an mm never seen before is skipped (the agent seeded it from /proc).
 */
#include "penny.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES. */
#define RSS_MEMBERS 4

/* rss_entry.flags */
#define RSS_NEW 1 /* the mm was created after the programs were attached */

struct rss_entry {
	__u32 tgid;  /* process that last ran with this mm (0: not yet known) */
	__u32 flags; /* RSS_NEW */
	__u32 mask;  /* bit i set: size[i] came from an event */
	__s32 pending; /* bytes not yet added to the cgroup's watch (see watch_rss) */
	__s64 size[RSS_MEMBERS]; /* bytes */
};

struct proc_entry {
	__u64 cgid;  /* cgroup v2 id of the process */
	__u32 mm_id; /* rss_by_mm key of its current mm; 0 until first seen */
	__u32 flags; /* PROC_SEEDED */
};

#define PROC_SEEDED 1 /* inserted by the agent from /proc at start */
#define PROC_EXITED 2 /* the process exited; the agent deletes the entry */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PROCS);
	__type(key, __u32);
	__type(value, struct rss_entry);
} rss_by_mm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PROCS);
	__type(key, __u32);
	__type(value, struct proc_entry);
} procs SEC(".maps");

DECLARE_DROPS(memory_drops);

/*
 * Change-driven shipping (docs/agent.md, "Shipping on change"): the agent
 * arms a watch per cgroup at every sample with the RSS change it should
 * hear about (limit, bytes either way). Each RSS change a process makes to
 * its own mm is added to its cgroup's watch; the first one to take the sum
 * past the limit disarms the watch and writes the cgroup's id to
 * rss_changes, which wakes the agent. Changes made to an mm from outside
 * (fork, exec, reclaim, teardown) are left to the next interval.
 */
struct rss_watch {
	__s64 delta; /* bytes since the watch was armed */
	__s64 limit; /* |delta| past which the agent is told */
	__u32 armed; /* 1 until the agent has been told */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* written by the agent only */
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct rss_watch);
} rss_watches SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rss_changes SEC(".maps");

/*
 * A process's changes reach its cgroup's watch in steps of at least
 * RSS_WATCH_GRAIN bytes, gathered in its mm's entry (pending): most events
 * move one page, and looking the watch up at each one was half the
 * program's cost. A cgroup's sum then lags what its processes did by less
 * than RSS_WATCH_GRAIN each, against limits of at least 1 MiB; what is
 * left pending goes with the next interval as every change does.
 */
#define RSS_WATCH_GRAIN (64 << 10)

static __always_inline void watch_rss(__s64 d)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct rss_watch *w = bpf_map_lookup_elem(&rss_watches, &cgid);
	__s64 v;

	if (!w)
		return;
	v = __sync_fetch_and_add(&w->delta, d) + d;
	if (v <= w->limit && v >= -w->limit)
		return;
	if (!w->armed || __sync_val_compare_and_swap(&w->armed, 1, 0) != 1)
		return;
	/* A full ring loses the wake-up, not the change: the next interval
	 * ships it. */
	bpf_ringbuf_output(&rss_changes, &cgid, sizeof(cgid), 0);
}

/* Makes tgid the owner of mm_id and records the cgroup it runs in. */
static __noinline int claim(__u32 mm_id, __u32 tgid)
{
	struct rss_entry *e = bpf_map_lookup_elem(&rss_by_mm, &mm_id);
	struct proc_entry *p, np = {};
	__u64 cgid = bpf_get_current_cgroup_id();

	if (!e) {
		struct rss_entry ne = { .tgid = tgid };

		if (bpf_map_update_elem(&rss_by_mm, &mm_id, &ne, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&rss_by_mm, &mm_id)) {
			count_drop(&memory_drops, DROP_MAP_FULL);
			return 0;
		}
	} else {
		e->tgid = tgid;
		e->pending = 0; /* another process's changes, maybe another cgroup's */
	}

	p = bpf_map_lookup_elem(&procs, &tgid);
	if (p) {
		p->mm_id = mm_id;
		p->cgid = cgid;
		p->flags &= ~PROC_EXITED; /* the pid was reused */
		return 0;
	}
	np.cgid = cgid;
	np.mm_id = mm_id;
	if (bpf_map_update_elem(&procs, &tgid, &np, BPF_ANY))
		count_drop(&memory_drops, DROP_MAP_FULL);
	return 0;
}

SEC("tracepoint/kmem/rss_stat")
int rss_stat(struct trace_event_raw_rss_stat *ctx)
{
	__u32 mm_id = ctx->mm_id;
	int member = ctx->member;
	struct rss_entry *e;

	if (member < 0 || member >= RSS_MEMBERS || mm_id == 0)
		return 0;

	if (ctx->curr) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		e = bpf_map_lookup_elem(&rss_by_mm, &mm_id);
		if (!e || e->tgid != tgid) {
			claim(mm_id, tgid);
			e = bpf_map_lookup_elem(&rss_by_mm, &mm_id);
			if (!e)
				return 0;
		}
	} else {
		unsigned int flags = bpf_get_current_task_btf()->flags;

		e = bpf_map_lookup_elem(&rss_by_mm, &mm_id);
		if (flags & PF_EXITING) {
			/* The exiting process's own mm being torn down: let its
			 * counters fall to zero, and mark the entry so that an mm
			 * that gets the same mm_id later starts afresh. */
			if (!e)
				return 0;
			e->flags = RSS_NEW;
			e->tgid = 0;
			e->pending = 0;
			e->size[member & (RSS_MEMBERS - 1)] = ctx->size;
			return 0;
		}
		if (!e) {
			struct rss_entry ne = { .flags = RSS_NEW };

			if (flags & (PF_KTHREAD | PF_MEMALLOC))
				return 0; /* reclaim of an mm seeded from /proc */
			if (bpf_map_update_elem(&rss_by_mm, &mm_id, &ne, BPF_NOEXIST) &&
			    !bpf_map_lookup_elem(&rss_by_mm, &mm_id)) {
				count_drop(&memory_drops, DROP_MAP_FULL);
				return 0;
			}
			e = bpf_map_lookup_elem(&rss_by_mm, &mm_id);
			if (!e)
				return 0;
		}
	}
	member &= RSS_MEMBERS - 1;
	/* The change of a counter the agent counts as resident, when its
	 * previous value is known (reported, or zero in a new mm). */
	if (ctx->curr && member != MM_SWAPENTS && ((e->mask >> member) & 1 || e->flags & RSS_NEW)) {
		__s64 d = (__s64)e->pending + ctx->size - e->size[member];

		if (d < RSS_WATCH_GRAIN && d > -RSS_WATCH_GRAIN) {
			e->pending = d;
		} else {
			e->pending = 0;
			watch_rss(d);
		}
	}
	e->size[member] = ctx->size;
	e->mask |= 1u << member;
	return 0;
}

/* Whether sched_process_exit passes group_dead (Linux >= 6.16); set by the
 * agent from the kernel's BTF before loading. */
volatile const bool exit_has_group_dead = false;

/* When the last thread of a process exits, the agent is told through the
 * event log and deletes the process; the mm's counters fall to zero as the
 * kernel tears it down (see rss_stat). */
SEC("tp_btf/sched_process_exit")
int process_exit(__u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];
	__u32 tgid = task->tgid;
	struct proc_entry *p;
	bool group_dead;

	if (exit_has_group_dead)
		group_dead = ctx[1];
	else
		group_dead = task->signal->live.counter == 0;
	if (!group_dead || emit(EV_EXIT, tgid, 0, 0))
		return 0;
	count_drop(&memory_drops, DROP_LOG_FULL);
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (p)
		p->flags |= PROC_EXITED;
	return 0;
}

SEC("tracepoint/cgroup/cgroup_attach_task")
int cgroup_attach(struct trace_event_raw_cgroup_migrate *ctx)
{
	__u32 pid = ctx->pid;
	struct proc_entry *p;

	/* Hierarchy 0 is the cgroup v2 (default) hierarchy. A process moves
	 * with its thread group leader, whose pid is the tgid. */
	if (ctx->dst_root != 0)
		return 0;
	p = bpf_map_lookup_elem(&procs, &pid);
	if (p)
		p->cgid = ctx->dst_id;
	return 0;
}
