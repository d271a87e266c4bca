//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TCP latency and network bytes per cgroup, as records in the event log
 * (see penny.h); the per-cgroup maps only take the overflow.
 *
 * Packet processing runs in softirq context, where the current task is
 * whichever one the interrupt landed on, so every event here is attributed to
 * the cgroup of the socket itself: the socket's sk_cgrp_data for tracepoints
 * and bpf_skb_cgroup_id() (the owning full socket's cgroup) for cgroup_skb.
 *
 * The TCP tracepoints are BTF-enabled raw tracepoints (tp_btf): the kernel
 * passes the socket itself, which the programs read with plain loads, and
 * skips formatting the tracepoint's record. They need kernel BTF, as all of
 * Penny does, but no ftrace trampolines (unlike fentry).
 */
#include "penny.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

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
	__u64 tx_class_bytes[TX_CLASSES]; /* tx_bytes by enum tx_class - 1 */
};

/* The slow paths' maps (when the event log is full) are shared by the CPUs
 * and allocated as cgroups use them, so that their memory does not grow
 * with the number of CPUs (docs/agent.md, "Map memory"); updated with
 * atomic adds. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct tcp_stats);
} tcp_by_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct net_counters);
} net_by_cgroup SEC(".maps");

DECLARE_DROPS(net_drops);

/* The slow path, when the event log is full. */
static __always_inline struct tcp_stats *tcp_stats_for(__u64 cgid)
{
	static const struct tcp_stats zero;

	return lookup_or_init(&tcp_by_cgroup, &cgid, &zero, &net_drops);
}

static __always_inline __u64 sock_cgroup(const struct sock *sk)
{
	return sk->sk_cgrp_data.cgroup->kn->id;
}

/* Every segment received on an established socket. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	struct tcp_stats *s;
	__u64 cgid;
	__u32 srtt;

	if (!tp)
		return 0;
	srtt = tp->srtt_us >> 3;
	if (!srtt)
		return 0;
	cgid = sock_cgroup(sk);
	if (emit(EV_SRTT, cgid, srtt, 0))
		return 0;
	count_drop(&net_drops, DROP_LOG_FULL);
	s = tcp_stats_for(cgid);
	if (s)
		hist_add_atomic(&s->srtt, srtt);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk)
{
	__u64 cgid = sock_cgroup(sk);
	struct tcp_stats *s;

	if (emit(EV_RETRANSMIT, cgid, 1, 0))
		return 0;
	count_drop(&net_drops, DROP_LOG_FULL);
	s = tcp_stats_for(cgid);
	if (s)
		__sync_fetch_and_add(&s->retransmits, 1);
	return 0;
}

/* Connect latency: the agent pairs the SYN_SENT record of a socket with the
 * record of its next state by socket address, in time order. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	bool ok;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_SYN_SENT)
		ok = emit(EV_CONNECT_START, (__u64)sk, bpf_ktime_get_ns(), sock_cgroup(sk));
	else if (oldstate == TCP_SYN_SENT)
		ok = emit(EV_CONNECT_END, (__u64)sk, bpf_ktime_get_ns(), newstate == TCP_ESTABLISHED);
	else
		return 0;
	if (!ok)
		count_drop(&net_drops, DROP_LOG_FULL_LOST); /* no slow path: lost */
	return 0;
}

/*
 * The destination class of an IPv4 address, from its first two bytes:
 * loopback 127/8; in-cluster (private) RFC 1918 10/8, 172.16/12,
 * 192.168/16, CGNAT 100.64/10 and link-local 169.254/16; else internet.
 */
static __always_inline __u32 class_v4(__u8 a, __u8 b)
{
	if (a == 127)
		return TX_LOOPBACK;
	if (a == 10 || (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168) ||
	    (a == 100 && (b & 0xc0) == 64) || (a == 169 && b == 254))
		return TX_CLUSTER;
	return TX_INTERNET;
}

/* The destination class of an IPv6 address: loopback ::1; in-cluster
 * unique local fc00::/7 and link-local fe80::/10; else internet. */
static __always_inline __u32 class_v6(const __u8 *a)
{
	__u64 hi, lo;

	if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
		return TX_CLUSTER;
	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&lo, a + 8, 8);
	if (hi == 0 && lo == bpf_cpu_to_be64(1))
		return TX_LOOPBACK;
	return TX_INTERNET;
}

/*
 * The destination class of an outgoing packet, from its IP header, read in
 * place: a cgroup_skb program's data starts at the network header, which
 * the stack always builds in the linear data of the packets it sends.
 */
static __always_inline __u32 tx_class(struct __sk_buff *skb)
{
	const __u8 *p = (const __u8 *)(long)skb->data;
	const __u8 *end = (const __u8 *)(long)skb->data_end;

	if (p + 20 > end) /* shorter than any IP header: not IP */
		return TX_INTERNET;
	if (p[0] >> 4 == 4)
		return class_v4(p[16], p[17]);
	if (p[0] >> 4 == 6 && p + 40 <= end)
		return class_v6(p + 24);
	return TX_INTERNET;
}

static __always_inline void count_skb(struct __sk_buff *skb, bool ingress)
{
	static const struct net_counters zero;
	__u64 cgid = bpf_skb_cgroup_id(skb);
	struct net_counters *c;
	__u32 class = 0;

	if (!cgid)
		return;
	if (!ingress)
		class = tx_class(skb);
	if (emit(ingress ? EV_RX : EV_TX, cgid, skb->len, class))
		return;
	count_drop(&net_drops, DROP_LOG_FULL);
	c = lookup_or_init(&net_by_cgroup, &cgid, &zero, &net_drops);
	if (!c)
		return;
	if (ingress) {
		__sync_fetch_and_add(&c->rx_bytes, skb->len);
		__sync_fetch_and_add(&c->rx_packets, 1);
	} else {
		__sync_fetch_and_add(&c->tx_bytes, skb->len);
		__sync_fetch_and_add(&c->tx_packets, 1);
		__sync_fetch_and_add(&c->tx_class_bytes[(class - 1) & (TX_CLASSES - 1)], skb->len);
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
