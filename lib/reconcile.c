// SPDX-License-Identifier: Apache-2.0
/*
 * Desired state versus actual state, computed by sorting both sides and walking them
 * together: a 5000-node cluster must reconcile in milliseconds, and an unchanged peer
 * must produce no operation at all (touching it would fight WireGuard's roaming).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reconcile.h"

bool rc_endpoint_equal(const union wg_endpoint *a, const union wg_endpoint *b)
{
	if (a->addr.sa_family != b->addr.sa_family)
		return false;
	switch (a->addr.sa_family) {
	case 0:
		return true;
	case AF_INET:
		return a->addr4.sin_port == b->addr4.sin_port &&
		       a->addr4.sin_addr.s_addr == b->addr4.sin_addr.s_addr;
	case AF_INET6:
		return a->addr6.sin6_port == b->addr6.sin6_port &&
		       memcmp(&a->addr6.sin6_addr, &b->addr6.sin6_addr, sizeof(struct in6_addr)) == 0 &&
		       a->addr6.sin6_scope_id == b->addr6.sin6_scope_id;
	}
	return false;
}

static int cmp_peer_key(const void *a, const void *b)
{
	return memcmp(((const struct rc_peer *)a)->public_key, ((const struct rc_peer *)b)->public_key,
		      WG_KEY_LEN);
}

int reconcile_desired(const struct topology *topo, const char *self_name,
		      const uint8_t self_public_key[WG_KEY_LEN], struct rc_peer **out,
		      size_t *count)
{
	const struct topo_node *self = topology_find_any(topo, self_name);
	struct rc_peer *peers;
	size_t n = 0;

	if (!self)
		return -ENOENT;
	peers = calloc(topo->n_nodes ? topo->n_nodes : 1, sizeof(*peers));
	if (!peers)
		return -ENOMEM;
	for (size_t i = 0; i < topo->n_nodes; i++) {
		const struct topo_node *node = &topo->nodes[i];
		struct rc_peer *p = &peers[n];

		if (node == self || strcmp(node->name, self_name) == 0)
			continue;
		if (self_public_key && memcmp(node->public_key, self_public_key, WG_KEY_LEN) == 0) {
			log_warn("topology: node '%s' announces this node's own public key: not a peer",
				 node->name);
			continue;
		}
		memcpy(p->public_key, node->public_key, WG_KEY_LEN);
		if (topology_endpoint(self, node, &p->endpoint, &p->is_private) < 0) {
			memset(&p->endpoint, 0, sizeof(p->endpoint));
			p->is_private = false;
		}
		p->net = node->pod_net;
		p->prefixlen = node->pod_prefixlen;
		strcpy(p->name, node->name);
		n++;
	}
	qsort(peers, n, sizeof(*peers), cmp_peer_key);
	*out = peers;
	*count = n;
	return 0;
}

static int cmp_ptr_peer_key(const void *a, const void *b)
{
	return cmp_peer_key(*(const struct rc_peer *const *)a, *(const struct rc_peer *const *)b);
}

static int cmp_ptr_wg_peer_key(const void *a, const void *b)
{
	return memcmp((*(const struct wg_peer *const *)a)->public_key,
		      (*(const struct wg_peer *const *)b)->public_key, WG_KEY_LEN);
}

static bool allowed_ips_match(const struct wg_peer *a, const struct rc_peer *d)
{
	return a->n_allowed_ips == 1 && a->allowed_ips[0].family == AF_INET &&
	       a->allowed_ips[0].ip4.s_addr == d->net.s_addr && a->allowed_ips[0].cidr == d->prefixlen;
}

void rc_peer_plan_clear(struct rc_peer_plan *plan)
{
	if (!plan)
		return;
	free(plan->peers);
	free(plan->allowed_ips);
	memset(plan, 0, sizeof(*plan));
}

static const struct rc_peer **sorted_ptrs(const struct rc_peer *v, size_t n)
{
	const struct rc_peer **p = calloc(n ? n : 1, sizeof(*p));

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = &v[i];
	qsort(p, n, sizeof(*p), cmp_ptr_peer_key);
	return p;
}

int reconcile_peers(const struct rc_peer *desired, size_t n_desired,
		    const struct rc_peer *prev, size_t n_prev,
		    const struct wg_device *actual, uint16_t keepalive,
		    struct rc_peer_plan *plan)
{
	size_t n_actual = actual ? actual->n_peers : 0;
	const struct rc_peer **d = NULL, **p = NULL;
	const struct wg_peer **a = NULL;
	struct rc_peer_plan res = { 0 };
	struct wg_peer *changes = NULL;
	size_t n_changes = 0, i = 0, j = 0;
	int ret = -ENOMEM;

	d = sorted_ptrs(desired, n_desired);
	p = sorted_ptrs(prev, prev ? n_prev : 0);
	a = calloc(n_actual ? n_actual : 1, sizeof(*a));
	res.peers = calloc(n_desired + n_actual + 1, sizeof(*res.peers));
	changes = calloc(n_desired + 1, sizeof(*changes));
	res.allowed_ips = calloc(n_desired + 1, sizeof(*res.allowed_ips));
	if (!d || !p || !a || !res.peers || !changes || !res.allowed_ips)
		goto cleanup;
	for (size_t k = 0; k < n_actual; k++)
		a[k] = &actual->peers[k];
	qsort(a, n_actual, sizeof(*a), cmp_ptr_wg_peer_key);

	while (i < n_desired || j < n_actual) {
		int c = i == n_desired ? 1 : j == n_actual ? -1 :
			memcmp(d[i]->public_key, a[j]->public_key, WG_KEY_LEN);
		struct wg_peer *w;

		if (c > 0) {
			w = &res.peers[res.n_peers++];
			memcpy(w->public_key, a[j]->public_key, WG_KEY_LEN);
			w->flags = WG_PEER_REMOVE;
			res.n_remove++;
			j++;
			continue;
		}
		w = &changes[n_changes];
		memset(w, 0, sizeof(*w));
		memcpy(w->public_key, d[i]->public_key, WG_KEY_LEN);
		if (c < 0) {
			w->flags = WG_PEER_REPLACE_ALLOWEDIPS;
			if (d[i]->endpoint.addr.sa_family) {
				w->flags |= WG_PEER_HAS_ENDPOINT;
				w->endpoint = d[i]->endpoint;
			}
			if (keepalive) {
				w->flags |= WG_PEER_HAS_KEEPALIVE;
				w->keepalive_interval = keepalive;
			}
			res.n_add++;
		} else {
			const struct rc_peer *last = NULL, **hit;
			bool ep_changed;

			if (prev) {
				hit = bsearch(&d[i], p, n_prev, sizeof(*p), cmp_ptr_peer_key);
				last = hit ? *hit : NULL;
			}
			/* Compare with what we asked for last time, not with where it roamed. */
			ep_changed = last ? !rc_endpoint_equal(&last->endpoint, &d[i]->endpoint)
					  : !rc_endpoint_equal(&a[j]->endpoint, &d[i]->endpoint);
			if (ep_changed && d[i]->endpoint.addr.sa_family) {
				w->flags |= WG_PEER_HAS_ENDPOINT;
				w->endpoint = d[i]->endpoint;
			}
			if (!allowed_ips_match(a[j], d[i]))
				w->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
			if (a[j]->keepalive_interval != keepalive) {
				w->flags |= WG_PEER_HAS_KEEPALIVE;
				w->keepalive_interval = keepalive;
			}
			if (w->flags)
				res.n_update++;
			else
				res.n_unchanged++;
			j++;
		}
		if (w->flags & WG_PEER_REPLACE_ALLOWEDIPS) {
			struct wg_allowed_ip *ip = &res.allowed_ips[n_changes];

			ip->family = AF_INET;
			ip->ip4 = d[i]->net;
			ip->cidr = d[i]->prefixlen;
			w->allowed_ips = ip;
			w->n_allowed_ips = 1;
		}
		if (w->flags)
			n_changes++;
		i++;
	}
	memcpy(res.peers + res.n_peers, changes, n_changes * sizeof(*changes));
	res.n_peers += n_changes;
	*plan = res;
	memset(&res, 0, sizeof(res));
	ret = 0;
cleanup:
	rc_peer_plan_clear(&res);
	free(changes);
	free(d);
	free(p);
	free(a);
	return ret;
}

static int cmp_u32(uint32_t x, uint32_t y)
{
	return x < y ? -1 : x > y;
}

static int cmp_ptr_peer_net(const void *a, const void *b)
{
	const struct rc_peer *x = *(const struct rc_peer *const *)a;
	const struct rc_peer *y = *(const struct rc_peer *const *)b;
	int c = cmp_u32(ntohl(x->net.s_addr), ntohl(y->net.s_addr));

	return c ? c : cmp_u32(x->prefixlen, y->prefixlen);
}

static int cmp_ptr_route(const void *a, const void *b)
{
	const struct nl_route *x = *(const struct nl_route *const *)a;
	const struct nl_route *y = *(const struct nl_route *const *)b;
	int c = cmp_u32(ntohl(x->dst.s_addr), ntohl(y->dst.s_addr));

	return c ? c : cmp_u32(x->dst_len, y->dst_len);
}

static const struct rc_peer **sorted_by_net(const struct rc_peer *v, size_t n)
{
	const struct rc_peer **p = calloc(n ? n : 1, sizeof(*p));

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = &v[i];
	qsort(p, n, sizeof(*p), cmp_ptr_peer_net);
	return p;
}

void rc_route_plan_clear(struct rc_route_plan *plan)
{
	if (!plan)
		return;
	free(plan->replace);
	free(plan->remove);
	memset(plan, 0, sizeof(*plan));
}

int reconcile_kernel_routes(const struct rc_peer *desired, size_t n_desired,
			    const struct nl_route *actual, size_t n_actual,
			    const struct nl_route *want, struct rc_route_plan *plan)
{
	struct rc_route_plan res = { 0 };
	const struct rc_peer **d = sorted_by_net(desired, n_desired);
	const struct nl_route **a = calloc(n_actual ? n_actual : 1, sizeof(*a));
	size_t na = 0, i = 0, j = 0;
	int ret = -ENOMEM;

	res.replace = calloc(n_desired + 1, sizeof(*res.replace));
	res.remove = calloc(n_actual + 1, sizeof(*res.remove));
	if (!d || !a || !res.replace || !res.remove)
		goto cleanup;
	/* Only pod-CIDR-sized routes on our device are ours to remove. */
	for (size_t k = 0; k < n_actual; k++)
		if (actual[k].ifindex == want->ifindex && actual[k].dst_len == 24)
			a[na++] = &actual[k];
	qsort(a, na, sizeof(*a), cmp_ptr_route);

	while (i < n_desired || j < na) {
		int c;

		if (i == n_desired) {
			c = 1;
		} else if (j == na) {
			c = -1;
		} else {
			c = cmp_u32(ntohl(d[i]->net.s_addr), ntohl(a[j]->dst.s_addr));
			if (!c)
				c = cmp_u32(d[i]->prefixlen, a[j]->dst_len);
		}
		if (c > 0) {
			res.remove[res.n_remove++] = *a[j++];
			continue;
		}
		if (c == 0 && a[j]->mtu == want->mtu && a[j]->prefsrc.s_addr == want->prefsrc.s_addr &&
		    a[j]->gateway.s_addr == want->gateway.s_addr) {
			res.n_unchanged++;
		} else {
			struct nl_route *r = &res.replace[res.n_replace++];

			*r = *want;
			r->dst = d[i]->net;
			r->dst_len = d[i]->prefixlen;
		}
		if (c == 0)
			j++;
		i++;
	}
	*plan = res;
	memset(&res, 0, sizeof(res));
	ret = 0;
cleanup:
	rc_route_plan_clear(&res);
	free(d);
	free(a);
	return ret;
}

void rc_bpf_plan_clear(struct rc_bpf_plan *plan)
{
	if (!plan)
		return;
	free(plan->set_keys);
	free(plan->set_values);
	free(plan->remove);
	memset(plan, 0, sizeof(*plan));
}

struct bpf_entry {
	const struct twill_route_key *key;
	const struct twill_route_value *value;
};

static int cmp_bpf_entry(const void *a, const void *b)
{
	const struct twill_route_key *x = ((const struct bpf_entry *)a)->key;
	const struct twill_route_key *y = ((const struct bpf_entry *)b)->key;
	int c = cmp_u32(ntohl(x->addr), ntohl(y->addr));

	return c ? c : cmp_u32(x->prefixlen, y->prefixlen);
}

int reconcile_bpf_routes(const struct rc_peer *desired, size_t n_desired,
			 const struct twill_route_key *keys, const struct twill_route_value *values,
			 size_t n_actual, int wg_ifindex, struct rc_bpf_plan *plan)
{
	struct rc_bpf_plan res = { 0 };
	const struct rc_peer **d = sorted_by_net(desired, n_desired);
	struct bpf_entry *a = calloc(n_actual ? n_actual : 1, sizeof(*a));
	size_t i = 0, j = 0;
	int ret = -ENOMEM;

	res.set_keys = calloc(n_desired + 1, sizeof(*res.set_keys));
	res.set_values = calloc(n_desired + 1, sizeof(*res.set_values));
	res.remove = calloc(n_actual + 1, sizeof(*res.remove));
	if (!d || !a || !res.set_keys || !res.set_values || !res.remove)
		goto cleanup;
	for (size_t k = 0; k < n_actual; k++) {
		a[k].key = &keys[k];
		a[k].value = &values[k];
	}
	qsort(a, n_actual, sizeof(*a), cmp_bpf_entry);

	while (i < n_desired || j < n_actual) {
		struct twill_route_value want = { 0 };
		int c;

		if (i == n_desired) {
			c = 1;
		} else if (j == n_actual) {
			c = -1;
		} else {
			c = cmp_u32(ntohl(d[i]->net.s_addr), ntohl(a[j].key->addr));
			if (!c)
				c = cmp_u32(d[i]->prefixlen, a[j].key->prefixlen);
		}
		if (c > 0) {
			res.remove[res.n_remove++] = *a[j++].key;
			continue;
		}
		want.ifindex = (__u32)wg_ifindex;
		want.node_addr = d[i]->endpoint.addr.sa_family == AF_INET ?
				 d[i]->endpoint.addr4.sin_addr.s_addr : 0;
		want.flags = d[i]->is_private ? TWILL_ROUTE_F_PRIVATE : 0;
		if (c == 0 && a[j].value->ifindex == want.ifindex &&
		    a[j].value->node_addr == want.node_addr && a[j].value->flags == want.flags) {
			res.n_unchanged++;
		} else {
			res.set_keys[res.n_set].prefixlen = d[i]->prefixlen;
			res.set_keys[res.n_set].addr = d[i]->net.s_addr;
			res.set_values[res.n_set] = want;
			res.n_set++;
		}
		if (c == 0)
			j++;
		i++;
	}
	*plan = res;
	memset(&res, 0, sizeof(res));
	ret = 0;
cleanup:
	rc_bpf_plan_clear(&res);
	free(d);
	free(a);
	return ret;
}
