/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared definitions of Penny's eBPF programs. The structs below are read by
 * the agent through the Go types that bpf2go generates from them, so any
 * change here is a change of the agent's contract with the kernel side.
 */
#ifndef __PENNY_H
#define __PENNY_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* Sizes of the maps. A full map never fails an event silently: the program
 * counts the miss in its drops array and the agent exports that count. */
#define MAX_CGROUPS 16384
#define MAX_PROCS 65536

/* task_struct->flags, from include/linux/sched.h (not in BTF). */
#define PF_EXITING 0x00000004
#define PF_MEMALLOC 0x00000800
#define PF_KTHREAD 0x00200000

/* log2 histogram: bucket 0 holds [0, 2), bucket i (i >= 1) holds
 * [2^i, 2^(i+1)) in the histogram's unit (microseconds for Penny). */
#define HIST_BUCKETS 32

struct hist {
	__u64 buckets[HIST_BUCKETS];
	__u64 count;
	__u64 sum;
};

static __always_inline __u32 log2_bucket(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	if (r >= HIST_BUCKETS)
		r = HIST_BUCKETS - 1;
	return r;
}

/* Log-linear histogram (internal/histogram/loglinear.go): each power of
 * two split in LL_SUB linear buckets, so that a bucket is at most 12.5% of
 * its lower bound wide. Values below LL_SUB have a bucket each; the
 * buckets cover [0, 2^32), every 32-bit microsecond latency. */
#define LL_SUB_BITS 3
#define LL_SUB (1 << LL_SUB_BITS)
#define LL_BUCKETS ((32 - LL_SUB_BITS + 1) << LL_SUB_BITS) /* 240 */

struct loglin_hist {
	__u64 buckets[LL_BUCKETS];
	__u64 count;
	__u64 sum;
};

/* The bucket of v: v below LL_SUB; otherwise the index of its highest set
 * bit m (log2_bucket, loop-free) and the LL_SUB_BITS bits below it. */
static __always_inline __u32 loglin_bucket(__u64 v)
{
	__u32 m;

	if (v < LL_SUB)
		return v;
	if (v >> 32)
		return LL_BUCKETS - 1;
	m = log2_bucket(v); /* 3 to 31 */
	return (m - LL_SUB_BITS + 1) << LL_SUB_BITS | ((__u32)(v >> (m - LL_SUB_BITS)) & (LL_SUB - 1));
}

static __always_inline void hist_add(struct hist *h, __u64 v)
{
	__u32 b = log2_bucket(v);

	h->buckets[b & (HIST_BUCKETS - 1)]++;
	h->count++;
	h->sum += v;
}

/* hist_add for a histogram the CPUs share. */
static __always_inline void hist_add_atomic(struct hist *h, __u64 v)
{
	__u32 b = log2_bucket(v);

	__sync_fetch_and_add(&h->buckets[b & (HIST_BUCKETS - 1)], 1);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum, v);
}

/* Index of a counter in a program's drops array. */
enum drop_reason {
	DROP_MAP_FULL = 0,      /* a map was full: the event is lost */
	DROP_LOG_FULL = 1,      /* the event log was full: counted the slow way */
	DROP_LOG_FULL_LOST = 2, /* the event log was full and the event has no slow way: lost */
	DROP_MAX = 4,
};

#define DECLARE_DROPS(name)                                   \
	struct {                                              \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);      \
		__uint(max_entries, DROP_MAX);                \
		__type(key, __u32);                           \
		__type(value, __u64);                         \
	} name SEC(".maps")

static __always_inline void count_drop(void *drops, __u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(drops, &reason);

	if (c)
		(*c)++;
}

/* Looks key up in a hash map and inserts a zeroed value first when
 * it is missing. Returns NULL only when the map is full. */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *zero, void *drops)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	if (bpf_map_update_elem(map, key, zero, BPF_NOEXIST) && bpf_map_lookup_elem(map, key) == NULL) {
		count_drop(drops, DROP_MAP_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(map, key);
}

/*
 * The event log.
 *
 * Updating a per-cgroup map entry costs two or three cache misses when the
 * events of many cgroups interleave, as they do on a busy node: measured at
 * 300-500 ns per event on Penny's CI machine, over budget. So the hot
 * programs append a small record to a per-CPU ring instead, whose head and
 * current slot stay in cache, and the agent aggregates the records when it
 * reads (~150 ns per event). The rings live in one mmap-able array:
 * CPU c owns slots [c << ev_slots_shift, (c + 1) << ev_slots_shift).
 *
 * A writer reserves a slot with an atomic add on its CPU's head (programs
 * of different kinds may nest on one CPU: a softirq interrupting a task),
 * fills it, and commits it by storing the slot's generation last. The
 * agent reads committed slots from its tail up to the head and then
 * publishes the new tail. When a ring is nearly full, emit() returns false
 * and the caller counts the event in its per-cgroup map (the slow path), so
 * nothing is lost and memory stays bounded.
 */
#define EV_MARGIN 64 /* room for writers nested between check and reserve */

/* log2 of the slots of each CPU's ring: set by the agent before loading,
 * from a budget for the whole log (agent/probe/eventlog.go), so that the
 * log's memory does not grow with the number of CPUs. */
volatile const __u32 ev_slots_shift = 14;

/* Set by the agent where the CPU makes a CPU's stores visible in the order
 * it made them (x86-64): a record is then committed by a plain store of
 * its generation after its fields. Elsewhere (arm64) the commit is an
 * atomic exchange, which orders the fields before it, and which on x86
 * would wait for the slot's cache line to arrive: measured at 60-80 ns of
 * an event (docs/agent.md, "Where a program's time goes"). */
volatile const __u32 ev_ordered_stores = 0;

enum event_kind {
	EV_SRTT = 1,          /* id: cgroup, val: smoothed RTT in µs */
	EV_RX = 2,            /* id: cgroup, val: IP bytes received */
	EV_TX = 3,            /* id: cgroup, val: IP bytes sent, val2: enum tx_class */
	EV_RETRANSMIT = 4,    /* id: cgroup */
	EV_CONNECT_START = 5, /* id: socket, val: ns, val2: cgroup */
	EV_CONNECT_END = 6,   /* id: socket, val: ns, val2: 1 if established */
	EV_ACCESS = 7,        /* id: tgid of the reader, val: pages accessed */
	EV_CACHE_ADD = 8,     /* id: memory cgroup, val: pages, val2: reader's tgid on a miss */
	EV_CACHE_DELETE = 9,  /* id: memory cgroup, val: pages */
	EV_EXIT = 10,         /* id: tgid of a process whose last thread exited */
	EV_REQUEST = 11,      /* id: cgroup, val: ns to the response, val2: protocol | REQ_UNTIMED */
};

/* The destination class of a packet sent (EV_TX's val2). */
enum tx_class {
	TX_LOOPBACK = 1, /* 127.0.0.0/8, ::1 */
	TX_CLUSTER = 2,  /* private: RFC 1918, 100.64/10, 169.254/16, fc00::/7, fe80::/10 */
	TX_INTERNET = 3, /* everything else */
	TX_CLASSES = 4,  /* size of a per-class array, a power of two; index class - 1 */
};

struct event {
	__u64 id;
	__u64 val;
	__u64 val2;
	__u32 kind;
	__u32 gen; /* (position >> ev_slots_shift) + 1 once committed */
};

/* One ring's cursors, in one cache line: the writers' head and the agent's
 * tail. Keeping both in the line the writer touches anyway saves a cache
 * miss and a TLB miss per event. */
struct event_cursor {
	__u64 head; /* next position to write, advanced by the programs */
	__u64 tail; /* next position the agent reads, advanced by the agent */
	__u64 _pad[6];
};

/* The agent sets max_entries to the number of possible CPUs times the
 * slots of a ring (events) and to the number of possible CPUs (cursors)
 * before loading. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event_cursor);
} event_cursors SEC(".maps");

/* Appends one record to this CPU's ring; false when the ring is full. */
static __always_inline bool emit(__u32 kind, __u64 id, __u64 val, __u64 val2)
{
	__u32 cpu = bpf_get_smp_processor_id(), idx, shift = ev_slots_shift & 31;
	struct event_cursor *c = bpf_map_lookup_elem(&event_cursors, &cpu);
	__u64 slots = 1ull << shift;
	struct event *e;
	__u64 n;

	if (!c || c->head - c->tail >= slots - EV_MARGIN)
		return false;
	n = __sync_fetch_and_add(&c->head, 1);
	idx = (cpu << shift) | (__u32)(n & (slots - 1));
	e = bpf_map_lookup_elem(&events, &idx);
	if (!e)
		return false; /* cannot happen: the agent sized the array */
	e->id = id;
	e->val = val;
	e->val2 = val2;
	e->kind = kind;
	if (ev_ordered_stores) {
		/* The compiler keeps the fields' stores before it; the CPU
		 * makes them visible in that order, the store buffer hiding
		 * the slot's miss. */
		asm volatile("" ::: "memory");
		e->gen = (__u32)(n >> shift) + 1;
	} else {
		__sync_lock_test_and_set(&e->gen, (__u32)(n >> shift) + 1);
	}
	return true;
}

#endif /* __PENNY_H */
