//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TCP latency and network bytes per cgroup.
 *
 * Packet processing runs in softirq context, where the current task is
 * whichever one the interrupt landed on, so every event here is attributed to
 * the cgroup of the socket itself: the socket's sk_cgrp_data for tracepoints
 * and bpf_skb_cgroup_id() (the owning full socket's cgroup) for cgroup_skb.
 */
#include "penny.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2

struct tcp_stats {
	struct hist srtt;    /* smoothed RTT samples, microseconds */
	struct hist connect; /* SYN_SENT -> ESTABLISHED, microseconds */
	__u64 retransmits;
};

struct net_counters {
	__u64 rx_bytes;
	__u64 tx_bytes;
	__u64 rx_packets;
	__u64 tx_packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct tcp_stats);
} tcp_by_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct net_counters);
} net_by_cgroup SEC(".maps");

/* Start time of connects in flight, keyed by socket address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_PROCS);
	__type(key, __u64);
	__type(value, __u64);
} connect_start SEC(".maps");

DECLARE_DROPS(net_drops);

static __always_inline __u64 sock_cgroup_id(const void *skaddr)
{
	const struct sock *sk = skaddr;

	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline struct tcp_stats *tcp_stats_for(const void *skaddr)
{
	static const struct tcp_stats zero;
	__u64 cgid = sock_cgroup_id(skaddr);

	return lookup_or_init(&tcp_by_cgroup, &cgid, &zero, &net_drops);
}

SEC("tracepoint/tcp/tcp_probe")
int tcp_probe(struct trace_event_raw_tcp_probe *ctx)
{
	__u32 srtt = ctx->srtt;
	struct tcp_stats *s;

	if (!srtt)
		return 0;
	s = tcp_stats_for(ctx->skaddr);
	if (s)
		hist_add(&s->srtt, srtt);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcp_retransmit(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	struct tcp_stats *s = tcp_stats_for(ctx->skaddr);

	if (s)
		s->retransmits++;
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr, *start, now;
	struct tcp_stats *s;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (ctx->newstate == TCP_SYN_SENT) {
		now = bpf_ktime_get_ns();
		bpf_map_update_elem(&connect_start, &sk, &now, BPF_ANY);
		return 0;
	}
	if (ctx->oldstate != TCP_SYN_SENT)
		return 0;
	start = bpf_map_lookup_elem(&connect_start, &sk);
	if (!start)
		return 0;
	now = bpf_ktime_get_ns();
	if (ctx->newstate == TCP_ESTABLISHED && now > *start) {
		s = tcp_stats_for(ctx->skaddr);
		if (s)
			hist_add(&s->connect, (now - *start) / 1000);
	}
	bpf_map_delete_elem(&connect_start, &sk);
	return 0;
}

static __always_inline void count_skb(struct __sk_buff *skb, bool ingress)
{
	static const struct net_counters zero;
	__u64 cgid = bpf_skb_cgroup_id(skb);
	struct net_counters *c;

	if (!cgid)
		return;
	c = lookup_or_init(&net_by_cgroup, &cgid, &zero, &net_drops);
	if (!c)
		return;
	if (ingress) {
		c->rx_bytes += skb->len;
		c->rx_packets++;
	} else {
		c->tx_bytes += skb->len;
		c->tx_packets++;
	}
}

SEC("cgroup_skb/ingress")
int skb_ingress(struct __sk_buff *skb)
{
	count_skb(skb, true);
	return 1;
}

SEC("cgroup_skb/egress")
int skb_egress(struct __sk_buff *skb)
{
	count_skb(skb, false);
	return 1;
}
