// SPDX-License-Identifier: Apache-2.0
/*
 * The analysis behind twillctl over snapshots built by hand: node n1 (10.244.1.0/24,
 * private network vrack-rbx) with two local pods, a peer n2 on the same private
 * network and a public-only peer n3.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "inspect.h"

#define NOW 1700000000
#define WG_IFINDEX 10
#define ETH_IFINDEX 2
#define VETH1 21
#define VETH2 22

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1, "bad test address %s", s);
	return a;
}

static union wg_endpoint ep(const char *addr, uint16_t port)
{
	union wg_endpoint e = { 0 };

	e.addr4.sin_family = AF_INET;
	e.addr4.sin_addr = ip(addr);
	e.addr4.sin_port = htons(port);
	return e;
}

struct fixture {
	struct inspect_snapshot s;
	struct inspect_link links[8];
	struct twill_route_key rkeys[8];
	struct twill_route_value rvals[8];
	struct twill_endpoint_key ekeys[8];
	struct twill_endpoint_value evals[8];
	struct wg_device wg;
	struct wg_peer peers[4];
	struct wg_allowed_ip allowed[4];
	struct nl_route kroutes[12];
	struct ipam_allocation allocs[4];
	char alloc_veths[4][IF_NAMESIZE];
	struct topo_node nodes[3];
	struct topology topo;
};

static struct fixture fx;

static void add_link(int ifindex, const char *name, const char *kind, unsigned int mtu,
		     const char *ingress, const char *egress)
{
	struct inspect_link *l;

	cr_assert_lt(fx.s.n_links, sizeof(fx.links) / sizeof(fx.links[0]));
	l = &fx.links[fx.s.n_links++];

	memset(l, 0, sizeof(*l));
	l->info.ifindex = ifindex;
	snprintf(l->info.name, sizeof(l->info.name), "%s", name);
	snprintf(l->info.kind, sizeof(l->info.kind), "%s", kind);
	l->info.mtu = mtu;
	l->info.up = true;
	snprintf(l->prog_ingress, sizeof(l->prog_ingress), "%s", ingress);
	snprintf(l->prog_egress, sizeof(l->prog_egress), "%s", egress);
}

static void add_route(const char *net, unsigned int len, const char *node_addr, bool private)
{
	size_t i = fx.s.n_routes++;

	fx.rkeys[i] = (struct twill_route_key){ .prefixlen = len, .addr = ip(net).s_addr };
	fx.rvals[i] = (struct twill_route_value){ .ifindex = WG_IFINDEX,
						  .node_addr = ip(node_addr).s_addr,
						  .flags = private ? TWILL_ROUTE_F_PRIVATE : 0 };
}

static void add_endpoint(const char *addr, int host_ifindex)
{
	size_t i = fx.s.n_endpoints++;

	cr_assert_lt(i, sizeof(fx.ekeys) / sizeof(fx.ekeys[0]));

	fx.ekeys[i].addr = ip(addr).s_addr;
	memset(&fx.evals[i], 0, sizeof(fx.evals[i]));
	fx.evals[i].host_ifindex = (__u32)host_ifindex;
	fx.evals[i].pod_mac[0] = 0x02;
	fx.evals[i].pod_mac[5] = (uint8_t)host_ifindex;
}

static void add_peer(uint8_t keybyte, const char *endpoint, const char *allowed,
		     int64_t handshake)
{
	size_t i = fx.wg.n_peers++;
	struct wg_peer *p = &fx.peers[i];

	memset(p, 0, sizeof(*p));
	memset(p->public_key, keybyte, WG_KEY_LEN);
	p->endpoint = ep(endpoint, 51820);
	p->keepalive_interval = 25;
	fx.allowed[i] = (struct wg_allowed_ip){ .family = AF_INET, .ip4 = ip(allowed), .cidr = 24 };
	p->allowed_ips = &fx.allowed[i];
	p->n_allowed_ips = 1;
	p->last_handshake_sec = handshake;
	p->rx_bytes = 1000 * keybyte;
	p->tx_bytes = 2000 * keybyte;
}

static void add_kroute(const char *dst, unsigned int len, const char *gw, int ifindex)
{
	struct nl_route *r;

	cr_assert_lt(fx.s.n_kroutes, sizeof(fx.kroutes) / sizeof(fx.kroutes[0]));
	r = &fx.kroutes[fx.s.n_kroutes++];

	memset(r, 0, sizeof(*r));
	r->dst = ip(dst);
	r->dst_len = len;
	if (gw)
		r->gateway = ip(gw);
	r->ifindex = ifindex;
}

static void add_alloc(const char *addr, const char *container, const char *veth)
{
	size_t i = fx.s.n_allocs++;

	memset(&fx.allocs[i], 0, sizeof(fx.allocs[i]));
	fx.allocs[i].addr = ip(addr);
	snprintf(fx.allocs[i].container_id, sizeof(fx.allocs[i].container_id), "%s", container);
	snprintf(fx.allocs[i].ifname, sizeof(fx.allocs[i].ifname), "eth0");
	snprintf(fx.alloc_veths[i], IF_NAMESIZE, "%s", veth);
}

static void add_node(const char *name, const char *pod_net, uint8_t keybyte, const char *public,
		     const char *private_network, const char *private_ip)
{
	struct topo_node *n = &fx.nodes[fx.topo.n_nodes++];

	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->pod_net = ip(pod_net);
	n->pod_prefixlen = 24;
	memset(n->public_key, keybyte, WG_KEY_LEN);
	n->public_addr = ep(public, 51820);
	n->wg_port = 51820;
	if (private_network) {
		snprintf(n->private_network, sizeof(n->private_network), "%s", private_network);
		n->private_addr = ep(private_ip, 51820);
	}
}

/* A healthy node: every source agrees. */
static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	fx.s.now = NOW;
	snprintf(fx.s.network, sizeof(fx.s.network), "twill");
	fx.s.have_state = true;
	snprintf(fx.s.state.node_name, sizeof(fx.s.state.node_name), "n1");
	fx.s.state.pod_net = ip("10.244.1.0");
	fx.s.state.pod_prefixlen = 24;
	fx.s.state.cluster_net = ip("10.244.0.0");
	fx.s.state.cluster_prefixlen = 16;
	fx.s.state.mtu = 1420;
	snprintf(fx.s.state.wg_device, sizeof(fx.s.state.wg_device), "twill0");
	snprintf(fx.s.state.backend, sizeof(fx.s.state.backend), "userspace");
	fx.s.state.listen_port = 51820;
	fx.s.state.dataplane_loaded = true;
	fx.s.state.strict = true;
	fx.s.state.last_reconcile_unix = NOW - 5;

	fx.s.dp_loaded = true;
	fx.s.have_config = true;
	fx.s.config = (struct twill_config){
		.cluster_addr = ip("10.244.0.0").s_addr, .cluster_prefixlen = 16,
		.node_addr = ip("10.244.1.0").s_addr, .node_prefixlen = 24,
		.wg_ifindex = WG_IFINDEX, .strict = 1,
	};
	fx.s.route_keys = fx.rkeys;
	fx.s.route_values = fx.rvals;
	add_route("10.244.2.0", 24, "192.168.100.2", true);
	add_route("10.244.3.0", 24, "203.0.113.3", false);
	fx.s.endpoint_keys = fx.ekeys;
	fx.s.endpoint_values = fx.evals;
	add_endpoint("10.244.1.2", VETH1);
	add_endpoint("10.244.1.3", VETH2);

	snprintf(fx.s.wg_ifname, sizeof(fx.s.wg_ifname), "twill0");
	snprintf(fx.s.wg_backend, sizeof(fx.s.wg_backend), "userspace");
	snprintf(fx.wg.name, sizeof(fx.wg.name), "twill0");
	fx.wg.ifindex = WG_IFINDEX;
	fx.wg.listen_port = 51820;
	fx.wg.peers = fx.peers;
	add_peer(2, "192.168.100.2", "10.244.2.0", NOW - 10);
	add_peer(3, "203.0.113.3", "10.244.3.0", NOW - 20);
	fx.s.wg = &fx.wg;

	fx.s.links = fx.links;
	add_link(1, "lo", "", 65536, "", "");
	add_link(ETH_IFINDEX, "eth0", "veth", 1500, "", TWILL_PROG_GUARD);
	add_link(WG_IFINDEX, "twill0", "", 1420, TWILL_PROG_WG, "");
	add_link(VETH1, "tw00000000000a1", "veth", 1420, TWILL_PROG_POD, "");
	add_link(VETH2, "tw00000000000a2", "veth", 1420, TWILL_PROG_POD, "");

	fx.s.kroutes = fx.kroutes;
	add_kroute("0.0.0.0", 0, "192.0.2.1", ETH_IFINDEX);
	add_kroute("192.0.2.0", 24, NULL, ETH_IFINDEX);
	add_kroute("10.244.2.0", 24, NULL, WG_IFINDEX);
	add_kroute("10.244.3.0", 24, NULL, WG_IFINDEX);
	add_kroute("10.244.1.2", 32, NULL, VETH1);
	add_kroute("10.244.1.3", 32, NULL, VETH2);

	fx.s.have_ipam = true;
	fx.s.allocs = fx.allocs;
	fx.s.alloc_veths = fx.alloc_veths;
	add_alloc("10.244.1.2", "c0ffee01", "tw00000000000a1");
	add_alloc("10.244.1.3", "c0ffee02", "tw00000000000a2");

	fx.topo.nodes = fx.nodes;
	add_node("n1", "10.244.1.0", 1, "198.51.100.1", "vrack-rbx", "192.168.100.1");
	add_node("n2", "10.244.2.0", 2, "198.51.100.2", "vrack-rbx", "192.168.100.2");
	add_node("n3", "10.244.3.0", 3, "203.0.113.3", NULL, NULL);
	fx.s.topo = &fx.topo;
}

static bool steps_mention(const struct inspect_trace *t, const char *needle)
{
	for (size_t i = 0; i < t->n_steps; i++)
		if (strstr(t->steps[i], needle))
			return true;
	return false;
}

static void route_remove(const char *net)
{
	for (size_t i = 0; i < fx.s.n_routes; i++)
		if (fx.rkeys[i].addr == ip(net).s_addr) {
			fx.rkeys[i] = fx.rkeys[fx.s.n_routes - 1];
			fx.rvals[i] = fx.rvals[fx.s.n_routes - 1];
			fx.s.n_routes--;
			return;
		}
	cr_assert_fail("no route %s in the fixture", net);
}

static void kroute_remove(const char *net, unsigned int len)
{
	for (size_t i = 0; i < fx.s.n_kroutes; i++)
		if (fx.kroutes[i].dst.s_addr == ip(net).s_addr && fx.kroutes[i].dst_len == len) {
			fx.kroutes[i] = fx.kroutes[--fx.s.n_kroutes];
			return;
		}
	cr_assert_fail("no kernel route %s/%u in the fixture", net, len);
}

static void link_remove(int ifindex)
{
	for (size_t i = 0; i < fx.s.n_links; i++)
		if (fx.links[i].info.ifindex == ifindex) {
			fx.links[i] = fx.links[--fx.s.n_links];
			return;
		}
	cr_assert_fail("no link %d in the fixture", ifindex);
}

/* Removing a node from the topology: the agent drops its peer and both routes. */
static void remove_n3(void)
{
	route_remove("10.244.3.0");
	kroute_remove("10.244.3.0", 24);
	fx.wg.n_peers = 1;
	fx.topo.n_nodes = 2;
}

static void disable_strict(void)
{
	fx.s.config.strict = 0;
	fx.s.state.strict = false;
}

struct trace_case {
	const char *name;
	void (*mutate)(void);
	const char *src, *dst;
	const char *program;       /* "" none */
	const char *program_ifname;
	const char *match;
	const char *match_net;     /* NULL: not checked */
	int match_prefixlen;
	int reason;
	const char *verdict;
	const char *out_ifname;    /* "" none */
	const char *peer_node;     /* NULL: no peer */
	const char *peer_endpoint;
	bool is_private;
	const char *path;
	unsigned int mtu;
	const char *step;          /* a step must mention this */
};

static const struct trace_case trace_cases[] = {
	{ "pod to private-group node", NULL, "10.244.1.2", "10.244.2.7",
	  TWILL_PROG_POD, "tw00000000000a1", "route", "10.244.2.0", 24, TWILL_R_TO_WIREGUARD,
	  "redirect", "twill0", "n2", "192.168.100.2:51820", true, "vrack-rbx", 1420,
	  "private path (vrack-rbx)" },
	{ "pod to public-only node", NULL, "10.244.1.2", "10.244.3.7",
	  TWILL_PROG_POD, "tw00000000000a1", "route", "10.244.3.0", 24, TWILL_R_TO_WIREGUARD,
	  "redirect", "twill0", "n3", "203.0.113.3:51820", false, "public", 1420,
	  "public path" },
	{ "pod to removed node, strict", remove_n3, "10.244.1.2", "10.244.3.7",
	  TWILL_PROG_POD, "tw00000000000a1", "none", NULL, 0, TWILL_R_DROP_NO_ROUTE,
	  "drop", "", NULL, NULL, false, "", 0, "TWILL_R_DROP_NO_ROUTE" },
	{ "pod to cluster address, not strict", disable_strict, "10.244.1.2", "10.244.9.7",
	  TWILL_PROG_POD, "tw00000000000a1", "none", NULL, 0, TWILL_R_PASS_STACK,
	  "kernel stack", "eth0", NULL, NULL, false, "", 1500, "kernel stack" },
	{ "pod to local pod", NULL, "10.244.1.2", "10.244.1.3",
	  TWILL_PROG_POD, "tw00000000000a1", "endpoint", "10.244.1.3", 32, TWILL_R_TO_LOCAL_POD,
	  "redirect", "tw00000000000a2", NULL, NULL, false, "", 1420, "veth to veth" },
	{ "pod to outside", NULL, "10.244.1.2", "8.8.8.8",
	  TWILL_PROG_POD, "tw00000000000a1", "none", NULL, 0, TWILL_R_PASS_STACK,
	  "kernel stack", "eth0", NULL, NULL, false, "", 1500, "via 192.0.2.1 dev eth0" },
	{ "remote pod to local pod", NULL, "10.244.2.7", "10.244.1.2",
	  TWILL_PROG_WG, "twill0", "endpoint", "10.244.1.2", 32, TWILL_R_WG_TO_POD,
	  "redirect", "tw00000000000a1", NULL, NULL, false, "", 1420, "delivered into the pod" },
	{ "node to remote pod", NULL, "192.0.2.10", "10.244.3.7",
	  "", "", "none", NULL, 0, -1,
	  "kernel stack", "twill0", "n3", "203.0.113.3:51820", false, "public", 1420,
	  "route 10.244.3.0/24 dev twill0" },
};

static void check_trace(const struct trace_case *c)
{
	struct inspect_trace t;
	char epbuf[64];

	cr_assert_eq(inspect_trace(&fx.s, ip(c->src), ip(c->dst), &t), 0);
	cr_expect_str_eq(t.program, c->program, "%s: program", c->name);
	cr_expect_str_eq(t.program_ifname, c->program_ifname, "%s: program ifname", c->name);
	cr_expect_str_eq(t.match, c->match, "%s: match", c->name);
	if (c->match_net) {
		cr_expect_eq(t.match_net.s_addr, ip(c->match_net).s_addr, "%s: match net", c->name);
		cr_expect_eq(t.match_prefixlen, c->match_prefixlen, "%s: match len", c->name);
	}
	cr_expect_eq(t.reason, c->reason, "%s: reason %d", c->name, t.reason);
	cr_expect_str_eq(t.verdict, c->verdict, "%s: verdict", c->name);
	cr_expect_str_eq(t.out_ifname, c->out_ifname, "%s: out", c->name);
	cr_expect_eq(t.has_peer, c->peer_node != NULL, "%s: has peer", c->name);
	if (c->peer_node) {
		cr_expect_str_eq(t.peer_node, c->peer_node, "%s: peer node", c->name);
		inspect_endpoint_str(&t.peer_endpoint, epbuf, sizeof(epbuf));
		cr_expect_str_eq(epbuf, c->peer_endpoint, "%s: endpoint", c->name);
		cr_expect_eq(t.is_private, c->is_private, "%s: private", c->name);
		cr_expect_str_eq(t.path, c->path, "%s: path", c->name);
	}
	cr_expect_eq(t.mtu, c->mtu, "%s: mtu %u", c->name, t.mtu);
	cr_expect_eq(t.pod_mtu, 1420);
	cr_expect(steps_mention(&t, c->step), "%s: no step mentions '%s' (first: %s)", c->name,
		  c->step, t.steps[0]);
	cr_expect(steps_mention(&t, "MTU"), "%s: MTU not shown", c->name);
}

/* Every table runs twice: linear scans, then the sorted index inspect_collect builds. */
static void with_index(void)
{
	cr_assert_eq(inspect_snapshot_index(&fx.s), 0);
}

static void drop_index(void)
{
	inspect_index_free(fx.s.index);
	fx.s.index = NULL;
}

Test(inspect, trace_table)
{
	for (int indexed = 0; indexed < 2; indexed++)
		for (size_t i = 0; i < sizeof(trace_cases) / sizeof(trace_cases[0]); i++) {
			setup();
			if (trace_cases[i].mutate)
				trace_cases[i].mutate();
			if (indexed)
				with_index();
			check_trace(&trace_cases[i]);
			drop_index();
		}
}

Test(inspect, trace_names_path_from_route_flag_without_topology, .init = setup)
{
	struct inspect_trace t;

	fx.s.topo = NULL;
	cr_assert_eq(inspect_trace(&fx.s, ip("10.244.1.2"), ip("10.244.2.9"), &t), 0);
	cr_expect(t.is_private);
	cr_expect_str_eq(t.path, "private");
	cr_expect_str_eq(t.peer_node, "");
	cr_expect(t.has_peer);
	cr_expect_eq(t.peer_key[0], 2);
}

Test(inspect, trace_without_pod_program_goes_through_kernel_stack, .init = setup)
{
	struct inspect_trace t;

	fx.links[3].prog_ingress[0] = '\0';
	cr_assert_eq(inspect_trace(&fx.s, ip("10.244.1.2"), ip("10.244.2.9"), &t), 0);
	cr_expect(steps_mention(&t, "is not attached"));
	cr_expect_str_eq(t.program, "");
	cr_expect_eq(t.reason, -1);
	cr_expect_str_eq(t.verdict, "kernel stack");
	cr_expect_str_eq(t.out_ifname, "twill0");
	cr_expect(t.has_peer);
	cr_expect_str_eq(t.path, "vrack-rbx");
}

Test(inspect, trace_finds_source_veth_without_endpoint_entry, .init = setup)
{
	struct inspect_trace t;

	fx.s.n_endpoints = 0;
	cr_assert_eq(inspect_trace(&fx.s, ip("10.244.1.3"), ip("10.244.3.9"), &t), 0);
	cr_expect_str_eq(t.program, TWILL_PROG_POD);
	cr_expect_str_eq(t.program_ifname, "tw00000000000a2");
	cr_expect_eq(t.reason, TWILL_R_TO_WIREGUARD);
	cr_expect(steps_mention(&t, "no endpoint map entry"));

	/* neither the endpoint map nor the CNI's names: the pod's /32 route */
	fx.s.alloc_veths = NULL;
	cr_assert_eq(inspect_trace(&fx.s, ip("10.244.1.3"), ip("10.244.3.9"), &t), 0);
	cr_expect_str_eq(t.program_ifname, "tw00000000000a2");
}

Test(inspect, trace_without_wg_program_goes_through_kernel_stack, .init = setup)
{
	struct inspect_trace t;

	fx.links[2].prog_ingress[0] = '\0';
	cr_assert_eq(inspect_trace(&fx.s, ip("10.244.2.7"), ip("10.244.1.2"), &t), 0);
	cr_expect_str_eq(t.program, "");
	cr_expect_str_eq(t.out_ifname, "tw00000000000a1");
	cr_expect(steps_mention(&t, "route 10.244.1.2/32 dev tw00000000000a1"));
}

Test(inspect, trace_names_the_underlay_guard_drop, .init = setup)
{
	struct inspect_trace t;

	/* not strict in the pod program's config path, but the guard still sees it */
	fx.s.n_routes = 0;
	fx.s.config.strict = 1;
	cr_assert_eq(inspect_trace(&fx.s, ip("10.244.2.7"), ip("10.244.9.9"), &t), 0);
	cr_expect_eq(t.reason, TWILL_R_DROP_ESCAPED, "reason %d", t.reason);
	cr_expect_str_eq(t.verdict, "drop");
	cr_expect(steps_mention(&t, TWILL_PROG_GUARD));
}

Test(inspect, routes_do_not_expect_bpf_when_agent_runs_without_dataplane, .init = setup)
{
	struct inspect_route_row *rows;
	size_t n;

	fx.s.dp_loaded = false;
	fx.s.have_config = false;
	fx.s.n_routes = 0;
	fx.s.state.dataplane_loaded = false;
	cr_assert_eq(inspect_routes(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(rows[0].problem, "");
	free(rows);
}

Test(inspect, trace_says_wireguard_drops_without_peer, .init = setup)
{
	struct inspect_trace t;

	fx.wg.n_peers = 1; /* n3's peer is gone but its route is still there */
	cr_assert_eq(inspect_trace(&fx.s, ip("10.244.1.2"), ip("10.244.3.9"), &t), 0);
	/* the program counts it into WireGuard, which has no peer for it: a drop */
	cr_expect_eq(t.reason, TWILL_R_TO_WIREGUARD);
	cr_expect_str_eq(t.verdict, "drop");
	cr_expect(t.wg_drop);
	cr_expect_str_eq(t.out_ifname, "");
	cr_expect_not(t.has_peer);
	cr_expect(steps_mention(&t, "WireGuard drops it (no peer)"));
	cr_expect_str_eq(t.peer_node, "n3");

	/* the same through the kernel's route to the device (no pod program) */
	cr_assert_eq(inspect_trace(&fx.s, ip("192.0.2.10"), ip("10.244.3.9"), &t), 0);
	cr_expect_str_eq(t.program, "");
	cr_expect_str_eq(t.verdict, "drop");
	cr_expect(t.wg_drop);

	/* a peer that holds it: no drop */
	cr_assert_eq(inspect_trace(&fx.s, ip("10.244.1.2"), ip("10.244.2.9"), &t), 0);
	cr_expect_str_eq(t.verdict, "redirect");
	cr_expect_not(t.wg_drop);
}

Test(inspect, routes_agree_on_healthy_node, .init = setup)
{
	struct inspect_route_row *rows;
	size_t n;

	cr_assert_eq(inspect_routes(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(rows[0].net.s_addr, ip("10.244.2.0").s_addr);
	cr_expect_str_eq(rows[0].node, "n2");
	cr_expect_str_eq(rows[1].node, "n3");
	for (size_t i = 0; i < n; i++) {
		cr_expect(rows[i].in_bpf && rows[i].in_kernel && rows[i].peer);
		cr_expect_str_eq(rows[i].problem, "");
	}
	free(rows);
}

static void drop_kernel_route(void)
{
	kroute_remove("10.244.3.0", 24);
}

static void drop_bpf_route(void)
{
	route_remove("10.244.3.0");
}

static void drop_peer(void)
{
	fx.wg.n_peers = 1;
}

static void kernel_route_elsewhere(void)
{
	fx.kroutes[3].ifindex = ETH_IFINDEX;
}

static void bpf_endpoint_differs(void)
{
	fx.rvals[1].node_addr = ip("203.0.113.99").s_addr;
}

static void bpf_wrong_device(void)
{
	fx.rvals[1].ifindex = ETH_IFINDEX;
}

static void no_wg_device(void)
{
	fx.s.wg = NULL;
}

struct route_case {
	const char *name;
	void (*mutate)(void);
	const char *problem;
};

static const struct route_case route_cases[] = {
	{ "kernel route deleted", drop_kernel_route, "via eth0, not twill0" },
	{ "BPF route deleted", drop_bpf_route, "no BPF route" },
	{ "peer removed", drop_peer, "no WireGuard peer allows it" },
	{ "kernel route via another device", kernel_route_elsewhere, "via eth0, not twill0" },
	{ "BPF endpoint differs", bpf_endpoint_differs, "WireGuard uses 203.0.113.3" },
	{ "BPF route to another device", bpf_wrong_device, "points at eth0" },
	{ "WireGuard device unreadable", no_wg_device, "no WireGuard peer" },
};

static void check_routes_flag(const struct route_case *c)
{
	struct inspect_route_row *rows;
	struct inspect_health h;
	size_t n, bad = 0;

	cr_assert_eq(inspect_routes(&fx.s, &rows, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].problem[0])
			continue;
		bad++;
		if (rows[i].net.s_addr == ip("10.244.3.0").s_addr)
			cr_expect(strstr(rows[i].problem, c->problem), "%s: '%s'", c->name,
				  rows[i].problem);
	}
	cr_expect_geq(bad, 1, "%s: nothing flagged", c->name);
	free(rows);
	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect_not(h.healthy, "%s: still healthy", c->name);
}

Test(inspect, routes_flag_table)
{
	for (int indexed = 0; indexed < 2; indexed++)
		for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
			setup();
			route_cases[i].mutate();
			if (indexed)
				with_index();
			check_routes_flag(&route_cases[i]);
			drop_index();
		}
}

Test(inspect, routes_without_default_route_say_no_kernel_route, .init = setup)
{
	struct inspect_route_row *rows;
	size_t n;

	kroute_remove("0.0.0.0", 0);
	kroute_remove("10.244.2.0", 24);
	cr_assert_eq(inspect_routes(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(rows[0].problem, "no kernel route");
	cr_expect_str_eq(rows[1].problem, "");
	free(rows);
}

Test(inspect, routes_show_kernel_only_route, .init = setup)
{
	struct inspect_route_row *rows;
	size_t n;

	add_kroute("10.244.7.0", 24, NULL, WG_IFINDEX);
	cr_assert_eq(inspect_routes(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 3);
	cr_expect_eq(rows[2].net.s_addr, ip("10.244.7.0").s_addr);
	cr_expect(strstr(rows[2].problem, "no BPF route"));
	cr_expect(strstr(rows[2].problem, "no WireGuard peer"));
	free(rows);
}

Test(inspect, routes_ignore_cluster_wide_kernel_route, .init = setup)
{
	struct inspect_route_row *rows;
	size_t n;

	add_kroute("10.244.0.0", 16, NULL, WG_IFINDEX);
	cr_assert_eq(inspect_routes(&fx.s, &rows, &n), 0);
	cr_expect_eq(n, 2);
	free(rows);
}

Test(inspect, pods_match_on_healthy_node, .init = setup)
{
	struct inspect_pod_row *rows;
	size_t n;

	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(rows[0].addr.s_addr, ip("10.244.1.2").s_addr);
	cr_assert_not_null(rows[0].alloc);
	cr_expect_str_eq(rows[0].alloc->container_id, "c0ffee01");
	cr_assert_not_null(rows[0].veth);
	cr_expect_str_eq(rows[0].veth->info.name, "tw00000000000a1");
	cr_expect(rows[0].in_endpoints);
	cr_expect_str_eq(rows[0].problem, "");
	cr_expect_str_eq(rows[1].problem, "");
	free(rows);
}

Test(inspect, pods_flag_veth_deleted_by_hand, .init = setup)
{
	struct inspect_pod_row *rows;
	struct inspect_health h;
	size_t n;

	link_remove(VETH2);
	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_null(rows[1].veth);
	cr_expect(strstr(rows[1].problem, "allocation without veth"), "'%s'", rows[1].problem);
	cr_expect_str_eq(rows[0].problem, "");
	free(rows);
	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect_not(h.healthy);
}

Test(inspect, pods_flag_veth_without_allocation, .init = setup)
{
	struct inspect_pod_row *rows;
	size_t n;

	add_link(30, "tw00000000000ff", "veth", 1420, "", "");
	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 3);
	/* rows without an address sort first */
	cr_expect_null(rows[0].alloc);
	cr_expect_str_eq(rows[0].veth->info.name, "tw00000000000ff");
	cr_expect(strstr(rows[0].problem, "veth without allocation"), "'%s'", rows[0].problem);
	free(rows);
}

Test(inspect, pods_join_by_veth_name_without_endpoint_map, .init = setup)
{
	struct inspect_pod_row *rows;
	size_t n;

	fx.s.dp_loaded = false;
	fx.s.n_endpoints = 0;
	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(rows[0].veth->info.name, "tw00000000000a1");
	cr_expect_str_eq(rows[0].problem, "");
	free(rows);
}

Test(inspect, pods_join_by_host_route_without_names, .init = setup)
{
	struct inspect_pod_row *rows;
	size_t n;

	fx.s.n_endpoints = 0;
	fx.s.alloc_veths = NULL;
	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_not_null(rows[1].veth);
	cr_expect_str_eq(rows[1].veth->info.name, "tw00000000000a2");
	cr_expect_str_eq(rows[1].problem, "");
	cr_expect_str_eq(rows[1].warning, "no endpoint map entry");

	/* the veth deleted by hand takes its /32 route with it */
	free(rows);
	link_remove(VETH2);
	kroute_remove("10.244.1.3", 32);
	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(rows[1].problem, "allocation without veth");
	free(rows);
}

Test(inspect, pods_warn_on_missing_endpoint_entry_and_program, .init = setup)
{
	struct inspect_pod_row *rows;
	struct inspect_health h;
	size_t n;

	fx.s.n_endpoints = 1;
	fx.links[4].prog_ingress[0] = '\0';
	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(rows[1].problem, "");
	cr_expect(strstr(rows[1].warning, "no endpoint map entry"), "'%s'", rows[1].warning);
	cr_expect(strstr(rows[1].warning, "no program attached"), "'%s'", rows[1].warning);
	free(rows);

	/* degraded, not broken: the kernel still routes to the pod */
	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect(h.healthy, "%s", h.problems[0]);
	cr_expect_eq(h.n_warnings, 1);
	cr_expect(strstr(h.warnings[0], "pod 10.244.1.3 veth tw00000000000a2"), "'%s'",
		  h.warnings[0]);
}

/* A pod with bandwidth limits takes the kernel path by design: nothing to warn about. */
Test(inspect, pods_on_the_kernel_path_by_design_are_not_flagged, .init = setup)
{
	struct inspect_pod_row *rows;
	struct inspect_health h;
	size_t n;

	fx.s.n_endpoints = 1;
	fx.links[4].prog_ingress[0] = '\0';
	fx.links[4].kernel_path = true;
	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(rows[1].veth->info.name, "tw00000000000a2");
	cr_expect_str_eq(rows[1].problem, "");
	cr_expect_str_eq(rows[1].warning, "");
	free(rows);
	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect(h.healthy, "%s", h.problems[0]);
	cr_expect_eq(h.n_warnings, 0, "'%s'", h.warnings[0]);
}

Test(inspect, pods_flag_stale_endpoint_entry, .init = setup)
{
	struct inspect_pod_row *rows;
	size_t n;

	add_endpoint("10.244.1.9", 99);
	cr_assert_eq(inspect_pods(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 3);
	cr_expect(strstr(rows[2].problem, "endpoint entry without allocation"), "'%s'",
		  rows[2].problem);
	free(rows);
}

Test(inspect, peers_name_nodes_and_paths, .init = setup)
{
	struct inspect_peer_row *rows;
	size_t n;

	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(rows[0].node, "n2");
	cr_expect_str_eq(rows[0].path, "vrack-rbx");
	cr_expect(rows[0].is_private);
	cr_expect_eq(rows[0].handshake_age, 10);
	cr_expect_not(rows[0].stale);
	cr_expect_str_eq(rows[1].node, "n3");
	cr_expect_str_eq(rows[1].path, "public");
	cr_expect_not(rows[1].is_private);
	free(rows);
}

Test(inspect, peers_without_topology_use_route_flag, .init = setup)
{
	struct inspect_peer_row *rows;
	size_t n;

	fx.s.topo = NULL;
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_expect_str_eq(rows[0].node, "");
	cr_expect_str_eq(rows[0].path, "private");
	cr_expect_str_eq(rows[1].path, "public");
	free(rows);
}

Test(inspect, peers_without_route_map_use_topology_private_ip, .init = setup)
{
	struct inspect_peer_row *rows;
	size_t n;

	fx.s.n_routes = 0;
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_expect_str_eq(rows[0].path, "vrack-rbx");
	cr_expect_str_eq(rows[1].path, "public");
	free(rows);
}

Test(inspect, peers_stale_after_three_minutes_or_never, .init = setup)
{
	struct inspect_peer_row *rows;
	struct inspect_health h;
	size_t n;

	fx.peers[0].last_handshake_sec = NOW - 181;
	fx.peers[1].last_handshake_sec = 0;
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_expect(rows[0].stale);
	cr_expect_eq(rows[0].handshake_age, 181);
	cr_expect(rows[1].stale);
	cr_expect_eq(rows[1].handshake_age, -1);
	free(rows);
	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect_not(h.healthy);
	cr_expect_eq(h.peers_up, 0);
	cr_expect_eq(h.peers_total, 2);
	cr_expect(strstr(h.problems[0], "peer n2: no handshake for 181 s"), "'%s'", h.problems[0]);

	fx.peers[0].last_handshake_sec = NOW - 180;
	fx.peers[1].last_handshake_sec = NOW;
	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect(h.healthy);
}

static void route_since(const char *net, int64_t since)
{
	for (size_t i = 0; i < fx.s.n_routes; i++)
		if (fx.rkeys[i].addr == ip(net).s_addr) {
			fx.rvals[i].since = (__u32)since;
			return;
		}
	cr_assert_fail("no route %s in the fixture", net);
}

/* A node that just started, nothing sent yet: no handshake anywhere, and healthy. */
Test(inspect, peers_without_handshake_are_pending_while_newly_configured, .init = setup)
{
	struct inspect_peer_row *rows;
	struct inspect_health h;
	size_t n;

	fx.peers[0].last_handshake_sec = 0;
	fx.peers[1].last_handshake_sec = 0;
	route_since("10.244.2.0", NOW - 5);
	route_since("10.244.3.0", NOW - 180);
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_assert_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		cr_expect(rows[i].pending, "peer %zu not pending", i);
		cr_expect_not(rows[i].stale, "peer %zu stale", i);
		cr_expect_eq(rows[i].handshake_age, -1);
	}
	cr_expect_eq(rows[0].configured_age, 5);
	cr_expect_eq(rows[1].configured_age, 180);
	free(rows);
	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect(h.healthy, "an idle new node is unhealthy: %s", h.problems[0]);
	cr_expect_eq(h.peers_up, 0);
	cr_expect_eq(h.peers_pending, 2);
	cr_expect_eq(h.peers_total, 2);

	/* past 180 s configured and still no handshake: something is wrong */
	route_since("10.244.3.0", NOW - 181);
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_expect(rows[1].stale);
	cr_expect_not(rows[1].pending);
	free(rows);
	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect_not(h.healthy);
	cr_expect_eq(h.peers_pending, 1);
	cr_expect(strstr(h.problems[0], "peer n3: no handshake in the 181 s since it was configured"),
		  "'%s'", h.problems[0]);
}

/* Without a stamped route (--no-bpf, an older map) the agent's start is the clock. */
Test(inspect, peers_configured_since_falls_back_to_the_agent_start, .init = setup)
{
	struct inspect_peer_row *rows;
	size_t n;

	fx.peers[0].last_handshake_sec = 0;
	fx.s.state.agent_start_unix = NOW - 30;
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_expect(rows[0].pending);
	cr_expect_eq(rows[0].configured_age, 30);
	free(rows);
	fx.s.state.agent_start_unix = NOW - 400;
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_expect(rows[0].stale);
	free(rows);
	/* the route's own time wins over the agent's start */
	route_since("10.244.2.0", NOW - 20);
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_expect(rows[0].pending);
	cr_expect_eq(rows[0].configured_age, 20);
	free(rows);
	/* neither: as before, a peer that never shook hands is stale */
	route_since("10.244.2.0", 0);
	fx.s.state.agent_start_unix = 0;
	cr_assert_eq(inspect_peers(&fx.s, &rows, &n), 0);
	cr_expect(rows[0].stale);
	cr_expect_eq(rows[0].configured_age, -1);
	free(rows);
}

Test(inspect, rate_is_zero_when_a_counter_went_back)
{
	cr_expect_float_eq(inspect_rate(100, 300, 2.0), 100.0, 1e-9);
	cr_expect_float_eq(inspect_rate(300, 300, 1.0), 0.0, 1e-9);
	/* a reload restarted the counters: not 1.8e19 packets per second */
	cr_expect_float_eq(inspect_rate(5000, 12, 1.0), 0.0, 1e-9);
	cr_expect_float_eq(inspect_rate(0, 10, 0.0), 0.0, 1e-9);
}

Test(inspect, health_of_healthy_node, .init = setup)
{
	struct inspect_health h;

	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect(h.healthy, "problem: %s", h.problems[0]);
	cr_expect_eq(h.n_problems, 0);
	cr_expect_eq(h.peers_up, 2);
	cr_expect_eq(h.pods, 2);
}

static void reconcile_failed(void)
{
	snprintf(fx.s.state.last_error, sizeof(fx.s.state.last_error), "cannot set route");
}

static void dataplane_missing(void)
{
	fx.s.dp_loaded = false;
	fx.s.have_config = false;
	fx.s.n_routes = 0;
	fx.s.n_endpoints = 0;
}

static void wg_program_detached(void)
{
	fx.links[2].prog_ingress[0] = '\0';
}

static void no_state(void)
{
	fx.s.have_state = false;
}

struct health_case {
	const char *name;
	void (*mutate)(void);
	const char *problem;
};

static const struct health_case health_cases[] = {
	{ "last reconcile failed", reconcile_failed, "last reconcile failed: cannot set route" },
	{ "dataplane not loaded", dataplane_missing, "dataplane not loaded" },
	{ "wg program detached", wg_program_detached, "twill_wg_ingress is not attached" },
	{ "no node state", no_state, "no node state" },
	{ "no WireGuard device", no_wg_device, "WireGuard device 'twill0'" },
};

static void check_health_flags(const struct health_case *c)
{
	struct inspect_health h;
	bool found = false;

	cr_assert_eq(inspect_health(&fx.s, &h), 0);
	cr_expect_not(h.healthy, "%s", c->name);
	for (size_t i = 0; i < h.n_problems; i++)
		found |= strstr(h.problems[i], c->problem) != NULL;
	cr_expect(found, "%s: no problem mentions '%s' (first: %s)", c->name, c->problem,
		  h.problems[0]);
}

Test(inspect, health_flags_table)
{
	for (int indexed = 0; indexed < 2; indexed++)
		for (size_t i = 0; i < sizeof(health_cases) / sizeof(health_cases[0]); i++) {
			setup();
			health_cases[i].mutate();
			if (indexed)
				with_index();
			check_health_flags(&health_cases[i]);
			drop_index();
		}
}

Test(inspect, reason_names_cover_every_reason)
{
	for (int r = 0; r < TWILL_R_MAX; r++) {
		cr_expect_str_neq(inspect_reason_name(r), "?");
		cr_expect(!strncmp(inspect_reason_enum_name(r), "TWILL_R_", 8));
		cr_expect_str_neq(inspect_reason_description(r), "?");
	}
	cr_expect_str_eq(inspect_reason_enum_name(TWILL_R_DROP_NO_ROUTE), "TWILL_R_DROP_NO_ROUTE");
	/* the enum names here and the lower-case names in datapath.c must name one reason */
	for (int r = 0; r < TWILL_R_MAX; r++) {
		const char *name = inspect_reason_name(r), *en = inspect_reason_enum_name(r) + 8;
		size_t i;

		for (i = 0; name[i] && toupper((unsigned char)name[i]) == en[i]; i++)
			;
		cr_expect(!name[i] && !en[i], "reason %d: '%s' is not '%s'", r, name,
			  inspect_reason_enum_name(r));
	}
	cr_expect_str_eq(inspect_reason_name(TWILL_R_MAX), "?");
	cr_expect_str_eq(inspect_reason_name(-1), "?");
}

static void no_topology(void)
{
	fx.s.topo = NULL;
}

static void overlapping_kernel_routes(void)
{
	add_kroute("10.244.0.0", 16, NULL, WG_IFINDEX);
	add_kroute("10.244.3.0", 24, NULL, ETH_IFINDEX); /* a duplicate prefix on another device */
}

static void (*const equivalence_cases[])(void) = {
	NULL, remove_n3, disable_strict, drop_kernel_route, drop_bpf_route, drop_peer,
	kernel_route_elsewhere, bpf_endpoint_differs, no_topology, overlapping_kernel_routes,
};

static const char *const trace_addrs[] = {
	"10.244.1.2", "10.244.1.3", "10.244.1.9", "10.244.2.7", "10.244.3.7", "10.244.9.7",
	"192.0.2.10", "8.8.8.8",
};

struct answers {
	char text[64][INSPECT_TEXT_MAX * 2];
	size_t n;
};

static void answers_add(struct answers *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void answers_add(struct answers *a, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	cr_assert_lt(a->n, 64);
	used = strlen(a->text[a->n]);
	va_start(ap, fmt);
	vsnprintf(a->text[a->n] + used, sizeof(a->text[0]) - used, fmt, ap);
	va_end(ap);
}

static void collect_answers(struct answers *a)
{
	struct inspect_route_row *routes;
	struct inspect_peer_row *peers;
	struct inspect_pod_row *pods;
	size_t n;

	memset(a, 0, sizeof(*a));
	cr_assert_eq(inspect_routes(&fx.s, &routes, &n), 0);
	for (size_t i = 0; i < n; i++)
		answers_add(a, "%08x/%u %s %d%d%p %s|", routes[i].net.s_addr, routes[i].prefixlen,
			    routes[i].node, routes[i].in_bpf, routes[i].in_kernel,
			    (const void *)routes[i].peer, routes[i].problem);
	a->n++;
	free(routes);
	cr_assert_eq(inspect_peers(&fx.s, &peers, &n), 0);
	for (size_t i = 0; i < n; i++)
		answers_add(a, "%s %s %d|", peers[i].node, peers[i].path, peers[i].is_private);
	a->n++;
	free(peers);
	cr_assert_eq(inspect_pods(&fx.s, &pods, &n), 0);
	for (size_t i = 0; i < n; i++)
		answers_add(a, "%08x %p %s|", pods[i].addr.s_addr, (const void *)pods[i].veth,
			    pods[i].problem);
	a->n++;
	free(pods);
	for (size_t i = 0; i < 8; i++)
		for (size_t j = 0; j < 8; j += 3) {
			struct inspect_trace t;

			cr_assert_eq(inspect_trace(&fx.s, ip(trace_addrs[i]), ip(trace_addrs[j]), &t), 0);
			for (size_t k = 0; k < t.n_steps; k++)
				answers_add(a, "%s|", t.steps[k]);
			a->n++;
		}
}

Test(inspect, index_gives_the_same_answers_as_linear_scans)
{
	static struct answers linear, indexed;

	for (size_t c = 0; c < sizeof(equivalence_cases) / sizeof(equivalence_cases[0]); c++) {
		setup();
		if (equivalence_cases[c])
			equivalence_cases[c]();
		collect_answers(&linear);
		with_index();
		collect_answers(&indexed);
		drop_index();
		cr_assert_eq(linear.n, indexed.n);
		for (size_t i = 0; i < linear.n; i++)
			cr_expect_str_eq(indexed.text[i], linear.text[i], "case %zu answer %zu", c, i);
	}
}
