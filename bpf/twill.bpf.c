// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Twill's TC dataplane: three entry programs sharing four maps.
 *
 *  twill_pod_ingress     TC ingress of each pod's host veth
 *  twill_wg_ingress      TC ingress of the WireGuard device
 *  twill_underlay_guard  TC egress of the underlay interfaces
 *
 * Decisions, so that nobody has to rediscover them:
 *  - We route, so we decrement the TTL (with an incremental checksum update) on every
 *    redirect, exactly as kernel forwarding would: traceroute keeps showing the hops
 *    and a routing loop cannot circulate forever. A packet whose TTL would expire is
 *    handed to the stack, which answers with ICMP time exceeded as a router should.
 *  - A packet that claims to be IPv4 but whose header cannot be read (truncated, IHL
 *    below 5 or beyond the packet, wrong version) is dropped and counted: the kernel would discard it in
 *    ip_rcv() anyway, and a header we cannot read cannot be checked against strict
 *    mode, so letting it pass would be the one unchecked path.
 *  - Pod delivery uses bpf_redirect_peer() by default (straight into the pod's netns,
 *    no second trip through the backlog queue); TWILL_CFG_F_NO_REDIRECT_PEER switches
 *    to bpf_redirect() through the host veth.
 *  - Kubernetes Services are NAT in the host stack (kube-proxy's DNAT, masquerade): a
 *    packet of a NATed connection must cross the host's conntrack or its reverse
 *    translation never happens. Before every redirect we ask conntrack (the
 *    bpf_skb_ct_lookup kfunc) about the packet's own TCP/UDP tuple, which matches an
 *    entry in either direction; an entry with IPS_SRC_NAT or IPS_DST_NAT sends the
 *    packet to the stack. Pod-to-pod traffic never enters the stack, so it has no entry
 *    and stays on the fast path at the cost of one hash lookup. The kfuncs are weak and
 *    called only when the loader set twill_conntrack: without nf_conntrack the verifier
 *    drops the dead call and the programs still load (without Services support).
 *    Non-first fragments carry no ports and ICMP errors are not looked up: both stay on
 *    the fast path.
 *  - The guard counts only its drops: counting every underlay packet it passes would
 *    bury the pod counters under node traffic. It never drops what it cannot parse:
 *    it sits on the node's own uplink, and an escaped pod packet is a well-formed one.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "twill_common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader when the kernel has the conntrack kfuncs (lib/datapath.c). */
const volatile __u32 twill_conntrack = 0;

/* Only the field we read; CO-RE finds its offset in the running kernel. */
struct nf_conn {
	unsigned long status;
} __attribute__((preserve_access_index));

/* As net/netfilter/nf_conntrack_bpf.c defines it (NF_BPF_CT_OPTS_SZ, 16 bytes). */
struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u16 ct_zone_id;
	__u8 ct_zone_dir;
	__u8 reserved[3];
};

#define TWILL_CT_CURRENT_NETNS (-1) /* BPF_F_CURRENT_NETNS */

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple,
					 __u32 tuple_sz, struct bpf_ct_opts *opts,
					 __u32 opts_sz) __weak __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __weak __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TWILL_MAX_ROUTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct twill_route_key);
	__type(value, struct twill_route_value);
} twill_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TWILL_MAX_ENDPOINTS);
	__type(key, struct twill_endpoint_key);
	__type(value, struct twill_endpoint_value);
} twill_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct twill_config);
} twill_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TWILL_R_MAX);
	__type(key, __u32);
	__type(value, struct twill_counter);
} twill_counters SEC(".maps");

static __always_inline void count(struct __sk_buff *skb, __u32 reason)
{
	struct twill_counter *c = bpf_map_lookup_elem(&twill_counters, &reason);

	if (c) {
		c->packets++;
		c->bytes += skb->len;
	}
}

static __always_inline int verdict(struct __sk_buff *skb, __u32 reason, int action)
{
	count(skb, reason);
	return action;
}

static __always_inline struct twill_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&twill_config, &zero);
}

static __always_inline int in_cluster(const struct twill_config *cfg, __u32 addr)
{
	__u32 plen = cfg->cluster_prefixlen;
	__u32 mask;

	if (plen == 0 || plen > 32)
		return 0;
	mask = bpf_htonl(plen == 32 ? 0xffffffffu : ~(0xffffffffu >> plen));
	return (addr & mask) == (cfg->cluster_addr & mask);
}

/*
 * Where the IPv4 header starts: 0 on an L3 device (TUN: wireguard-go, kernel
 * WireGuard), ETH_HLEN on an Ethernet device. skb->protocol is IPv4 in both cases and
 * __sk_buff does not expose mac_len, so look at the bytes: a bare IPv4 header whose
 * total length is the whole skb (0 for a >64 KiB BIG TCP aggregate) is L3; otherwise an
 * Ethernet header with the IPv4 EtherType. A unicast MAC cannot start with 0x45 (that
 * is a multicast address), which keeps the first test from mistaking a frame for L3.
 * Returns -1 when neither fits.
 */
static __always_inline int l3_offset(struct __sk_buff *skb)
{
	__u8 b[ETH_HLEN];
	__u16 tot_len;

	if (bpf_skb_load_bytes(skb, 0, b, sizeof(b)) < 0)
		return -1;
	tot_len = ((__u16)b[2] << 8) | b[3];
	if ((b[0] >> 4) == 4 && (b[0] & 0xf) >= 5 &&
	    (tot_len == skb->len || (tot_len == 0 && skb->len > 0xffff)))
		return 0;
	if (b[12] == 0x08 && b[13] == 0x00)
		return ETH_HLEN;
	return -1;
}

/*
 * A readable IPv4 header at off (0 or ETH_HLEN), pulled into the linear area if the
 * driver left it in a fragment. NULL when the packet is too short or not IPv4.
 */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb, __u32 off)
{
	void *data, *data_end;
	struct iphdr *ip;

	if (off > ETH_HLEN)
		return NULL;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + off + sizeof(*ip) > data_end) {
		if (bpf_skb_pull_data(skb, off + sizeof(*ip)) < 0)
			return NULL;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	ip = data + off;
	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (ip->version != 4 || ip->ihl < 5 || off + ip->ihl * 4 > skb->len)
		return NULL;
	return ip;
}

/* RFC 1624 incremental update; both words in the same (memory) byte order. */
static __always_inline void csum_replace2(__u16 *sum, __u16 from, __u16 to)
{
	__u32 csum = (__u16)~*sum;

	csum += (__u16)~from;
	csum += to;
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	*sum = (__u16)~csum;
}

/* 0 when decremented; -1 when the TTL would expire (the stack must answer then). */
static __always_inline int ipv4_dec_ttl(struct iphdr *ip)
{
	__u16 *word = (__u16 *)&ip->ttl; /* ttl and protocol: one checksum word */
	__u16 from;

	if (ip->ttl <= 1)
		return -1;
	from = *word;
	ip->ttl--;
	csum_replace2(&ip->check, from, *word);
	return 0;
}

/*
 * 1 when the packet belongs to a connection the host NATed (a Service): it must take
 * the stack. Call before rewriting anything: the stack needs the packet as it came.
 */
static __always_inline int conn_is_nated(struct __sk_buff *skb, const struct iphdr *ip,
					 __u32 l3_off)
{
	struct bpf_ct_opts opts = { .netns_id = TWILL_CT_CURRENT_NETNS };
	struct bpf_sock_tuple tuple = { 0 };
	struct nf_conn *ct;
	__u16 ports[2];
	int nated;

	if (!twill_conntrack)
		return 0;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0;
	opts.l4proto = ip->protocol;
	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	if (bpf_skb_load_bytes(skb, l3_off + ip->ihl * 4, ports, sizeof(ports)) < 0)
		return 0;
	tuple.ipv4.sport = ports[0];
	tuple.ipv4.dport = ports[1];
	ct = bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));
	if (!ct)
		return 0;
	nated = (ct->status & IPS_NAT_MASK) != 0;
	bpf_ct_release(ct);
	return nated;
}

static __always_inline int redirect_to_pod(const struct twill_config *cfg,
					   const struct twill_endpoint_value *ep)
{
	if (cfg && (cfg->flags & TWILL_CFG_F_NO_REDIRECT_PEER))
		return bpf_redirect(ep->host_ifindex, 0);
	return bpf_redirect_peer(ep->host_ifindex, 0);
}

static __always_inline void eth_fill(struct ethhdr *eth, const struct twill_endpoint_value *ep)
{
	__builtin_memcpy(eth->h_dest, ep->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ep->host_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
}

SEC("tc")
int twill_pod_ingress(struct __sk_buff *skb)
{
	struct twill_config *cfg = config_get();
	struct twill_endpoint_value *ep;
	struct twill_route_value *route;
	struct twill_route_key rkey;
	struct twill_endpoint_key ekey;
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return verdict(skb, TWILL_R_PASS_STACK, TC_ACT_OK);
	ip = ipv4_header(skb, ETH_HLEN);
	if (!ip)
		return verdict(skb, TWILL_R_DROP_MALFORMED, TC_ACT_SHOT);

	ekey.addr = ip->daddr;
	ep = bpf_map_lookup_elem(&twill_endpoints, &ekey);
	if (ep) {
		if (conn_is_nated(skb, ip, ETH_HLEN))
			return verdict(skb, TWILL_R_PASS_NAT, TC_ACT_OK);
		if (ipv4_dec_ttl(ip) < 0)
			return verdict(skb, TWILL_R_PASS_STACK, TC_ACT_OK);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return verdict(skb, TWILL_R_DROP_MALFORMED, TC_ACT_SHOT);
		eth_fill(eth, ep);
		count(skb, TWILL_R_TO_LOCAL_POD);
		return redirect_to_pod(cfg, ep);
	}

	rkey.prefixlen = 32;
	rkey.addr = ip->daddr;
	route = bpf_map_lookup_elem(&twill_routes, &rkey);
	if (route) {
		/* A Service backend's reply towards a client on another node, NodePort... */
		if (conn_is_nated(skb, ip, ETH_HLEN))
			return verdict(skb, TWILL_R_PASS_NAT, TC_ACT_OK);
		if (ipv4_dec_ttl(ip) < 0)
			return verdict(skb, TWILL_R_PASS_STACK, TC_ACT_OK);
		/*
		 * The WireGuard device has no MAC header: the redirect strips ours
		 * (__bpf_redirect_no_mac), so there is nothing to rewrite.
		 */
		count(skb, TWILL_R_TO_WIREGUARD);
		return bpf_redirect(route->ifindex, 0);
	}

	if (cfg && cfg->strict && in_cluster(cfg, ip->daddr))
		return verdict(skb, TWILL_R_DROP_NO_ROUTE, TC_ACT_SHOT);
	return verdict(skb, TWILL_R_PASS_STACK, TC_ACT_OK);
}

SEC("tc")
int twill_wg_ingress(struct __sk_buff *skb)
{
	struct twill_config *cfg = config_get();
	struct twill_endpoint_value *ep;
	struct twill_endpoint_key ekey;
	struct ethhdr eth;
	struct iphdr *ip;
	int off;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return verdict(skb, TWILL_R_PASS_STACK, TC_ACT_OK);
	off = l3_offset(skb);
	if (off < 0)
		return verdict(skb, TWILL_R_DROP_MALFORMED, TC_ACT_SHOT);
	ip = ipv4_header(skb, off);
	if (!ip)
		return verdict(skb, TWILL_R_DROP_MALFORMED, TC_ACT_SHOT);

	ekey.addr = ip->daddr;
	ep = bpf_map_lookup_elem(&twill_endpoints, &ekey);
	if (!ep)
		return verdict(skb, TWILL_R_PASS_STACK, TC_ACT_OK);
	if (conn_is_nated(skb, ip, off))
		return verdict(skb, TWILL_R_PASS_NAT, TC_ACT_OK);
	if (ipv4_dec_ttl(ip) < 0)
		return verdict(skb, TWILL_R_PASS_STACK, TC_ACT_OK);

	/*
	 * An L3 skb needs a MAC header before it can enter a veth: change_head pushes
	 * zeroed room and resets the mac header, exactly for this redirect.
	 */
	if (off == 0 && bpf_skb_change_head(skb, ETH_HLEN, 0) < 0)
		return verdict(skb, TWILL_R_DROP_REDIRECT, TC_ACT_SHOT);
	eth_fill(&eth, ep);
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0)
		return verdict(skb, TWILL_R_DROP_REDIRECT, TC_ACT_SHOT);
	count(skb, TWILL_R_WG_TO_POD);
	return redirect_to_pod(cfg, ep);
}

SEC("tc")
int twill_underlay_guard(struct __sk_buff *skb)
{
	struct twill_config *cfg;
	struct iphdr *ip;
	int off;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	cfg = config_get();
	if (!cfg || !cfg->strict)
		return TC_ACT_OK;
	/* Only what is positively pod-to-pod is dropped: the node's own traffic must flow. */
	off = l3_offset(skb);
	if (off < 0)
		return TC_ACT_OK;
	ip = ipv4_header(skb, off);
	if (!ip)
		return TC_ACT_OK;
	if (in_cluster(cfg, ip->saddr) && in_cluster(cfg, ip->daddr))
		return verdict(skb, TWILL_R_DROP_ESCAPED, TC_ACT_SHOT);
	return TC_ACT_OK;
}
