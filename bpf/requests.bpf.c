//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Requests and request latency per cgroup, on the server side of TCP
 * connections (see docs/requests.md).
 *
 * A sock_ops program marks every passively opened (accepted) socket by
 * giving it socket-local storage; client sockets never get any, so the
 * cgroup_skb programs that follow return after reading the packet's
 * headers and one storage lookup for them.
 * On a marked socket, the ingress program reads the first bytes of each
 * segment's payload and notes when a request starts; the egress program
 * notes when its response starts and appends one EV_REQUEST record to the
 * event log (penny.h) with the time between the two. Both run with the
 * socket in hand, so a request is charged to the socket's cgroup (that of
 * the process that created the listening socket), never to whichever task
 * the softirq interrupted.
 *
 * What a request is depends on the connection's first bytes:
 *  - HTTP/1.x: a segment that starts with a method; its response is the
 *    next segment out that starts with "HTTP/1." (pipelined requests are
 *    answered in order: their start times wait in a small queue);
 *  - HTTP/2 with prior knowledge (h2c, gRPC): a HEADERS frame from the
 *    client that opens a new stream; its response is the server's first
 *    HEADERS frame on that stream. The frames are walked across segments,
 *    and found again after bytes go missing;
 *  - anything else, TLS included: a turn, data in then data out.
 */
#include "penny.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define IPPROTO_TCP 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* Requests of one socket that wait for their response with a start time:
 * pipelined HTTP/1 requests, concurrent HTTP/2 streams. A power of two. */
#define REQ_SLOTS 16
/* HTTP/2 frame headers read per segment at most: after a segment of more
 * (thousands of tiny frames), the frames must be found again (h2_resync). */
#define H2_FRAMES 1024
#define H2_FRAME_HEADER 9
#define H2_PREFACE 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define H2_HEADERS 1
#define H2_CONTINUATION 9 /* the highest frame type of RFC 9113 */

enum req_proto {
	PROTO_UNKNOWN = 0, /* no data received yet */
	PROTO_HTTP1 = 1,
	PROTO_H2 = 2,
	PROTO_TURNS = 3, /* any other protocol: request/response turns */
	PROTO_TLS = 4,   /* TLS records: turns */
};

/* EV_REQUEST's val2: the protocol, REQ_UNTIMED when the request's start
 * time could not be kept (val is then 0), and from bit REQ_COUNT_SHIFT up
 * how many requests the record stands for (0 means one). */
#define REQ_UNTIMED 0x100
#define REQ_COUNT_SHIFT 16

/* Where one direction of an HTTP/2 connection is in its frames. */
struct h2_half {
	__u32 skip;     /* bytes of the current frame still to come */
	__u32 part_len; /* bytes of a frame header the last segment ended with */
	__u8 part[8];
	__u32 lost;     /* where the frames are is not known: wait for a segment of whole frames */
};

/* A server socket's state: what every segment reads first, then HTTP/2's
 * and the start times. Times are microseconds of bpf_ktime_get_ns(),
 * wrapping every 71 minutes, which a latency never reaches: every
 * accepted socket carries one (its size is charged to the agent's memory
 * cgroup until the socket closes). */
struct req_sock {
	__u32 proto;
	__u32 seen;              /* SEEN_* */
	__u32 next_seq[2];       /* the sequence number after the newest payload, in and out */
	__u32 turn_start;        /* turns: when the turn's first byte came in (SEEN_TURN) */
	__u32 head, tail;        /* HTTP/1: the queue's positions */
	__u32 untimed;           /* HTTP/1: requests counted past a full queue */
	__u32 max_stream;        /* HTTP/2: highest stream the client opened */
	__u32 evict;             /* HTTP/2: the slot to take over next, when all are taken */
	struct h2_half h2[2];    /* HTTP/2: in, out */
	__u32 start[REQ_SLOTS];  /* HTTP/1: queue of start times; HTTP/2: by slot */
	__u32 stream[REQ_SLOTS]; /* HTTP/2: each slot's stream, 0 when free */
};

enum {
	SEEN_IN = 1,   /* next_seq[0] is set */
	SEEN_OUT = 2,  /* next_seq[1] is set */
	SEEN_TURN = 4, /* a turn waits for its response since turn_start */
};

static __always_inline __u32 now_us(void)
{
	return bpf_ktime_get_ns() / 1000;
}

/* The time since a start, in nanoseconds, as EV_REQUEST carries it. */
static __always_inline __u64 since(__u32 now, __u32 start)
{
	return (__u64)(__u32)(now - start) * 1000;
}

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct req_sock);
} req_socks SEC(".maps");

/* The slow path, when the event log is full: allocated per cgroup as
 * cgroups serve requests while the log is full (not preallocated), updated
 * atomically; 1944 bytes a cgroup, for the log-linear latency histogram's
 * 240 buckets. */
struct req_stats {
	__u64 requests;
	struct loglin_hist latency; /* microseconds */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct req_stats);
} req_by_cgroup SEC(".maps");

DECLARE_DROPS(req_drops);

/* Marks the sockets a listener accepted. */
SEC("sockops")
int req_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk;

	if (skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	if (!bpf_sk_storage_get(&req_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE))
		count_drop(&req_drops, DROP_MAP_FULL);
	return 1;
}

static __always_inline void req_slow(__u64 cgid, __u64 ns, __u64 flags)
{
	static const struct req_stats zero;
	struct req_stats *s = bpf_map_lookup_elem(&req_by_cgroup, &cgid);
	__u64 us = ns / 1000;
	__u32 b;

	if (!s) {
		if (bpf_map_update_elem(&req_by_cgroup, &cgid, &zero, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&req_by_cgroup, &cgid)) {
			count_drop(&req_drops, DROP_MAP_FULL);
			return;
		}
		s = bpf_map_lookup_elem(&req_by_cgroup, &cgid);
		if (!s)
			return;
	}
	__sync_fetch_and_add(&s->requests, (flags >> REQ_COUNT_SHIFT) ?: 1);
	if (flags & REQ_UNTIMED)
		return;
	b = loglin_bucket(us);
	/* b is below LL_BUCKETS, which clang knows and the verifier does
	 * not: the check must stay. */
	barrier_var(b);
	if (b >= LL_BUCKETS)
		return;
	__sync_fetch_and_add(&s->latency.buckets[b], 1);
	__sync_fetch_and_add(&s->latency.count, 1);
	__sync_fetch_and_add(&s->latency.sum, us);
}

/* One request answered (or counted untimed), charged to cgid. */
/* A global function, which the verifier checks once, not at each of its
 * many call sites. */
__noinline int req_done(__u64 cgid, __u64 ns, __u64 flags)
{
	if (emit(EV_REQUEST, cgid, ns, flags))
		return 0;
	count_drop(&req_drops, DROP_LOG_FULL);
	req_slow(cgid, ns, flags);
	return 0;
}

/* The offset of the TCP payload in a cgroup_skb program's packet, which
 * starts at the IP header, and the segment's sequence number; 0 when it is
 * not TCP (or has IPv6 extension headers, which TCP traffic does not carry
 * in practice). The headers are read in place: the stack keeps them in
 * the packet's linear data (it pulls them there on the way in, builds
 * them there on the way out); bpf_skb_load_bytes reads them otherwise. */
static __always_inline __u32 payload_offset(struct __sk_buff *skb, __u32 *seq)
{
	const __u8 *p = (const __u8 *)(long)skb->data;
	const __u8 *end = (const __u8 *)(long)skb->data_end;
	const __u8 *tcp;
	__u8 b[2];
	__u32 off;

	if (p + 40 <= end) {
		if (p[0] >> 4 == 4) {
			if (p[9] != IPPROTO_TCP)
				return 0;
			off = (p[0] & 0xf) * 4;
		} else if (p[0] >> 4 == 6) {
			if (p[6] != IPPROTO_TCP)
				return 0;
			off = 40;
		} else {
			return 0;
		}
		if (off < 20 || off > 60)
			return 0;
		tcp = p + off;
		if (tcp + 20 <= end) {
			*seq = bpf_ntohl(*(const __u32 *)(tcp + 4));
			return off + (tcp[12] >> 4) * 4;
		}
	}
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, b, 1))
			return 0;
		off = (b[0] & 0xf) * 4;
		if (bpf_skb_load_bytes(skb, 9, b, 1) || b[0] != IPPROTO_TCP)
			return 0;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 6, b, 1) || b[0] != IPPROTO_TCP)
			return 0;
		off = 40;
	} else {
		return 0;
	}
	if (bpf_skb_load_bytes(skb, off + 4, seq, 4) || bpf_skb_load_bytes(skb, off + 12, b, 1))
		return 0;
	*seq = bpf_ntohl(*seq);
	return off + (b[0] >> 4) * 4;
}

/* Reads the first 8 bytes of the payload at off into p (zeros when it is
 * shorter): in place when they are in the linear data. */
static __always_inline void first8(struct __sk_buff *skb, __u32 off, __u8 *p)
{
	const __u8 *data = (const __u8 *)(long)skb->data;
	const __u8 *end = (const __u8 *)(long)skb->data_end;

	if (off > 0xffff)
		return;
	if (data + off + 8 <= end) {
		__builtin_memcpy(p, data + off, 8);
		return;
	}
	if (skb->len - off >= 8)
		bpf_skb_load_bytes(skb, off, p, 8);
}

/* The first four bytes of a payload, as a little-endian word. */
#define WORD(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

static __always_inline bool is_method(__u32 w)
{
	switch (w) {
	case WORD('G', 'E', 'T', ' '):
	case WORD('P', 'O', 'S', 'T'):
	case WORD('P', 'U', 'T', ' '):
	case WORD('H', 'E', 'A', 'D'):
	case WORD('D', 'E', 'L', 'E'):
	case WORD('P', 'A', 'T', 'C'):
	case WORD('O', 'P', 'T', 'I'):
	case WORD('C', 'O', 'N', 'N'):
	case WORD('T', 'R', 'A', 'C'):
		return true;
	}
	return false;
}

/* "PRI * HT", the start of HTTP/2's connection preface. */
static __always_inline bool is_preface(const __u8 *p)
{
	return *(__u32 *)p == WORD('P', 'R', 'I', ' ') && *(__u32 *)(p + 4) == WORD('*', ' ', 'H', 'T');
}

/* "HTTP/1.", the start of an HTTP/1 response. */
static __always_inline bool is_response(const __u8 *p)
{
	return *(__u32 *)p == WORD('H', 'T', 'T', 'P') && p[4] == '/' && p[5] == '1' && p[6] == '.';
}

/* A HEADERS frame on stream id. Ingress: one that opens a client stream
 * (odd, above any seen) starts a request; when every slot is taken, one
 * waiting request gives its slot up, in turn, and is counted untimed (its
 * response was not seen: the stream was reset, say, or it is one of more
 * than REQ_SLOTS at once). Egress: the server's first one on a stream
 * that waits answers it. */
static __always_inline void h2_headers(struct __sk_buff *skb, struct req_sock *s, __u32 id, int dir, __u32 now)
{
	__u32 e;

	if (dir == 0) {
		if (!(id & 1) || id <= s->max_stream)
			return;
		s->max_stream = id;
		for (int j = 0; j < REQ_SLOTS; j++) {
			if (!s->stream[j]) {
				s->stream[j] = id;
				s->start[j] = now;
				return;
			}
		}
		req_done(bpf_skb_cgroup_id(skb), 0, PROTO_H2 | REQ_UNTIMED);
		e = s->evict++ & (REQ_SLOTS - 1);
		s->stream[e] = id;
		s->start[e] = now;
		return;
	}
	for (int j = 0; j < REQ_SLOTS; j++) {
		if (s->stream[j] == id) {
			s->stream[j] = 0;
			req_done(bpf_skb_cgroup_id(skb), since(now, s->start[j]), PROTO_H2);
			return;
		}
	}
}

/* The stream of a HEADERS frame's header, 0 for any other frame. */
static __always_inline __u32 h2_headers_stream(const __u8 *h)
{
	if (h[3] != H2_HEADERS)
		return 0;
	return ((__u32)h[5] << 24 | (__u32)h[6] << 16 | (__u32)h[7] << 8 | h[8]) & 0x7fffffff;
}

static __always_inline __u32 h2_length(const __u8 *h)
{
	return (__u32)h[0] << 16 | (__u32)h[1] << 8 | h[2];
}

/* One segment's walk through its HTTP/2 frames, for bpf_loop. */
struct h2_walk {
	struct __sk_buff *skb;
	struct req_sock *s;
	struct h2_half *x;
	__u32 now;
	__u32 off, end; /* the next frame header, the payload's end */
	int dir;
	int state; /* H2_WALKING, then H2_DONE or H2_LOST */
};

enum { H2_WALKING, H2_DONE, H2_LOST };

/* Reads the frame header at w->off and moves past its frame; a header
 * cut by the segment's end is kept for the next segment. */
static long h2_step(__u32 i, void *ctx)
{
	struct h2_walk *w = ctx;
	struct h2_half *x = w->x;
	__u8 h[H2_FRAME_HEADER];
	__u32 left = w->end - w->off, id;

	if (w->off >= w->end) {
		x->skip = 0;
		w->state = H2_DONE;
		return 1;
	}
	if (left < H2_FRAME_HEADER) { /* 1 to 8 bytes: the start of a header */
		barrier_var(left);
		if (left < 1 || left > 8 || bpf_skb_load_bytes(w->skb, w->off, x->part, left)) {
			w->state = H2_LOST;
			return 1;
		}
		x->part_len = left;
		x->skip = 0;
		w->state = H2_DONE;
		return 1;
	}
	if (bpf_skb_load_bytes(w->skb, w->off, h, H2_FRAME_HEADER)) {
		w->state = H2_LOST;
		return 1;
	}
	id = h2_headers_stream(h);
	if (id)
		h2_headers(w->skb, w->s, id, w->dir, w->now);
	w->off += H2_FRAME_HEADER + h2_length(h);
	if (w->off > w->end) {
		x->skip = w->off - w->end;
		w->state = H2_DONE;
		return 1;
	}
	return 0;
}

/* Checks that the frame header at w->off looks like one and moves past
 * its frame: a walk that ends exactly at the segment's end (H2_DONE)
 * found whole frames only. */
static long h2_check_step(__u32 i, void *ctx)
{
	struct h2_walk *w = ctx;
	__u8 h[H2_FRAME_HEADER];

	if (w->off == w->end) {
		w->state = i ? H2_DONE : H2_LOST;
		return 1;
	}
	if (w->end - w->off < H2_FRAME_HEADER || bpf_skb_load_bytes(w->skb, w->off, h, H2_FRAME_HEADER) ||
	    h[3] > H2_CONTINUATION || (h[5] & 0x80)) {
		w->state = H2_LOST;
		return 1;
	}
	w->off += H2_FRAME_HEADER + h2_length(h);
	if (w->off > w->end) {
		w->state = H2_LOST;
		return 1;
	}
	return 0;
}

/* After bytes went missing, finds the frames again: a segment that holds
 * whole frames only, each with a known type and the reserved bit clear,
 * starts with a frame (clients and servers write frames whole, so most
 * segments that start after a write do). */
static __always_inline bool h2_resync(struct __sk_buff *skb, struct req_sock *s, struct h2_half *x, __u32 off,
				      __u32 end)
{
	struct h2_walk w = {.skb = skb, .s = s, .x = x, .off = off, .end = end};

	bpf_loop(H2_FRAMES, h2_check_step, &w, 0);
	if (w.state != H2_DONE)
		return false;
	x->lost = 0;
	x->skip = 0;
	x->part_len = 0;
	return true;
}

/*
 * Walks the HTTP/2 frames of one segment's payload [off, end) in one
 * direction (0 in, 1 out): first the end of a frame header the previous
 * segment began, then the rest of the frame it belongs to, then each
 * frame header in turn (bpf_loop, which the verifier checks once however
 * many frames there are). When the frames cannot be followed (bytes
 * went missing, a frame header was cut twice, a segment held more than
 * H2_FRAMES frames), the direction waits for a segment that starts with
 * a frame again (h2_resync); what it carried meanwhile is not counted.
 */
static __always_inline void h2_frames(struct __sk_buff *skb, struct req_sock *s, __u32 off, __u32 end,
				      int dir, __u32 now)
{
	struct h2_half *x = &s->h2[dir & 1];
	struct h2_walk w = {.skb = skb, .s = s, .x = x, .now = now, .end = end, .dir = dir};
	__u32 skip;

	if (x->lost && !h2_resync(skb, s, x, off, end))
		return;
	skip = x->skip;
	if (x->part_len) {
		__u8 h[H2_FRAME_HEADER], rest[8] = {};
		__u32 have = x->part_len, need = H2_FRAME_HEADER - have, id;
		__u64 pw, rw;

		x->part_len = 0;
		/* need is 1 to 8, which the verifier must see checked */
		barrier_var(need);
		if (need < 1 || need > 8 || end - off < need || bpf_skb_load_bytes(skb, off, rest, need)) {
			x->lost = 1;
			return;
		}
		/* The bytes as little-endian words, indexed by shifts: the
		 * verifier refuses the arithmetic clang makes of indexes into
		 * an aligned stack buffer. */
		__builtin_memcpy(&pw, x->part, 8);
		__builtin_memcpy(&rw, rest, 8);
		for (int i = 0; i < H2_FRAME_HEADER; i++) {
			if ((__u32)i < have)
				h[i] = pw >> ((i & 7) * 8);
			else
				h[i] = rw >> (((i - have) & 7) * 8);
		}
		id = h2_headers_stream(h);
		if (id)
			h2_headers(skb, s, id, dir, now);
		off += need;
		skip = h2_length(h);
	}
	if (end - off <= skip) {
		x->skip = skip - (end - off);
		return;
	}
	w.off = off + skip;
	bpf_loop(H2_FRAMES, h2_step, &w, 0);
	if (w.state != H2_DONE)
		x->lost = 1;
}

static __always_inline void req_ingress(struct __sk_buff *skb, struct req_sock *s, __u32 off)
{
	__u8 p[8] = {};
	__u32 w;

	/* Most segments of a connection are counted without their bytes. */
	switch (s->proto) {
	case PROTO_TURNS:
	case PROTO_TLS:
		if (!(s->seen & SEEN_TURN)) {
			s->turn_start = now_us();
			s->seen |= SEEN_TURN;
		}
		return;
	case PROTO_H2:
		h2_frames(skb, s, off, skb->len, 0, now_us());
		return;
	}
	/* Unknown yet, or HTTP/1: read the start of the payload. */
	first8(skb, off, p);
	w = *(__u32 *)p;
	if (is_preface(p)) { /* prior knowledge, or after an Upgrade: h2c */
		s->proto = PROTO_H2;
		s->h2[0].skip = H2_PREFACE;
		h2_frames(skb, s, off, skb->len, 0, now_us());
		return;
	}
	if (s->proto == PROTO_UNKNOWN) {
		if (is_method(w)) {
			s->proto = PROTO_HTTP1;
		} else {
			s->proto = p[0] == 0x16 && p[1] == 0x03 ? PROTO_TLS : PROTO_TURNS; /* a TLS handshake record */
			s->turn_start = now_us();
			s->seen |= SEEN_TURN;
			return;
		}
	}
	if (!is_method(w))
		return; /* the rest of an HTTP/1 request */
	if (s->head - s->tail < REQ_SLOTS) {
		s->start[s->head & (REQ_SLOTS - 1)] = now_us();
		s->head++;
	} else {
		s->untimed++;
	}
}

static __always_inline void req_egress(struct __sk_buff *skb, struct req_sock *s, __u32 off)
{
	__u8 p[8] = {};

	switch (s->proto) {
	case PROTO_HTTP1:
		if (s->head == s->tail && !s->untimed)
			return;
		first8(skb, off, p);
		if (!is_response(p))
			return;
		if (s->head != s->tail) {
			req_done(bpf_skb_cgroup_id(skb), since(now_us(), s->start[s->tail & (REQ_SLOTS - 1)]), PROTO_HTTP1);
			s->tail++;
		} else {
			s->untimed--;
			req_done(bpf_skb_cgroup_id(skb), 0, PROTO_HTTP1 | REQ_UNTIMED);
		}
		return;
	case PROTO_H2:
		h2_frames(skb, s, off, skb->len, 1, now_us());
		return;
	case PROTO_TURNS:
	case PROTO_TLS:
		if (!(s->seen & SEEN_TURN))
			return;
		req_done(bpf_skb_cgroup_id(skb), since(now_us(), s->turn_start), s->proto);
		s->seen &= ~SEEN_TURN;
		return;
	}
}

static __always_inline void req_skb(struct __sk_buff *skb, bool ingress)
{
	struct bpf_sock *sk = skb->sk;
	struct req_sock *s;
	__u32 off, seq = 0, dir = ingress ? 0 : 1;

	if (!sk)
		return;
	/* The packet first, whose lines the stack just read: an ACK or a FIN
	 * carries no payload, and needs no look at the socket's state, which
	 * is likely out of the cache. */
	off = payload_offset(skb, &seq);
	if (!off || off >= skb->len)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	s = bpf_sk_storage_get(&req_socks, sk, 0, 0);
	if (!s)
		return; /* not a socket a listener accepted */
	/* A retransmission (a tail loss probe, say) repeats bytes already
	 * seen: it must not start or answer a request again. */
	if (s->seen & (1 << dir)) { /* 1 << dir: SEEN_IN, SEEN_OUT */
		if ((__s32)(seq - s->next_seq[dir]) < 0)
			return;
		/* Bytes missing (lost, or still to come out of order): the
		 * frames of HTTP/2 must be found again. */
		if (seq != s->next_seq[dir] && s->proto == PROTO_H2)
			s->h2[dir & 1].lost = 1;
	}
	s->next_seq[dir] = seq + (skb->len - off);
	s->seen |= 1 << dir;
	if (ingress)
		req_ingress(skb, s, off);
	else
		req_egress(skb, s, off);
}

SEC("cgroup_skb/ingress")
int req_skb_ingress(struct __sk_buff *skb)
{
	req_skb(skb, true);
	return 1;
}

SEC("cgroup_skb/egress")
int req_skb_egress(struct __sk_buff *skb)
{
	req_skb(skb, false);
	return 1;
}
