// SPDX-License-Identifier: Apache-2.0
/*
 * The pure half of inspect: every function here reads a snapshot and nothing else,
 * so the answers twillctl gives are tested with snapshots built by hand. The trace
 * mirrors the lookups the BPF programs make, in the same order, over the same maps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "inspect.h"
#include "wgkey.h"

/* The lower-case names are datapath's (datapath_reason_name): one spelling everywhere. */
static const struct {
	const char *enum_name;
	const char *description;
} reasons[TWILL_R_MAX] = {
	[TWILL_R_TO_WIREGUARD] = { "TWILL_R_TO_WIREGUARD",
				   "pod to a remote node's pod CIDR, redirected into WireGuard" },
	[TWILL_R_TO_LOCAL_POD] = { "TWILL_R_TO_LOCAL_POD",
				   "pod to a pod on this node, veth to veth" },
	[TWILL_R_WG_TO_POD] = { "TWILL_R_WG_TO_POD",
				"decrypted packet delivered straight into a pod" },
	[TWILL_R_PASS_STACK] = { "TWILL_R_PASS_STACK",
				 "handed to the kernel stack (node, outside the cluster)" },
	[TWILL_R_DROP_NO_ROUTE] = { "TWILL_R_DROP_NO_ROUTE",
				    "strict mode: cluster destination with no route entry" },
	[TWILL_R_DROP_ESCAPED] = { "TWILL_R_DROP_ESCAPED",
				   "underlay guard: pod cluster traffic outside the tunnel" },
	[TWILL_R_DROP_MALFORMED] = { "TWILL_R_DROP_MALFORMED",
				     "truncated or unparsable header" },
	[TWILL_R_DROP_REDIRECT] = { "TWILL_R_DROP_REDIRECT",
				    "redirect or header rewrite failed" },
	[TWILL_R_PASS_NAT] = { "TWILL_R_PASS_NAT",
			       "connection NATed by the host (Services): handed to the stack" },
};

const char *inspect_reason_enum_name(int reason)
{
	return reason >= 0 && reason < TWILL_R_MAX ? reasons[reason].enum_name : "?";
}

const char *inspect_reason_name(int reason)
{
	return reason >= 0 && reason < TWILL_R_MAX ? datapath_reason_name((unsigned int)reason) :
						     "?";
}

const char *inspect_reason_description(int reason)
{
	return reason >= 0 && reason < TWILL_R_MAX ? reasons[reason].description : "?";
}

double inspect_rate(uint64_t prev, uint64_t cur, double secs)
{
	/* Counters only grow; one that went back was reset by a reload of the dataplane. */
	if (cur < prev || secs <= 0)
		return 0;
	return (double)(cur - prev) / secs;
}

const char *inspect_addr_kind_name(enum inspect_addr_kind kind)
{
	switch (kind) {
	case INSPECT_ADDR_LOCAL_POD:
		return "local pod";
	case INSPECT_ADDR_LOCAL_CIDR:
		return "this node's pod CIDR (no such pod)";
	case INSPECT_ADDR_REMOTE_POD:
		return "remote pod";
	case INSPECT_ADDR_CLUSTER:
		return "cluster range (no node owns it)";
	case INSPECT_ADDR_OUTSIDE:
		return "outside the cluster";
	}
	return "?";
}

void inspect_endpoint_str(const union wg_endpoint *ep, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ep->addr.sa_family == AF_INET) {
		inet_ntop(AF_INET, &ep->addr4.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(ep->addr4.sin_port));
	} else if (ep->addr.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->addr6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(ep->addr6.sin6_port));
	} else {
		snprintf(buf, len, "(none)");
	}
}

static bool prefix_contains(struct in_addr net, unsigned int len, struct in_addr addr)
{
	uint32_t mask;

	if (len == 0)
		return true;
	if (len > 32)
		return false;
	mask = htonl(len == 32 ? 0xffffffffu : ~(0xffffffffu >> len));
	return (net.s_addr & mask) == (addr.s_addr & mask);
}


/*
 * Sorted views of the snapshot so a node with thousands of peers answers in
 * milliseconds. Every lookup below has the same answer with or without them (the
 * unit tests run both ways); ties go to the lowest index, as the linear scans do.
 */
struct ptab_ent {
	uint32_t net;   /* host order, masked to len */
	uint32_t len;
	uint32_t idx;
};

struct ptab {
	struct ptab_ent *e;
	size_t n;
};

struct inspect_index {
	struct ptab routes;        /* route map: idx into route_keys */
	struct ptab kroutes;       /* idx into kroutes */
	struct ptab allowed;       /* IPv4 allowed IPs: idx of the peer */
	struct ptab topo_nets;     /* idx into topo->nodes */
	const struct topo_node **topo_keys;   /* sorted by public key */
	size_t n_topo_keys;
};

static uint32_t mask_of(unsigned int len)
{
	return len == 0 ? 0 : len >= 32 ? 0xffffffffu : ~(0xffffffffu >> len);
}

static int ptab_cmp(const void *a, const void *b)
{
	const struct ptab_ent *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->net != y->net)
		return x->net < y->net ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int ptab_add(struct ptab *t, size_t cap, struct in_addr net, unsigned int len, size_t idx)
{
	if (!t->e) {
		t->e = calloc(cap ? cap : 1, sizeof(*t->e));
		if (!t->e)
			return -ENOMEM;
	}
	if (len > 32)
		return 0;
	t->e[t->n++] = (struct ptab_ent){ .net = ntohl(net.s_addr) & mask_of(len), .len = len,
					  .idx = (uint32_t)idx };
	return 0;
}

static void ptab_sort(struct ptab *t)
{
	if (t->n)
		qsort(t->e, t->n, sizeof(*t->e), ptab_cmp);
}

/* The lowest idx holding exactly net/len, or -1. */
static ssize_t ptab_exact(const struct ptab *t, uint32_t net, unsigned int len)
{
	size_t lo = 0, hi = t->n;
	struct ptab_ent key = { .net = net & mask_of(len), .len = len, .idx = 0 };

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ptab_cmp(&t->e[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->n && t->e[lo].len == key.len && t->e[lo].net == key.net)
		return (ssize_t)t->e[lo].idx;
	return -1;
}

/* Longest prefix of at most maxlen bits holding addr. */
static ssize_t ptab_lpm(const struct ptab *t, struct in_addr addr, unsigned int maxlen)
{
	uint32_t a = ntohl(addr.s_addr);

	for (int len = (int)(maxlen > 32 ? 32 : maxlen); len >= 0 && t->n; len--) {
		ssize_t i = ptab_exact(t, a, (unsigned int)len);

		if (i >= 0)
			return i;
	}
	return -1;
}

static int topo_key_cmp(const void *a, const void *b)
{
	const struct topo_node *x = *(const struct topo_node *const *)a;
	const struct topo_node *y = *(const struct topo_node *const *)b;
	int c = memcmp(x->public_key, y->public_key, WG_KEY_LEN);

	return c ? c : (x < y ? -1 : x > y);
}

void inspect_index_free(struct inspect_index *ix)
{
	if (!ix)
		return;
	free(ix->routes.e);
	free(ix->kroutes.e);
	free(ix->allowed.e);
	free(ix->topo_nets.e);
	free(ix->topo_keys);
	free(ix);
}

int inspect_snapshot_index(struct inspect_snapshot *s)
{
	struct inspect_index *ix = calloc(1, sizeof(*ix));
	size_t n_allowed = 0, n_topo = s->topo ? s->topo->n_nodes : 0;
	int ret = -ENOMEM;

	if (!ix)
		return -ENOMEM;
	for (size_t i = 0; s->wg && i < s->wg->n_peers; i++)
		n_allowed += s->wg->peers[i].n_allowed_ips;
	for (size_t i = 0; i < s->n_routes; i++) {
		struct in_addr net = { .s_addr = s->route_keys[i].addr };

		if (ptab_add(&ix->routes, s->n_routes, net, s->route_keys[i].prefixlen, i))
			goto cleanup;
	}
	for (size_t i = 0; i < s->n_kroutes; i++)
		if (ptab_add(&ix->kroutes, s->n_kroutes, s->kroutes[i].dst, s->kroutes[i].dst_len, i))
			goto cleanup;
	for (size_t i = 0; s->wg && i < s->wg->n_peers; i++)
		for (size_t j = 0; j < s->wg->peers[i].n_allowed_ips; j++) {
			const struct wg_allowed_ip *a = &s->wg->peers[i].allowed_ips[j];

			if (a->family == AF_INET && ptab_add(&ix->allowed, n_allowed, a->ip4, a->cidr, i))
				goto cleanup;
		}
	ix->topo_keys = calloc(n_topo ? n_topo : 1, sizeof(*ix->topo_keys));
	if (!ix->topo_keys)
		goto cleanup;
	for (size_t i = 0; i < n_topo; i++) {
		const struct topo_node *tn = &s->topo->nodes[i];

		ix->topo_keys[ix->n_topo_keys++] = tn;
		if (tn->pod_prefixlen &&
		    ptab_add(&ix->topo_nets, n_topo, tn->pod_net, tn->pod_prefixlen, i))
			goto cleanup;
	}
	ptab_sort(&ix->routes);
	ptab_sort(&ix->kroutes);
	ptab_sort(&ix->allowed);
	ptab_sort(&ix->topo_nets);
	if (ix->n_topo_keys)
		qsort(ix->topo_keys, ix->n_topo_keys, sizeof(*ix->topo_keys), topo_key_cmp);
	inspect_index_free(s->index);
	s->index = ix;
	ix = NULL;
	ret = 0;
cleanup:
	inspect_index_free(ix);
	return ret;
}

static void appendf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(buf, len);
	va_list ap;

	if (used + 1 >= len)
		return;
	if (used) {
		snprintf(buf + used, len - used, "; ");
		used = strnlen(buf, len);
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

const struct inspect_link *inspect_link_by_index(const struct inspect_snapshot *s, int ifindex)
{
	for (size_t i = 0; i < s->n_links && ifindex > 0; i++)
		if (s->links[i].info.ifindex == ifindex)
			return &s->links[i];
	return NULL;
}

const struct inspect_link *inspect_link_by_name(const struct inspect_snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->n_links && name && *name; i++)
		if (!strcmp(s->links[i].info.name, name))
			return &s->links[i];
	return NULL;
}

int inspect_wg_ifindex(const struct inspect_snapshot *s)
{
	const struct inspect_link *l = inspect_link_by_name(s, s->wg_ifname);

	if (l)
		return l->info.ifindex;
	if (s->wg && s->wg->ifindex > 0)
		return s->wg->ifindex;
	if (s->have_config)
		return (int)s->config.wg_ifindex;
	return 0;
}

const char *inspect_link_name(const struct inspect_snapshot *s, int ifindex, char *buf, size_t len)
{
	const struct inspect_link *l = inspect_link_by_index(s, ifindex);

	if (l)
		return l->info.name;
	snprintf(buf, len, "ifindex %d", ifindex);
	return buf;
}

static bool cluster_contains(const struct inspect_snapshot *s, struct in_addr addr)
{
	if (s->have_config && s->config.cluster_prefixlen) {
		struct in_addr net = { .s_addr = s->config.cluster_addr };

		return prefix_contains(net, s->config.cluster_prefixlen, addr);
	}
	if (s->have_state && s->state.cluster_prefixlen)
		return prefix_contains(s->state.cluster_net, s->state.cluster_prefixlen, addr);
	return false;
}

static bool local_cidr_contains(const struct inspect_snapshot *s, struct in_addr addr)
{
	if (s->have_state && s->state.pod_prefixlen)
		return prefix_contains(s->state.pod_net, s->state.pod_prefixlen, addr);
	if (s->have_config && s->config.node_prefixlen) {
		struct in_addr net = { .s_addr = s->config.node_addr };

		return prefix_contains(net, s->config.node_prefixlen, addr);
	}
	return false;
}

static bool strict_mode(const struct inspect_snapshot *s)
{
	if (s->have_config)
		return s->config.strict != 0;
	return s->have_state && s->state.strict;
}

static const struct twill_endpoint_value *endpoint_lookup(const struct inspect_snapshot *s,
							  struct in_addr addr)
{
	for (size_t i = 0; i < s->n_endpoints; i++)
		if (s->endpoint_keys[i].addr == addr.s_addr)
			return &s->endpoint_values[i];
	return NULL;
}

/* Longest prefix match, as the LPM trie answers. */
static ssize_t route_lookup(const struct inspect_snapshot *s, struct in_addr addr)
{
	ssize_t best = -1;

	if (s->index)
		return ptab_lpm(&s->index->routes, addr, 32);
	for (size_t i = 0; i < s->n_routes; i++) {
		struct in_addr net = { .s_addr = s->route_keys[i].addr };

		if (!prefix_contains(net, s->route_keys[i].prefixlen, addr))
			continue;
		if (best < 0 || s->route_keys[i].prefixlen > s->route_keys[best].prefixlen)
			best = (ssize_t)i;
	}
	return best;
}

static ssize_t route_exact(const struct inspect_snapshot *s, struct in_addr net, unsigned int len)
{
	if (s->index) {
		ssize_t i = ptab_exact(&s->index->routes, ntohl(net.s_addr), len);

		/* the map may hold an unmasked key; the linear scan compares it as stored */
		return i >= 0 && s->route_keys[i].addr == net.s_addr ? i : -1;
	}
	for (size_t i = 0; i < s->n_routes; i++)
		if (s->route_keys[i].addr == net.s_addr && s->route_keys[i].prefixlen == len)
			return (ssize_t)i;
	return -1;
}

static const struct nl_route *kernel_lookup(const struct inspect_snapshot *s, struct in_addr net,
					    unsigned int len)
{
	const struct nl_route *best = NULL;

	if (s->index) {
		ssize_t i = ptab_lpm(&s->index->kroutes, net, len);

		return i >= 0 ? &s->kroutes[i] : NULL;
	}
	for (size_t i = 0; i < s->n_kroutes; i++) {
		const struct nl_route *r = &s->kroutes[i];

		if (r->dst_len > len || !prefix_contains(r->dst, r->dst_len, net))
			continue;
		if (!best || r->dst_len > best->dst_len)
			best = r;
	}
	return best;
}

/* WireGuard's cryptokey routing: the peer whose allowed IPs hold addr most specifically. */
static const struct wg_peer *wg_peer_for(const struct inspect_snapshot *s, struct in_addr addr)
{
	const struct wg_peer *best = NULL;
	int best_len = -1;

	if (s->index) {
		ssize_t i = ptab_lpm(&s->index->allowed, addr, 32);

		return i >= 0 ? &s->wg->peers[i] : NULL;
	}
	for (size_t i = 0; s->wg && i < s->wg->n_peers; i++) {
		const struct wg_peer *p = &s->wg->peers[i];

		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct wg_allowed_ip *a = &p->allowed_ips[j];

			if (a->family != AF_INET || !prefix_contains(a->ip4, a->cidr, addr))
				continue;
			if (a->cidr > best_len) {
				best = p;
				best_len = a->cidr;
			}
		}
	}
	return best;
}

static const struct wg_peer *wg_peer_exact(const struct inspect_snapshot *s, struct in_addr net,
					   unsigned int len)
{
	if (s->index) {
		ssize_t i = ptab_exact(&s->index->allowed, ntohl(net.s_addr), len);

		return i >= 0 && (ntohl(net.s_addr) & ~mask_of(len)) == 0 ? &s->wg->peers[i] : NULL;
	}
	for (size_t i = 0; s->wg && i < s->wg->n_peers; i++) {
		const struct wg_peer *p = &s->wg->peers[i];

		for (size_t j = 0; j < p->n_allowed_ips; j++)
			if (p->allowed_ips[j].family == AF_INET && p->allowed_ips[j].cidr == len &&
			    p->allowed_ips[j].ip4.s_addr == net.s_addr)
				return p;
	}
	return NULL;
}

static const struct topo_node *topo_by_key(const struct inspect_snapshot *s, const uint8_t *key)
{
	if (s->index) {
		size_t lo = 0, hi = s->index->n_topo_keys;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (memcmp(s->index->topo_keys[mid]->public_key, key, WG_KEY_LEN) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < s->index->n_topo_keys &&
		    !memcmp(s->index->topo_keys[lo]->public_key, key, WG_KEY_LEN))
			return s->index->topo_keys[lo];
		return NULL;
	}
	for (size_t i = 0; s->topo && i < s->topo->n_nodes; i++)
		if (!memcmp(s->topo->nodes[i].public_key, key, WG_KEY_LEN))
			return &s->topo->nodes[i];
	return NULL;
}

static const struct topo_node *topo_by_addr(const struct inspect_snapshot *s, struct in_addr addr)
{
	if (s->index) {
		ssize_t i = ptab_lpm(&s->index->topo_nets, addr, 32);

		return i >= 0 ? &s->topo->nodes[i] : NULL;
	}
	for (size_t i = 0; s->topo && i < s->topo->n_nodes; i++)
		if (s->topo->nodes[i].pod_prefixlen &&
		    prefix_contains(s->topo->nodes[i].pod_net, s->topo->nodes[i].pod_prefixlen, addr))
			return &s->topo->nodes[i];
	return NULL;
}

static bool same_addr(const union wg_endpoint *a, const union wg_endpoint *b)
{
	if (a->addr.sa_family != b->addr.sa_family)
		return false;
	if (a->addr.sa_family == AF_INET)
		return a->addr4.sin_addr.s_addr == b->addr4.sin_addr.s_addr;
	if (a->addr.sa_family == AF_INET6)
		return !memcmp(&a->addr6.sin6_addr, &b->addr6.sin6_addr, sizeof(struct in6_addr));
	return false;
}

static const struct in_addr *peer_first_ip4(const struct wg_peer *p)
{
	for (size_t j = 0; p && j < p->n_allowed_ips; j++)
		if (p->allowed_ips[j].family == AF_INET)
			return &p->allowed_ips[j].ip4;
	return NULL;
}

/*
 * Names a peer's node and path from what is configured: the route map's private flag
 * first (what the dataplane was told), then the topology's private-ip for that node
 * (the endpoint WireGuard actually uses).
 */
static void peer_describe(const struct inspect_snapshot *s, const struct wg_peer *p,
			  const struct twill_route_value *route, char *node, char *path,
			  bool *is_private)
{
	const struct topo_node *tn = NULL;
	const struct in_addr *ip = peer_first_ip4(p);
	bool private = false;

	if (p)
		tn = topo_by_key(s, p->public_key);
	if (!tn && ip)
		tn = topo_by_addr(s, *ip);
	if (!route && ip) {
		ssize_t r = route_lookup(s, *ip);

		if (r >= 0)
			route = &s->route_values[r];
	}
	if (route)
		private = (route->flags & TWILL_ROUTE_F_PRIVATE) != 0;
	else if (tn && p && tn->private_addr.addr.sa_family)
		private = same_addr(&tn->private_addr, &p->endpoint);

	snprintf(node, TOPO_NAME_MAX, "%s", tn ? tn->name : "");
	if (private && tn && tn->private_network[0])
		snprintf(path, TOPO_NAME_MAX, "%s", tn->private_network);
	else
		snprintf(path, TOPO_NAME_MAX, "%s", private ? "private" : "public");
	*is_private = private;
}

/*
 * Since when the peer has been configured, in unix seconds (0 unknown). WireGuard keeps
 * no such time, so it comes from what the agent did in the same reconcile that added
 * the peer: the route map entry for the peer's CIDR, which lib/datapath.c stamps when the
 * CIDR is first routed and keeps across updates (exact). Without one (an agent run with
 * --no-bpf, a map from before the stamp), the running agent's start from node.json: a
 * peer the agent adopted from its predecessor is older than that, so the answer is
 * never too old, which is the side to err on; a peer added later than the start is
 * taken as configured then.
 */
static int64_t peer_configured_since(const struct inspect_snapshot *s, const struct wg_peer *p)
{
	for (size_t j = 0; p && j < p->n_allowed_ips; j++) {
		const struct wg_allowed_ip *a = &p->allowed_ips[j];
		ssize_t r;

		if (a->family != AF_INET)
			continue;
		r = route_exact(s, a->ip4, a->cidr);
		if (r >= 0 && s->route_values[r].since)
			return s->route_values[r].since;
	}
	if (s->have_state && s->state.agent_start_unix > 0)
		return s->state.agent_start_unix;
	return 0;
}

int inspect_peers(const struct inspect_snapshot *s, struct inspect_peer_row **out,
		  size_t *count)
{
	struct inspect_peer_row *rows;
	size_t n = s->wg ? s->wg->n_peers : 0;

	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct wg_peer *p = &s->wg->peers[i];
		struct inspect_peer_row *r = &rows[i];
		int64_t since = peer_configured_since(s, p);

		r->peer = p;
		peer_describe(s, p, NULL, r->node, r->path, &r->is_private);
		r->configured_age = since ? s->now - since : -1;
		if (since && r->configured_age < 0)
			r->configured_age = 0;
		if (p->last_handshake_sec <= 0) {
			/*
			 * WireGuard shakes hands on the first packet: an idle peer of a fresh
			 * node has none yet and is not broken. Unknown age: stale, since
			 * nothing says the peer is new.
			 */
			r->handshake_age = -1;
			r->stale = r->configured_age < 0 ||
				   r->configured_age > INSPECT_STALE_HANDSHAKE_SEC;
			r->pending = !r->stale;
		} else {
			r->handshake_age = s->now - p->last_handshake_sec;
			if (r->handshake_age < 0)
				r->handshake_age = 0;
			r->stale = r->handshake_age > INSPECT_STALE_HANDSHAKE_SEC;
		}
	}
	*out = rows;
	*count = n;
	return 0;
}

struct cidr {
	struct in_addr net;
	uint8_t len;
};

/* Duplicates are removed after sorting. */
static int cidr_add(struct cidr **set, size_t *n, size_t *cap, struct in_addr net, uint8_t len)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct cidr *grown = realloc(*set, ncap * sizeof(**set));

		if (!grown)
			return -ENOMEM;
		*set = grown;
		*cap = ncap;
	}
	(*set)[(*n)++] = (struct cidr){ .net = net, .len = len };
	return 0;
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct cidr *x = a, *y = b;
	uint32_t xa = ntohl(x->net.s_addr), ya = ntohl(y->net.s_addr);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	return (int)x->len - (int)y->len;
}

/* Cluster-wide kernel routes via WireGuard cover the per-node ones; they are not rows. */
static bool kernel_route_is_per_node(const struct inspect_snapshot *s, const struct nl_route *r)
{
	if (r->dst_len == 0)
		return false;
	if (s->have_config && s->config.cluster_prefixlen)
		return r->dst_len > s->config.cluster_prefixlen;
	if (s->have_state && s->state.cluster_prefixlen)
		return r->dst_len > s->state.cluster_prefixlen;
	return true;
}

int inspect_routes(const struct inspect_snapshot *s, struct inspect_route_row **out,
		   size_t *count)
{
	struct cidr *set = NULL;
	size_t n = 0, cap = 0;
	struct inspect_route_row *rows = NULL;
	int wg_ifindex = inspect_wg_ifindex(s);
	int ret;

	for (size_t i = 0; i < s->n_routes; i++) {
		struct in_addr net = { .s_addr = s->route_keys[i].addr };

		ret = cidr_add(&set, &n, &cap, net, (uint8_t)s->route_keys[i].prefixlen);
		if (ret)
			goto cleanup;
	}
	for (size_t i = 0; s->wg && i < s->wg->n_peers; i++)
		for (size_t j = 0; j < s->wg->peers[i].n_allowed_ips; j++) {
			const struct wg_allowed_ip *a = &s->wg->peers[i].allowed_ips[j];

			if (a->family != AF_INET)
				continue;
			ret = cidr_add(&set, &n, &cap, a->ip4, a->cidr);
			if (ret)
				goto cleanup;
		}
	for (size_t i = 0; i < s->n_kroutes && wg_ifindex > 0; i++) {
		const struct nl_route *r = &s->kroutes[i];

		if (r->ifindex != wg_ifindex || !kernel_route_is_per_node(s, r))
			continue;
		ret = cidr_add(&set, &n, &cap, r->dst, (uint8_t)r->dst_len);
		if (ret)
			goto cleanup;
	}
	if (n) {
		size_t u = 1;

		qsort(set, n, sizeof(*set), cidr_cmp);
		for (size_t i = 1; i < n; i++)
			if (cidr_cmp(&set[i], &set[u - 1]))
				set[u++] = set[i];
		n = u;
	}

	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		struct inspect_route_row *r = &rows[i];
		ssize_t b = route_exact(s, set[i].net, set[i].len);
		const struct nl_route *k = kernel_lookup(s, set[i].net, set[i].len);
		char ifbuf[32], ip[INET_ADDRSTRLEN], wgname[32];
		bool is_private;
		char path[TOPO_NAME_MAX];

		r->net = set[i].net;
		r->prefixlen = set[i].len;
		r->peer = wg_peer_exact(s, set[i].net, set[i].len);
		if (b >= 0) {
			r->in_bpf = true;
			r->bpf = s->route_values[b];
		}
		if (k) {
			r->in_kernel = true;
			r->kernel = *k;
		}
		peer_describe(s, r->peer, r->in_bpf ? &r->bpf : NULL, r->node, path, &is_private);
		if (!r->node[0]) {
			const struct topo_node *tn = topo_by_addr(s, r->net);

			if (tn)
				snprintf(r->node, sizeof(r->node), "%s", tn->name);
		}
		snprintf(wgname, sizeof(wgname), "%s", s->wg_ifname[0] ? s->wg_ifname : "WireGuard");

		/* An agent running without the dataplane routes through the kernel only. */
		if (!r->in_bpf) {
			if (s->dp_loaded || !s->have_state || s->state.dataplane_loaded)
				appendf(r->problem, sizeof(r->problem), "no BPF route");
		} else if (wg_ifindex > 0 && (int)r->bpf.ifindex != wg_ifindex)
			appendf(r->problem, sizeof(r->problem), "BPF route points at %s, not %s",
				inspect_link_name(s, (int)r->bpf.ifindex, ifbuf, sizeof(ifbuf)), wgname);
		if (!r->in_kernel)
			appendf(r->problem, sizeof(r->problem), "no kernel route");
		else if (wg_ifindex <= 0 || r->kernel.ifindex != wg_ifindex) {
			inet_ntop(AF_INET, &r->kernel.dst, ip, sizeof(ip));
			appendf(r->problem, sizeof(r->problem), "kernel route %s/%u goes via %s, not %s",
				ip, r->kernel.dst_len,
				inspect_link_name(s, r->kernel.ifindex, ifbuf, sizeof(ifbuf)), wgname);
		}
		if (!r->peer)
			appendf(r->problem, sizeof(r->problem), "no WireGuard peer allows it");
		else if (r->in_bpf && r->bpf.node_addr &&
			 r->peer->endpoint.addr.sa_family == AF_INET &&
			 r->peer->endpoint.addr4.sin_addr.s_addr != r->bpf.node_addr) {
			char a[INET_ADDRSTRLEN], e[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &r->bpf.node_addr, a, sizeof(a));
			inet_ntop(AF_INET, &r->peer->endpoint.addr4.sin_addr, e, sizeof(e));
			appendf(r->problem, sizeof(r->problem),
				"BPF route says endpoint %s, WireGuard uses %s", a, e);
		}
	}
	*out = rows;
	*count = n;
	rows = NULL;
	ret = 0;
cleanup:
	free(set);
	free(rows);
	return ret;
}

/* The CNI plugin names host veths "tw" and 13 hex digits; "twill0" is not one. */
static bool is_pod_veth(const struct inspect_link *l)
{
	const char *name = l->info.name;
	size_t plen = strlen(INSPECT_VETH_PREFIX);

	if (strncmp(name, INSPECT_VETH_PREFIX, plen) || strlen(name) != IF_NAMESIZE - 1)
		return false;
	if (strspn(name + plen, "0123456789abcdef") != strlen(name + plen))
		return false;
	return !l->info.kind[0] || !strcmp(l->info.kind, "veth");
}

static const struct inspect_link *veth_by_host_route(const struct inspect_snapshot *s,
						     struct in_addr addr)
{
	const struct inspect_link *l;

	for (size_t i = 0; i < s->n_kroutes; i++)
		if (s->kroutes[i].dst_len == 32 && s->kroutes[i].dst.s_addr == addr.s_addr &&
		    (l = inspect_link_by_index(s, s->kroutes[i].ifindex)) && is_pod_veth(l))
			return l;
	return NULL;
}

static struct inspect_pod_row *pod_row_for(struct inspect_pod_row *rows, size_t n,
					   struct in_addr addr)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].addr.s_addr == addr.s_addr && (rows[i].alloc || rows[i].in_endpoints))
			return &rows[i];
	return NULL;
}

static int pod_cmp(const void *a, const void *b)
{
	const struct inspect_pod_row *x = a, *y = b;
	uint32_t xa = ntohl(x->addr.s_addr), ya = ntohl(y->addr.s_addr);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	if (!x->veth || !y->veth)
		return x->veth ? 1 : (y->veth ? -1 : 0);
	return strcmp(x->veth->info.name, y->veth->info.name);
}

int inspect_pods(const struct inspect_snapshot *s, struct inspect_pod_row **out,
		 size_t *count)
{
	size_t cap = s->n_allocs + s->n_endpoints + s->n_links, n = 0;
	struct inspect_pod_row *rows = calloc(cap ? cap : 1, sizeof(*rows));

	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_allocs; i++) {
		struct inspect_pod_row *r = pod_row_for(rows, n, s->allocs[i].addr);

		/* Two attachments on one address would be an IPAM bug: show both. */
		if (!r || r->alloc)
			r = &rows[n++];
		r->alloc = &s->allocs[i];
		r->addr = s->allocs[i].addr;
	}
	for (size_t i = 0; i < s->n_endpoints; i++) {
		struct in_addr addr = { .s_addr = s->endpoint_keys[i].addr };
		struct inspect_pod_row *r = pod_row_for(rows, n, addr);

		if (!r)
			r = &rows[n++];
		r->addr = addr;
		r->in_endpoints = true;
		r->endpoint = s->endpoint_values[i];
		r->veth = inspect_link_by_index(s, (int)r->endpoint.host_ifindex);
	}
	/* Without an endpoint entry: the CNI's naming rule, else the pod's /32 route. */
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].alloc || rows[i].veth)
			continue;
		if (s->alloc_veths)
			rows[i].veth = inspect_link_by_name(s,
				s->alloc_veths[rows[i].alloc - s->allocs]);
		if (!rows[i].veth)
			rows[i].veth = veth_by_host_route(s, rows[i].addr);
	}
	for (size_t i = 0; i < s->n_links; i++) {
		const struct inspect_link *l = &s->links[i];
		bool used = false;

		if (!is_pod_veth(l))
			continue;
		for (size_t j = 0; j < n && !used; j++)
			used = rows[j].veth == l;
		if (!used)
			rows[n++].veth = l;
	}
	for (size_t i = 0; i < n; i++) {
		struct inspect_pod_row *r = &rows[i];

		if (r->alloc && !r->veth) {
			if (r->in_endpoints)
				appendf(r->problem, sizeof(r->problem),
					"allocation without veth (host ifindex %u is gone)",
					r->endpoint.host_ifindex);
			else
				appendf(r->problem, sizeof(r->problem), "allocation without veth");
		} else if (!r->alloc && r->veth) {
			appendf(r->problem, sizeof(r->problem), "veth without allocation");
		} else if (!r->alloc && !r->veth) {
			/* only an endpoint entry is left */
			appendf(r->problem, sizeof(r->problem),
				"endpoint entry without allocation or veth");
		}
		/* Traffic still flows through the kernel's /32 route: degraded, not broken;
		 * by design for a pod with bandwidth limits (the CNI tagged its veth). */
		if (r->veth && r->veth->kernel_path)
			continue;
		if (r->alloc && r->veth && s->dp_loaded && !r->in_endpoints)
			appendf(r->warning, sizeof(r->warning), "no endpoint map entry");
		if (r->veth && s->dp_loaded && !r->veth->prog_ingress[0])
			appendf(r->warning, sizeof(r->warning), "no program attached");
	}
	if (n)
		qsort(rows, n, sizeof(*rows), pod_cmp);
	/* qsort moved the rows; alloc/veth point into the snapshot, so they stay valid. */
	*out = rows;
	*count = n;
	return 0;
}

static void step(struct inspect_trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(struct inspect_trace *t, const char *fmt, ...)
{
	va_list ap;

	if (t->n_steps >= INSPECT_MAX_STEPS)
		return;
	va_start(ap, fmt);
	vsnprintf(t->steps[t->n_steps++], INSPECT_TEXT_MAX, fmt, ap);
	va_end(ap);
}

static enum inspect_addr_kind classify(const struct inspect_snapshot *s, struct in_addr addr)
{
	if (endpoint_lookup(s, addr))
		return INSPECT_ADDR_LOCAL_POD;
	if (local_cidr_contains(s, addr)) {
		for (size_t i = 0; i < s->n_allocs; i++)
			if (s->allocs[i].addr.s_addr == addr.s_addr)
				return INSPECT_ADDR_LOCAL_POD;
		return INSPECT_ADDR_LOCAL_CIDR;
	}
	if (route_lookup(s, addr) >= 0 || wg_peer_for(s, addr) || topo_by_addr(s, addr))
		return INSPECT_ADDR_REMOTE_POD;
	if (cluster_contains(s, addr))
		return INSPECT_ADDR_CLUSTER;
	return INSPECT_ADDR_OUTSIDE;
}

static void trace_set_out(const struct inspect_snapshot *s, struct inspect_trace *t, int ifindex)
{
	const struct inspect_link *l = inspect_link_by_index(s, ifindex);

	if (l) {
		snprintf(t->out_ifname, sizeof(t->out_ifname), "%s", l->info.name);
		t->mtu = l->info.mtu;
	} else {
		snprintf(t->out_ifname, sizeof(t->out_ifname), "ifindex %d", ifindex);
	}
}

/* What WireGuard does with a packet handed to it: cryptokey routing picks the peer. */
static void trace_wireguard(const struct inspect_snapshot *s, struct inspect_trace *t,
			    const struct twill_route_value *route)
{
	const struct wg_peer *p = wg_peer_for(s, t->dst);
	char ep[INET6_ADDRSTRLEN + 8], key_node[TOPO_NAME_MAX];

	if (!p) {
		if (route && route->node_addr) {
			/* Device unreadable or peer missing: the route map still names the endpoint. */
			t->peer_endpoint.addr4.sin_family = AF_INET;
			t->peer_endpoint.addr4.sin_addr.s_addr = route->node_addr;
			t->is_private = (route->flags & TWILL_ROUTE_F_PRIVATE) != 0;
			snprintf(t->path, sizeof(t->path), "%s", t->is_private ? "private" : "public");
			{
				const struct topo_node *tn = topo_by_addr(s, t->dst);

				if (tn) {
					snprintf(t->peer_node, sizeof(t->peer_node), "%s", tn->name);
					if (t->is_private && tn->private_network[0])
						snprintf(t->path, sizeof(t->path), "%s",
							 tn->private_network);
				}
			}
		}
		inet_ntop(AF_INET, &t->dst, ep, sizeof(ep));
		step(t, "WireGuard: no peer's allowed IPs hold %s: WireGuard drops it (no peer)", ep);
		/* handed to the device, but it goes nowhere: a drop, whatever led there */
		snprintf(t->verdict, sizeof(t->verdict), "drop");
		t->wg_drop = true;
		t->out_ifname[0] = '\0';
		t->mtu = 0;
		return;
	}
	t->has_peer = true;
	memcpy(t->peer_key, p->public_key, WG_KEY_LEN);
	t->peer_endpoint = p->endpoint;
	peer_describe(s, p, route, key_node, t->path, &t->is_private);
	snprintf(t->peer_node, sizeof(t->peer_node), "%s", key_node);
	inspect_endpoint_str(&p->endpoint, ep, sizeof(ep));
	if (t->is_private)
		step(t, "WireGuard: peer %s, endpoint %s, private path (%s)",
		     t->peer_node[0] ? t->peer_node : "(node unknown)", ep, t->path);
	else
		step(t, "WireGuard: peer %s, endpoint %s, public path",
		     t->peer_node[0] ? t->peer_node : "(node unknown)", ep);
}

static void trace_kernel(const struct inspect_snapshot *s, struct inspect_trace *t)
{
	const struct nl_route *k = kernel_lookup(s, t->dst, 32);
	const struct inspect_link *out;
	char ifbuf[32], net[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];

	snprintf(t->verdict, sizeof(t->verdict), "kernel stack");
	if (!k) {
		inet_ntop(AF_INET, &t->dst, net, sizeof(net));
		step(t, "kernel stack: no main-table route for %s (unreachable)", net);
		return;
	}
	inet_ntop(AF_INET, &k->dst, net, sizeof(net));
	if (k->gateway.s_addr) {
		inet_ntop(AF_INET, &k->gateway, gw, sizeof(gw));
		step(t, "kernel stack: route %s/%u via %s dev %s", net, k->dst_len, gw,
		     inspect_link_name(s, k->ifindex, ifbuf, sizeof(ifbuf)));
	} else {
		step(t, "kernel stack: route %s/%u dev %s", net, k->dst_len,
		     inspect_link_name(s, k->ifindex, ifbuf, sizeof(ifbuf)));
	}
	trace_set_out(s, t, k->ifindex);
	if (k->ifindex > 0 && k->ifindex == inspect_wg_ifindex(s)) {
		trace_wireguard(s, t, NULL);
		return;
	}
	out = inspect_link_by_index(s, k->ifindex);
	if (out && !strcmp(out->prog_egress, TWILL_PROG_GUARD) && strict_mode(s) &&
	    cluster_contains(s, t->src) && cluster_contains(s, t->dst)) {
		t->reason = TWILL_R_DROP_ESCAPED;
		snprintf(t->verdict, sizeof(t->verdict), "drop");
		t->out_ifname[0] = '\0';
		step(t, "%s on %s egress: pod-to-pod cluster traffic outside the tunnel is dropped "
			"(%s)", TWILL_PROG_GUARD, out->info.name, inspect_reason_enum_name(t->reason));
	}
}

/*
 * The host veth a local pod's packets arrive on: its endpoint entry, else the CNI's
 * name for its allocation, else the /32 route the CNI plugin points at it.
 */
static const struct inspect_link *source_veth(const struct inspect_snapshot *s,
					      struct in_addr src,
					      const struct twill_endpoint_value *src_ep)
{
	const struct inspect_link *l;

	if (src_ep)
		return inspect_link_by_index(s, (int)src_ep->host_ifindex);
	if (!local_cidr_contains(s, src))
		return NULL;
	for (size_t i = 0; s->alloc_veths && i < s->n_allocs; i++)
		if (s->allocs[i].addr.s_addr == src.s_addr &&
		    (l = inspect_link_by_name(s, s->alloc_veths[i])))
			return l;
	return veth_by_host_route(s, src);
}

int inspect_trace(const struct inspect_snapshot *s, struct in_addr src, struct in_addr dst,
		  struct inspect_trace *out)
{
	struct inspect_trace t = { .src = src, .dst = dst, .reason = -1 };
	const struct twill_endpoint_value *src_ep, *dst_ep;
	const struct inspect_link *src_veth, *wg_link;
	char srcs[INET_ADDRSTRLEN], dsts[INET_ADDRSTRLEN], ifbuf[32];
	ssize_t r;
	int wg_ifindex = inspect_wg_ifindex(s);

	inet_ntop(AF_INET, &src, srcs, sizeof(srcs));
	inet_ntop(AF_INET, &dst, dsts, sizeof(dsts));
	t.src_kind = classify(s, src);
	t.dst_kind = classify(s, dst);
	t.pod_mtu = s->have_state ? s->state.mtu : 0;
	snprintf(t.match, sizeof(t.match), "none");
	src_ep = endpoint_lookup(s, src);
	dst_ep = endpoint_lookup(s, dst);

	src_veth = source_veth(s, src, src_ep);
	wg_link = inspect_link_by_index(s, wg_ifindex);
	if (src_veth && strcmp(src_veth->prog_ingress, TWILL_PROG_POD)) {
		step(&t, "%s is a pod on this node behind host veth %s, but %s is not attached "
			 "there: no twill program sees it", srcs, src_veth->info.name, TWILL_PROG_POD);
		trace_kernel(s, &t);
	} else if (src_veth) {
		/* From a local pod: TC ingress on its host veth (twill_pod_ingress). */
		snprintf(t.program, sizeof(t.program), "%s", TWILL_PROG_POD);
		snprintf(t.program_ifname, sizeof(t.program_ifname), "%s", src_veth->info.name);
		if (!src_ep)
			step(&t, "note: %s has no endpoint map entry (packets to it take the "
				 "kernel's route)", srcs);
		step(&t, "%s on %s ingress sees %s -> %s", TWILL_PROG_POD, t.program_ifname, srcs,
		     dsts);
		if (dst_ep) {
			snprintf(t.match, sizeof(t.match), "endpoint");
			t.match_net = dst;
			t.match_prefixlen = 32;
			t.reason = TWILL_R_TO_LOCAL_POD;
			snprintf(t.verdict, sizeof(t.verdict), "redirect");
			trace_set_out(s, &t, (int)dst_ep->host_ifindex);
			step(&t, "endpoint map: %s/32 -> host veth %s: redirect veth to veth (%s)", dsts,
			     t.out_ifname, inspect_reason_enum_name(t.reason));
		} else if ((r = route_lookup(s, dst)) >= 0) {
			const struct twill_route_value *v = &s->route_values[r];

			snprintf(t.match, sizeof(t.match), "route");
			t.match_net.s_addr = s->route_keys[r].addr;
			t.match_prefixlen = (uint8_t)s->route_keys[r].prefixlen;
			t.reason = TWILL_R_TO_WIREGUARD;
			snprintf(t.verdict, sizeof(t.verdict), "redirect");
			trace_set_out(s, &t, (int)v->ifindex);
			step(&t, "route map: %s/%u matches -> redirect to %s (%s)",
			     inet_ntop(AF_INET, &t.match_net, ifbuf, sizeof(ifbuf)), t.match_prefixlen,
			     t.out_ifname, inspect_reason_enum_name(t.reason));
			trace_wireguard(s, &t, v);
		} else if (cluster_contains(s, dst) && strict_mode(s)) {
			t.reason = TWILL_R_DROP_NO_ROUTE;
			snprintf(t.verdict, sizeof(t.verdict), "drop");
			step(&t, "no endpoint and no route for %s, which is in the cluster range, and "
				 "strict mode is on: dropped (%s)", dsts,
			     inspect_reason_enum_name(t.reason));
		} else {
			t.reason = TWILL_R_PASS_STACK;
			step(&t, "no endpoint and no route for %s: passed to the kernel stack (%s)",
			     dsts, inspect_reason_enum_name(t.reason));
			trace_kernel(s, &t);
		}
	} else if (t.src_kind == INSPECT_ADDR_REMOTE_POD &&
		   (!wg_link || strcmp(wg_link->prog_ingress, TWILL_PROG_WG))) {
		step(&t, "arrives decrypted on %s, where %s is not attached: no twill program "
			 "sees it", s->wg_ifname[0] ? s->wg_ifname : "the WireGuard device",
		     TWILL_PROG_WG);
		trace_kernel(s, &t);
	} else if (t.src_kind == INSPECT_ADDR_REMOTE_POD) {
		/* From another node's pod: decrypted by WireGuard, TC ingress on the device. */
		snprintf(t.program, sizeof(t.program), "%s", TWILL_PROG_WG);
		snprintf(t.program_ifname, sizeof(t.program_ifname), "%.*s", IF_NAMESIZE - 1,
			 s->wg_ifname[0] ? s->wg_ifname : inspect_link_name(s, wg_ifindex, ifbuf, sizeof(ifbuf)));
		step(&t, "arrives decrypted on %s; %s on its ingress sees %s -> %s", t.program_ifname,
		     TWILL_PROG_WG, srcs, dsts);
		if (dst_ep) {
			snprintf(t.match, sizeof(t.match), "endpoint");
			t.match_net = dst;
			t.match_prefixlen = 32;
			t.reason = TWILL_R_WG_TO_POD;
			snprintf(t.verdict, sizeof(t.verdict), "redirect");
			trace_set_out(s, &t, (int)dst_ep->host_ifindex);
			step(&t, "endpoint map: %s/32 -> host veth %s: delivered into the pod (%s)",
			     dsts, t.out_ifname, inspect_reason_enum_name(t.reason));
		} else {
			t.reason = TWILL_R_PASS_STACK;
			step(&t, "no endpoint for %s: passed to the kernel stack (%s)", dsts,
			     inspect_reason_enum_name(t.reason));
			trace_kernel(s, &t);
		}
	} else {
		step(&t, "%s is not a pod on this node: no twill program sees it on the way out",
		     srcs);
		trace_kernel(s, &t);
	}
	if (!t.verdict[0])
		snprintf(t.verdict, sizeof(t.verdict), "kernel stack");
	if (t.mtu)
		step(&t, "MTU: %u on %s, pod MTU %u", t.mtu, t.out_ifname, t.pod_mtu);
	else if (t.pod_mtu)
		step(&t, "MTU: pod MTU %u", t.pod_mtu);
	*out = t;
	return 0;
}

static void problem(struct inspect_health *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct inspect_health *h, const char *fmt, ...)
{
	va_list ap;

	h->healthy = false;
	if (h->n_problems >= INSPECT_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	vsnprintf(h->problems[h->n_problems++], INSPECT_TEXT_MAX, fmt, ap);
	va_end(ap);
}

static void warning(struct inspect_health *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warning(struct inspect_health *h, const char *fmt, ...)
{
	va_list ap;

	if (h->n_warnings >= INSPECT_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	vsnprintf(h->warnings[h->n_warnings++], INSPECT_TEXT_MAX, fmt, ap);
	va_end(ap);
}

int inspect_health(const struct inspect_snapshot *s, struct inspect_health *out)
{
	struct inspect_health h = { .healthy = true };
	struct inspect_peer_row *peers = NULL;
	struct inspect_route_row *routes = NULL;
	struct inspect_pod_row *pods = NULL;
	size_t n_peers = 0, n_routes = 0, n_pods = 0;
	char net[INET_ADDRSTRLEN], key[WG_KEY_B64_LEN];
	int ret;

	ret = inspect_peers(s, &peers, &n_peers);
	if (ret)
		goto cleanup;
	ret = inspect_routes(s, &routes, &n_routes);
	if (ret)
		goto cleanup;
	ret = inspect_pods(s, &pods, &n_pods);
	if (ret)
		goto cleanup;

	if (!s->have_state)
		problem(&h, "no node state (node.json): the agent has not run here");
	else if (s->state.last_error[0])
		problem(&h, "the agent's last reconcile failed: %s", s->state.last_error);
	if (s->have_state && s->state.dataplane_loaded && !s->dp_loaded)
		problem(&h, "dataplane not loaded: no pinned maps in '%s'", s->state.bpf_pin_dir);
	if (s->dp_loaded) {
		const struct inspect_link *wl = inspect_link_by_name(s, s->wg_ifname);

		if (wl && strcmp(wl->prog_ingress, TWILL_PROG_WG))
			problem(&h, "%s is not attached on %s ingress", TWILL_PROG_WG, s->wg_ifname);
	}
	if (!s->wg)
		problem(&h, "WireGuard device '%s' not found or not readable", s->wg_ifname);

	for (size_t i = 0; i < n_peers; i++) {
		const char *who = peers[i].node;

		if (peers[i].pending) {
			h.peers_pending++;
			continue;
		}
		if (!peers[i].stale) {
			h.peers_up++;
			continue;
		}
		if (!who[0]) {
			wgkey_to_base64(peers[i].peer->public_key, key);
			memcpy(key + 8, "...", 4);
			who = key;
		}
		if (peers[i].handshake_age < 0 && peers[i].configured_age >= 0)
			problem(&h, "peer %s: no handshake in the %lld s since it was configured", who,
				(long long)peers[i].configured_age);
		else if (peers[i].handshake_age < 0)
			problem(&h, "peer %s: no handshake ever", who);
		else
			problem(&h, "peer %s: no handshake for %lld s", who,
				(long long)peers[i].handshake_age);
	}
	h.peers_total = n_peers;
	for (size_t i = 0; i < n_routes; i++)
		if (routes[i].problem[0])
			problem(&h, "route %s/%u: %s",
				inet_ntop(AF_INET, &routes[i].net, net, sizeof(net)),
				routes[i].prefixlen, routes[i].problem);
	for (size_t i = 0; i < n_pods; i++) {
		if (pods[i].alloc)
			h.pods++;
		if (pods[i].problem[0])
			problem(&h, "pod %s%s%s: %s",
				pods[i].alloc || pods[i].in_endpoints ?
					inet_ntop(AF_INET, &pods[i].addr, net, sizeof(net)) : "",
				pods[i].veth ? " veth " : "",
				pods[i].veth ? pods[i].veth->info.name : "", pods[i].problem);
		if (pods[i].warning[0])
			warning(&h, "pod %s%s%s: %s (kernel path)",
				pods[i].alloc || pods[i].in_endpoints ?
					inet_ntop(AF_INET, &pods[i].addr, net, sizeof(net)) : "",
				pods[i].veth ? " veth " : "",
				pods[i].veth ? pods[i].veth->info.name : "", pods[i].warning);
	}
	*out = h;
	ret = 0;
cleanup:
	free(peers);
	free(routes);
	free(pods);
	return ret;
}
