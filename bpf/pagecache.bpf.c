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
 * mm_filemap_fault, Linux >= 6.10) and the misses among them: pages the same
 * task added to the cache for the same file just before the access (the
 * synchronous read and its readahead).
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

/* Pages a task added to the cache that no access has claimed yet. */
struct pending_adds {
	__u64 ino;
	__u64 pages;
	__u32 dev;
	__u32 _pad;
};

/* Keyed by the id of the memory cgroup that owns the pages (v2 or v1). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct cache_counters);
} cache_by_memcg SEC(".maps");

/* Keyed by the cgroup v2 id of the reading task. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct access_counters);
} access_by_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_adds);
} pending SEC(".maps");

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

SEC("tp_btf/mm_filemap_add_to_page_cache")
int BPF_PROG(cache_add, struct folio *folio)
{
	static const struct cache_counters zero;
	struct cache_counters *c;
	struct pending_adds *pa;
	struct task_struct *task;
	struct inode *host;
	__u64 nr = folio_file_pages(folio), id, ino;
	__u32 dev;

	if (!nr)
		return 0;
	id = folio_memcg_id(folio);
	c = lookup_or_init(&cache_by_memcg, &id, &zero, &pagecache_drops);
	if (c)
		c->added += nr;

	task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD)
		return 0;
	host = folio->mapping->host;
	ino = host->i_ino;
	dev = host->i_sb->s_dev;
	pa = bpf_task_storage_get(&pending, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!pa)
		return 0;
	if (pa->ino != ino || pa->dev != dev) {
		pa->ino = ino;
		pa->dev = dev;
		pa->pages = 0;
	}
	pa->pages += nr;
	return 0;
}

SEC("tp_btf/mm_filemap_delete_from_page_cache")
int BPF_PROG(cache_delete, struct folio *folio)
{
	static const struct cache_counters zero;
	struct cache_counters *c;
	__u64 nr = folio_file_pages(folio), id;

	if (!nr)
		return 0;
	id = folio_memcg_id(folio);
	c = lookup_or_init(&cache_by_memcg, &id, &zero, &pagecache_drops);
	if (c)
		c->removed += nr;
	return 0;
}

static __always_inline void account_access(__u64 ino, __u32 dev, __u64 pages)
{
	static const struct access_counters zero;
	struct access_counters *c;
	struct pending_adds *pa;
	__u64 cgid = bpf_get_current_cgroup_id(), misses = 0;

	pa = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
	if (pa && pa->pages) {
		if (pa->ino == ino && pa->dev == dev)
			misses = pa->pages;
		pa->pages = 0;
	}
	c = lookup_or_init(&access_by_cgroup, &cgid, &zero, &pagecache_drops);
	if (!c)
		return;
	c->accesses += pages;
	c->misses += misses;
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
	struct inode *host = mapping->host;

	account_access(host->i_ino, host->i_sb->s_dev, range_pages(index, last_index));
	return 0;
}

SEC("tp_btf/mm_filemap_map_pages")
int BPF_PROG(map_pages, struct address_space *mapping, unsigned long index, unsigned long last_index)
{
	struct inode *host = mapping->host;

	account_access(host->i_ino, host->i_sb->s_dev, range_pages(index, last_index));
	return 0;
}

SEC("tp_btf/mm_filemap_fault")
int BPF_PROG(fault, struct address_space *mapping, unsigned long index)
{
	struct inode *host = mapping->host;

	account_access(host->i_ino, host->i_sb->s_dev, 1);
	return 0;
}
