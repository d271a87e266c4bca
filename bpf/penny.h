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

static __always_inline void hist_add(struct hist *h, __u64 v)
{
	__u32 b = log2_bucket(v);

	h->buckets[b & (HIST_BUCKETS - 1)]++;
	h->count++;
	h->sum += v;
}

/* Index of a counter in a program's drops array. */
enum drop_reason {
	DROP_MAP_FULL = 0,
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

/* Looks key up in a per-CPU hash map and inserts a zeroed value first when
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

#endif /* __PENNY_H */
