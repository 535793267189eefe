// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "peerstate.h"
#include "reconcile.h"

/* Node i: pod CIDR 10.(i/256).(i%256).0/24 inside 10.0.0.0/8, public 198.18.x.y. */
static struct topology *make_topology(size_t n)
{
	struct topology *t = calloc(1, sizeof(*t));

	t->nodes = calloc(n, sizeof(*t->nodes));
	t->unkeyed = calloc(1, sizeof(*t->unkeyed));
	t->n_nodes = n;
	for (size_t i = 0; i < n; i++) {
		struct topo_node *node = &t->nodes[i];

		snprintf(node->name, sizeof(node->name), "node-%05zu", i);
		node->pod_net.s_addr = htonl(0x0a000000u | (uint32_t)((i + 1) << 8));
		node->pod_prefixlen = 24;
		memset(node->public_key, 0, WG_KEY_LEN);
		node->public_key[0] = (uint8_t)(i * 37);
		node->public_key[1] = (uint8_t)(i >> 8);
		node->public_key[2] = (uint8_t)i;
		node->wg_port = 51820;
		node->public_addr.addr4.sin_family = AF_INET;
		node->public_addr.addr4.sin_port = htons(51820);
		node->public_addr.addr4.sin_addr.s_addr = htonl(0xc6120000u | (uint32_t)(i + 1));
		if (i % 2 == 0) {
			strcpy(node->private_network, "rack-a");
			node->private_addr.addr4.sin_family = AF_INET;
			node->private_addr.addr4.sin_port = htons(51820);
			node->private_addr.addr4.sin_addr.s_addr = htonl(0xc0a80000u | (uint32_t)(i + 1));
		}
	}
	return t;
}

/* What a device looks like after a plan for these peers was applied. */
static struct wg_device *device_from(const struct rc_peer *peers, size_t n, uint16_t keepalive)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));

	dev->peers = calloc(n + 1, sizeof(*dev->peers));
	dev->n_peers = n;
	for (size_t i = 0; i < n; i++) {
		struct wg_peer *p = &dev->peers[n - 1 - i]; /* device order is not key order */

		memcpy(p->public_key, peers[i].public_key, WG_KEY_LEN);
		p->endpoint = peers[i].endpoint;
		p->keepalive_interval = keepalive;
		p->allowed_ips = calloc(1, sizeof(*p->allowed_ips));
		p->allowed_ips->family = AF_INET;
		p->allowed_ips->ip4 = peers[i].net;
		p->allowed_ips->cidr = peers[i].prefixlen;
		p->n_allowed_ips = 1;
	}
	return dev;
}

static void device_free(struct wg_device *dev)
{
	for (size_t i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowed_ips);
	free(dev->peers);
	free(dev);
}

static const struct rc_peer *find_peer(const struct rc_peer *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

static void quiet(void)
{
	log_set_stderr(0);
}

Test(reconcile, desired_excludes_self_and_picks_endpoints, .init = quiet)
{
	struct topology *t = make_topology(4);
	struct rc_peer *d;
	size_t n;
	char buf[32];

	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_null(find_peer(d, n, "node-00000"));
	/* node 2 shares rack-a with node 0: private address; node 1 is on none */
	cr_assert(find_peer(d, n, "node-00002")->is_private);
	inet_ntop(AF_INET, &find_peer(d, n, "node-00002")->endpoint.addr4.sin_addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, "192.168.0.3");
	cr_assert_not(find_peer(d, n, "node-00001")->is_private);
	inet_ntop(AF_INET, &find_peer(d, n, "node-00001")->endpoint.addr4.sin_addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, "198.18.0.2");
	for (size_t i = 1; i < n; i++)
		cr_assert_lt(memcmp(d[i - 1].public_key, d[i].public_key, WG_KEY_LEN), 0);
	free(d);
	cr_assert_eq(reconcile_desired(t, "absent", NULL, &d, &n), -ENOENT);
	/* a node that copied our key is never a peer */
	cr_assert_eq(reconcile_desired(t, "node-00000", t->nodes[3].public_key, &d, &n), 0);
	cr_assert_eq(n, 2);
	free(d);
	topology_free(t);
}

Test(reconcile, empty_device_adds_every_peer, .init = quiet)
{
	struct topology *t = make_topology(5);
	struct rc_peer_plan plan;
	struct rc_peer *d;
	size_t n;

	cr_assert_eq(reconcile_desired(t, "node-00001", NULL, &d, &n), 0);
	cr_assert_eq(reconcile_peers(d, n, NULL, 0, NULL, 25, &plan), 0);
	cr_assert_eq(plan.n_add, 4);
	cr_assert_eq(plan.n_peers, 4);
	for (size_t i = 0; i < plan.n_peers; i++) {
		const struct wg_peer *p = &plan.peers[i];

		cr_assert_eq(p->flags, WG_PEER_REPLACE_ALLOWEDIPS | WG_PEER_HAS_ENDPOINT |
				       WG_PEER_HAS_KEEPALIVE);
		cr_assert_eq(p->keepalive_interval, 25);
		cr_assert_eq(p->n_allowed_ips, 1);
		cr_assert_eq(p->allowed_ips[0].cidr, 24);
	}
	rc_peer_plan_clear(&plan);
	free(d);
	topology_free(t);
}

Test(reconcile, unchanged_peers_are_never_touched, .init = quiet)
{
	struct topology *t = make_topology(6);
	struct rc_peer_plan plan;
	struct wg_device *dev;
	struct rc_peer *d;
	size_t n;

	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d, &n), 0);
	dev = device_from(d, n, 0);
	/* with and without memory of the last reconcile (an agent restart adopts the device) */
	cr_assert_eq(reconcile_peers(d, n, d, n, dev, 0, &plan), 0);
	cr_assert_eq(plan.n_peers, 0);
	cr_assert_eq(plan.n_unchanged, 5);
	rc_peer_plan_clear(&plan);
	cr_assert_eq(reconcile_peers(d, n, NULL, 0, dev, 0, &plan), 0);
	cr_assert_eq(plan.n_peers, 0);
	rc_peer_plan_clear(&plan);

	/* the peer roamed: the device shows another endpoint, the topology did not change */
	dev->peers[0].endpoint.addr4.sin_port = htons(40000);
	cr_assert_eq(reconcile_peers(d, n, d, n, dev, 0, &plan), 0);
	cr_assert_eq(plan.n_peers, 0);
	cr_assert_eq(plan.n_unchanged, 5);
	rc_peer_plan_clear(&plan);
	/* with no record at all (an agent that never wrote peers.json), the device is all
	 * there is to compare with: the topology's endpoint is restored once */
	cr_assert_eq(reconcile_peers(d, n, NULL, 0, dev, 0, &plan), 0);
	cr_assert_eq(plan.n_update, 1);
	cr_assert_eq(plan.peers[0].flags, WG_PEER_HAS_ENDPOINT);
	rc_peer_plan_clear(&plan);
	device_free(dev);
	free(d);
	topology_free(t);
}

/*
 * A restart (kill -9, upgrade) must not undo roaming: the previous agent's record in
 * peers.json is what the topology is compared with, so only a peer the topology moved
 * while no agent ran gets a new endpoint.
 */
Test(reconcile, restart_keeps_roamed_endpoints, .init = quiet)
{
	struct topology *t = make_topology(6);
	struct rc_peer_plan plan;
	struct rc_peer *d, *saved, *d2;
	struct wg_device *dev;
	size_t n, n_saved, n2;
	char dir[] = "/tmp/twill-rc-XXXXXX";

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d, &n), 0);
	dev = device_from(d, n, 0);
	cr_assert_eq(peerstate_write(dir, d, n), 0);       /* the agent before the kill */
	/* two peers roamed behind NAT */
	dev->peers[0].endpoint.addr4.sin_port = htons(40000);
	dev->peers[3].endpoint.addr4.sin_addr.s_addr = htonl(0xcb007109);

	cr_assert_eq(peerstate_read(dir, &saved, &n_saved), 0);  /* the new agent */
	cr_assert_eq(n_saved, n);
	cr_assert_eq(reconcile_peers(d, n, saved, n_saved, dev, 0, &plan), 0);
	cr_assert_eq(plan.n_peers, 0, "a restart rewrote %zu roamed endpoints", plan.n_update);
	cr_assert_eq(plan.n_unchanged, 5);
	rc_peer_plan_clear(&plan);

	/* node 3 moved while no agent ran: that one peer, and only it, gets the new endpoint */
	t->nodes[3].public_addr.addr4.sin_addr.s_addr = htonl(0xcb007103);
	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d2, &n2), 0);
	cr_assert_eq(reconcile_peers(d2, n2, saved, n_saved, dev, 0, &plan), 0);
	cr_assert_eq(plan.n_update, 1);
	cr_assert_eq(plan.n_peers, 1);
	cr_assert_eq(memcmp(plan.peers[0].public_key, t->nodes[3].public_key, WG_KEY_LEN), 0);
	cr_assert_eq(plan.peers[0].flags, WG_PEER_HAS_ENDPOINT);
	cr_assert_eq(plan.peers[0].endpoint.addr4.sin_addr.s_addr, htonl(0xcb007103));
	rc_peer_plan_clear(&plan);

	free(saved);
	cr_assert_eq(peerstate_remove(dir), 0);
	cr_assert_eq(peerstate_read(dir, &saved, &n_saved), -ENOENT);
	rmdir(dir);
	free(d2);
	device_free(dev);
	free(d);
	topology_free(t);
}

Test(reconcile, removed_node_key_change_endpoint_and_cidr_change, .init = quiet)
{
	struct topology *t = make_topology(6);
	struct rc_peer_plan plan;
	struct wg_device *dev;
	struct rc_peer *d, *d2;
	size_t n, n2;
	uint8_t old_key[WG_KEY_LEN];
	int removes = 0, adds = 0, updates = 0;

	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d, &n), 0);
	dev = device_from(d, n, 0);

	/* node 5 leaves, node 4 rotates its key, node 3 moves, node 2's CIDR changes */
	t->n_nodes = 5;
	memcpy(old_key, t->nodes[4].public_key, WG_KEY_LEN);
	t->nodes[4].public_key[5] = 0x99;
	t->nodes[3].public_addr.addr4.sin_addr.s_addr = htonl(0xcb007103);
	t->nodes[2].pod_net.s_addr = htonl(0x0a00fe00);
	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d2, &n2), 0);
	cr_assert_eq(reconcile_peers(d2, n2, d, n, dev, 0, &plan), 0);
	cr_assert_eq(plan.n_remove, 2);
	cr_assert_eq(plan.n_add, 1);
	cr_assert_eq(plan.n_update, 2);
	cr_assert_eq(plan.n_unchanged, 1);
	cr_assert_eq(plan.n_peers, 5);
	for (size_t i = 0; i < plan.n_peers; i++) {
		const struct wg_peer *p = &plan.peers[i];

		if (p->flags & WG_PEER_REMOVE) {
			cr_assert_eq(adds + updates, 0, "removals come first");
			removes++;
		} else if (memcmp(p->public_key, t->nodes[4].public_key, WG_KEY_LEN) == 0) {
			adds++;
		} else if (memcmp(p->public_key, t->nodes[3].public_key, WG_KEY_LEN) == 0) {
			cr_assert_eq(p->flags, WG_PEER_HAS_ENDPOINT);
			cr_assert_eq(p->endpoint.addr4.sin_addr.s_addr, htonl(0xcb007103));
			updates++;
		} else {
			cr_assert_eq(memcmp(p->public_key, t->nodes[2].public_key, WG_KEY_LEN), 0);
			cr_assert_eq(p->flags, WG_PEER_REPLACE_ALLOWEDIPS);
			cr_assert_eq(p->allowed_ips[0].ip4.s_addr, htonl(0x0a00fe00));
			updates++;
		}
	}
	cr_assert_eq(removes, 2);
	rc_peer_plan_clear(&plan);

	/* keepalive turned on: every peer is updated, keepalive only */
	cr_assert_eq(reconcile_peers(d, n, d, n, dev, 15, &plan), 0);
	cr_assert_eq(plan.n_update, n);
	cr_assert_eq(plan.peers[0].flags, WG_PEER_HAS_KEEPALIVE);
	rc_peer_plan_clear(&plan);
	device_free(dev);
	free(d);
	free(d2);
	topology_free(t);
}

Test(reconcile, kernel_routes, .init = quiet)
{
	struct topology *t = make_topology(4);
	struct rc_route_plan plan;
	struct rc_peer *d;
	struct nl_route want = { 0 }, actual[4];
	size_t n;

	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d, &n), 0);
	want.ifindex = 7;
	want.mtu = 1440;
	inet_pton(AF_INET, "10.0.1.1", &want.prefsrc);
	cr_assert_eq(reconcile_kernel_routes(d, n, NULL, 0, &want, &plan), 0);
	cr_assert_eq(plan.n_replace, 3);
	cr_assert_eq(plan.n_remove, 0);
	cr_assert_eq(plan.replace[0].ifindex, 7);
	cr_assert_eq(plan.replace[0].mtu, 1440);
	cr_assert_eq(plan.replace[0].dst_len, 24);
	memcpy(actual, plan.replace, 3 * sizeof(*actual));
	rc_route_plan_clear(&plan);

	cr_assert_eq(reconcile_kernel_routes(d, n, actual, 3, &want, &plan), 0);
	cr_assert_eq(plan.n_replace + plan.n_remove, 0);
	cr_assert_eq(plan.n_unchanged, 3);
	rc_route_plan_clear(&plan);

	/* a stale /24 on the device, one with an old MTU, a foreign route left alone */
	actual[0].mtu = 1420;
	actual[3] = want;
	inet_pton(AF_INET, "10.9.9.0", &actual[3].dst);
	actual[3].dst_len = 24;
	struct nl_route foreign[5];
	memcpy(foreign, actual, sizeof(actual));
	foreign[4] = actual[3];
	foreign[4].ifindex = 2;
	cr_assert_eq(reconcile_kernel_routes(d, n, foreign, 5, &want, &plan), 0);
	cr_assert_eq(plan.n_replace, 1);
	cr_assert_eq(plan.replace[0].mtu, 1440);
	cr_assert_eq(plan.n_remove, 1);
	cr_assert_eq(plan.remove[0].dst.s_addr, actual[3].dst.s_addr);
	cr_assert_eq(plan.remove[0].ifindex, 7);
	rc_route_plan_clear(&plan);
	free(d);
	topology_free(t);
}

Test(reconcile, bpf_routes, .init = quiet)
{
	struct topology *t = make_topology(3);
	struct rc_bpf_plan plan;
	struct twill_route_key keys[3];
	struct twill_route_value values[3];
	struct rc_peer *d;
	size_t n;

	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d, &n), 0);
	cr_assert_eq(reconcile_bpf_routes(d, n, NULL, NULL, 0, 9, &plan), 0);
	cr_assert_eq(plan.n_set, 2);
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(plan.set_keys[i].prefixlen, 24);
		cr_assert_eq(plan.set_values[i].ifindex, 9);
		const struct rc_peer *p = plan.set_keys[i].addr == t->nodes[2].pod_net.s_addr ?
					  find_peer(d, n, "node-00002") : find_peer(d, n, "node-00001");
		cr_assert_eq(plan.set_values[i].node_addr, p->endpoint.addr4.sin_addr.s_addr);
		cr_assert_eq(plan.set_values[i].flags, p->is_private ? TWILL_ROUTE_F_PRIVATE : 0);
	}
	memcpy(keys, plan.set_keys, 2 * sizeof(*keys));
	memcpy(values, plan.set_values, 2 * sizeof(*values));
	rc_bpf_plan_clear(&plan);
	cr_assert_eq(reconcile_bpf_routes(d, n, keys, values, 2, 9, &plan), 0);
	cr_assert_eq(plan.n_set + plan.n_remove, 0);
	rc_bpf_plan_clear(&plan);
	keys[2].prefixlen = 24;
	keys[2].addr = htonl(0x0a636300);
	values[2] = values[0];
	values[0].ifindex = 3;   /* the device was re-created */
	cr_assert_eq(reconcile_bpf_routes(d, n, keys, values, 3, 9, &plan), 0);
	cr_assert_eq(plan.n_set, 1);
	cr_assert_eq(plan.n_remove, 1);
	cr_assert_eq(plan.remove[0].addr, htonl(0x0a636300));
	rc_bpf_plan_clear(&plan);
	free(d);
	topology_free(t);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* 5000 nodes: one changed, one removed, one added; a quadratic diff would take seconds. */
Test(reconcile, five_thousand_nodes_is_fast, .init = quiet)
{
	struct topology *t = make_topology(5001);
	struct rc_peer_plan plan;
	struct rc_route_plan rplan;
	struct nl_route want = { .ifindex = 3, .mtu = 1440 }, *routes;
	struct wg_device *dev;
	struct rc_peer *d, *d2;
	size_t n, n2;
	double t0, ms;

	t->n_nodes = 5000;
	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d, &n), 0);
	dev = device_from(d, n, 0);
	routes = calloc(n, sizeof(*routes));
	for (size_t i = 0; i < n; i++) {
		routes[i] = want;
		routes[i].dst = d[i].net;
		routes[i].dst_len = 24;
	}
	t->nodes[11].public_addr.addr4.sin_port = htons(1);
	t->nodes[4999] = t->nodes[5000];
	t0 = now_ms();
	cr_assert_eq(reconcile_desired(t, "node-00000", NULL, &d2, &n2), 0);
	cr_assert_eq(reconcile_peers(d2, n2, d, n, dev, 0, &plan), 0);
	cr_assert_eq(reconcile_kernel_routes(d2, n2, routes, n, &want, &rplan), 0);
	ms = now_ms() - t0;
	cr_log_info("reconcile diff of 5000 nodes: %.1f ms", ms);
	cr_assert_eq(plan.n_add, 1);
	cr_assert_eq(plan.n_remove, 1);
	cr_assert_eq(plan.n_update, 1);
	cr_assert_eq(plan.n_unchanged, 4997);
	cr_assert_eq(rplan.n_replace, 1);
	cr_assert_eq(rplan.n_remove, 1);
	cr_assert_lt(ms, 1000.0);
	rc_peer_plan_clear(&plan);
	rc_route_plan_clear(&rplan);
	device_free(dev);
	free(routes);
	free(d);
	free(d2);
	topology_free(t);
}
