//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Page cache per cgroup, from the filemap tracepoints.
 *
 * The programs are BTF-enabled raw tracepoints (tp_btf), which read the
 * folio and mapping the kernel passes with plain loads.
 *
 * Pages added to and deleted from the page cache are charged to the memory
 * cgroup that owns the folio (folio->memcg_data), never to whichever task
 * happens to run: reclaim and writeback evict pages on behalf of others. On a
 * cgroup v2 host that memcg is a v2 cgroup; in hybrid mode (memory controller
 * on cgroup v1) it is a v1 memory cgroup, and the agent maps it back.
 *
 * The hit ratio counts, per reader's cgroup v2, the pages a task accessed
 * through read(2) and page faults (mm_filemap_get_pages, mm_filemap_map_pages,
 * mm_filemap_fault) and the misses: pages the reading task added to the cache
 * of the file it was reading ahead (readahead tracepoints), that is, pages
 * that had to come from storage. All of these need Linux >= 6.10.
 *
 * Adds, deletes and accesses are records in the event log (see penny.h);
 * the per-cgroup maps only take the overflow.
 */
#include "penny.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MEMCG_DATA_FLAGS_MASK 3UL

struct cache_counters {
	__u64 added;   /* pages */
	__u64 removed; /* pages */
};

struct access_counters {
	__u64 accesses; /* pages */
	__u64 misses;   /* pages */
};

/* The task and file of the last readahead on this CPU: pages that task
 * adds to that file's cache next are read misses. */
struct readahead_mark {
	__u64 ino;
	__u64 sb; /* the file's super_block, as an address: compared, never read */
	__u32 pid;
	__u32 _pad;
};

/* Keyed by the id of the memory cgroup that owns the pages (v2 or v1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* shared, allocated on use: see net.bpf.c */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct cache_counters);
} cache_by_memcg SEC(".maps");

/* Keyed by the cgroup v2 id of the reading task. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* shared, allocated on use: see net.bpf.c */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct access_counters);
} access_by_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct readahead_mark);
} readahead SEC(".maps");

DECLARE_DROPS(pagecache_drops);

/* Returns the number of base pages of a page-cache folio, or 0 for shmem
 * and tmpfs folios (swap-backed), which are not file page cache. */
static __always_inline __u64 folio_file_pages(struct folio *folio)
{
	/* folio->flags is an unsigned long, wrapped in a struct since 6.17. */
	unsigned long flags = *(unsigned long *)&folio->flags;

	if (flags & (1UL << bpf_core_enum_value(enum pageflags, PG_swapbacked)))
		return 0;
	if (flags & (1UL << bpf_core_enum_value(enum pageflags, PG_head)))
		return 1UL << (folio->_flags_1 & 0xff);
	return 1;
}

static __always_inline __u64 folio_memcg_id(struct folio *folio)
{
	unsigned long data = folio->memcg_data;
	struct mem_cgroup *memcg;

	if (!data || (data & MEMCG_DATA_FLAGS_MASK))
		return 1; /* not charged: the root cgroup */
	memcg = (struct mem_cgroup *)(data & ~MEMCG_DATA_FLAGS_MASK);
	return BPF_CORE_READ(memcg, css.cgroup, kn, id);
}

/* reader is a tgid here; the slow path charges the miss to the current
 * task's cgroup, which is the reader's. */
static __always_inline void cache_slow(__u64 memcg, __u64 added, __u64 removed, __u64 reader)
{
	static const struct cache_counters zero;
	static const struct access_counters azero;
	struct cache_counters *c;
	struct access_counters *a;

	count_drop(&pagecache_drops, DROP_LOG_FULL);
	c = lookup_or_init(&cache_by_memcg, &memcg, &zero, &pagecache_drops);
	if (c) {
		__sync_fetch_and_add(&c->added, added);
		__sync_fetch_and_add(&c->removed, removed);
	}
	if (!reader)
		return;
	reader = bpf_get_current_cgroup_id();
	a = lookup_or_init(&access_by_cgroup, &reader, &azero, &pagecache_drops);
	if (a)
		__sync_fetch_and_add(&a->misses, added);
}

SEC("tp_btf/mm_filemap_add_to_page_cache")
int BPF_PROG(cache_add, struct folio *folio)
{
	__u64 nr = folio_file_pages(folio), memcg, reader = 0, id = bpf_get_current_pid_tgid();
	struct readahead_mark *m;
	struct inode *host;
	__u32 zero = 0;

	if (!nr)
		return 0;
	memcg = folio_memcg_id(folio);
	m = bpf_map_lookup_elem(&readahead, &zero);
	if (m && m->pid == (__u32)id) {
		host = folio->mapping->host;
		if (m->ino == host->i_ino && m->sb == (__u64)host->i_sb)
			reader = id >> 32; /* the reading process; the agent knows its cgroup */
	}
	if (!emit(EV_CACHE_ADD, memcg, nr, reader))
		cache_slow(memcg, nr, 0, reader);
	return 0;
}

SEC("tp_btf/mm_filemap_delete_from_page_cache")
int BPF_PROG(cache_delete, struct folio *folio)
{
	__u64 nr = folio_file_pages(folio), memcg;

	if (!nr)
		return 0;
	memcg = folio_memcg_id(folio);
	if (!emit(EV_CACHE_DELETE, memcg, nr, 0))
		cache_slow(memcg, 0, nr, 0);
	return 0;
}

/* Accesses are logged by process: the agent maps processes to cgroups, so
 * the hot path need not walk task -> css_set -> cgroup -> kernfs node. */
static __always_inline void account_access(__u64 pages)
{
	static const struct access_counters zero;
	struct access_counters *c;
	__u64 cgid;

	if (emit(EV_ACCESS, bpf_get_current_pid_tgid() >> 32, pages, 0))
		return;
	count_drop(&pagecache_drops, DROP_LOG_FULL);
	cgid = bpf_get_current_cgroup_id();
	c = lookup_or_init(&access_by_cgroup, &cgid, &zero, &pagecache_drops);
	if (c)
		__sync_fetch_and_add(&c->accesses, pages);
}

static __always_inline void mark_readahead(struct inode *inode)
{
	struct readahead_mark *m;
	__u32 zero = 0;

	m = bpf_map_lookup_elem(&readahead, &zero);
	if (!m)
		return;
	m->pid = (__u32)bpf_get_current_pid_tgid();
	m->ino = inode->i_ino;
	m->sb = (__u64)inode->i_sb;
}

/* Readahead for a read(2) or a page fault that found pages missing. */
SEC("tp_btf/page_cache_sync_ra")
int BPF_PROG(sync_ra, struct inode *inode)
{
	mark_readahead(inode);
	return 0;
}

/* Readahead triggered by a read hitting the readahead mark. */
SEC("tp_btf/page_cache_async_ra")
int BPF_PROG(async_ra, struct inode *inode)
{
	mark_readahead(inode);
	return 0;
}

/* Readahead around a fault, in large folios. */
SEC("tp_btf/page_cache_ra_order")
int BPF_PROG(ra_order, struct inode *inode)
{
	mark_readahead(inode);
	return 0;
}

static __always_inline __u64 range_pages(unsigned long first, unsigned long last)
{
	if (last < first)
		return 0;
	return last - first + 1;
}

SEC("tp_btf/mm_filemap_get_pages")
int BPF_PROG(get_pages, struct address_space *mapping, unsigned long index, unsigned long last_index)
{
	account_access(range_pages(index, last_index));
	return 0;
}

SEC("tp_btf/mm_filemap_map_pages")
int BPF_PROG(map_pages, struct address_space *mapping, unsigned long index, unsigned long last_index)
{
	account_access(range_pages(index, last_index));
	return 0;
}

SEC("tp_btf/mm_filemap_fault")
int BPF_PROG(fault, struct address_space *mapping, unsigned long index)
{
	account_access(1);
	return 0;
}
