// SPDX-License-Identifier: Apache-2.0
/*
 * lib/netlink and lib/netns against the real kernel. Every test runs in its own forked
 * process (criterion) and first moves into a private network namespace, so nothing
 * it creates is visible outside, and it all vanishes when the process exits.
 * Needs root: skipped otherwise.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "netlink.h"
#include "netns.h"

static void private_netns(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		cr_skip_test("needs root for a private network namespace: %s", strerror(errno));
	log_set_stderr(0);
}

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void veth(const char *a, const char *b, unsigned int mtu, struct nl_link_info *ia,
		 struct nl_link_info *ib)
{
	cr_assert_eq(nl_veth_create(a, b, -1, mtu), 0);
	cr_assert_eq(nl_link_get(a, ia), 0);
	cr_assert_eq(nl_link_get(b, ib), 0);
}

Test(netlink, links_veth_mtu_up_alias_delete)
{
	struct nl_link_info a, b, got, *list = NULL;
	char alias[64];
	size_t n = 0;
	bool seen = false;

	private_netns();
	cr_assert_eq(nl_link_get("nosuchlink0", &got), -ENODEV);
	veth("cnt-a", "cnt-b", 1400, &a, &b);
	cr_assert_str_eq(a.kind, "veth");
	cr_assert_eq(a.mtu, 1400);
	cr_assert_not(a.up);
	cr_assert_eq(nl_veth_create("cnt-a", "cnt-c", -1, 0), -EEXIST);
	cr_assert_eq(nl_link_set_mtu(a.ifindex, 1300), 0);
	cr_assert_eq(nl_link_set_up(a.ifindex), 0);
	cr_assert_eq(nl_link_get_by_index(a.ifindex, &got), 0);
	cr_assert_str_eq(got.name, "cnt-a");
	cr_assert_eq(got.mtu, 1300);
	cr_assert(got.up);
	cr_assert_eq(memcmp(got.mac, a.mac, 6), 0);
	cr_assert_eq(nl_link_get_alias(a.ifindex, alias, sizeof(alias)), -ENODATA);
	cr_assert_eq(nl_link_set_alias(a.ifindex, "twill net eth0 c1"), 0);
	cr_assert_eq(nl_link_get_alias(a.ifindex, alias, sizeof(alias)), 0);
	cr_assert_str_eq(alias, "twill net eth0 c1");
	cr_assert_eq(nl_link_list(&list, &n), 0);
	for (size_t i = 0; i < n; i++)
		seen |= !strcmp(list[i].name, "cnt-b") && list[i].ifindex == b.ifindex;
	free(list);
	cr_assert(seen);
	cr_assert_eq(nl_link_delete(a.ifindex), 0);
	/* the peer goes with it */
	cr_assert_eq(nl_link_get("cnt-b", &got), -ENODEV);
	cr_assert_eq(nl_link_delete(a.ifindex), -ENODEV);
}

Test(netlink, addresses)
{
	struct nl_link_info a, b;

	private_netns();
	veth("cnt-a", "cnt-b", 0, &a, &b);
	cr_assert_eq(nl_addr_add(a.ifindex, ip("10.7.0.1"), 24), 0);
	cr_assert_eq(nl_addr_add(a.ifindex, ip("10.7.0.1"), 24), 0, "EEXIST is fine");
	cr_assert(nl_addr_present(a.ifindex, ip("10.7.0.1"), 24));
	cr_assert_not(nl_addr_present(a.ifindex, ip("10.7.0.1"), 32));
	cr_assert_not(nl_addr_present(b.ifindex, ip("10.7.0.1"), 24));
	cr_assert_eq(nl_addr_del(a.ifindex, ip("10.7.0.1"), 24), 0);
	cr_assert_not(nl_addr_present(a.ifindex, ip("10.7.0.1"), 24));
	cr_assert_lt(nl_addr_del(a.ifindex, ip("10.7.0.1"), 24), 0);
	cr_assert_eq(nl_addr_add(a.ifindex, ip("10.7.0.1"), 33), -EINVAL);
}

static const struct nl_route *find_route(const struct nl_route *v, size_t n, const char *dst,
					 unsigned int len)
{
	struct in_addr d = ip(dst);

	for (size_t i = 0; i < n; i++)
		if (v[i].dst.s_addr == d.s_addr && v[i].dst_len == len)
			return &v[i];
	return NULL;
}

Test(netlink, routes_with_gateway_mtu_prefsrc_list_delete)
{
	struct nl_link_info a, b;
	struct nl_route *v = NULL;
	const struct nl_route *r;
	size_t n = 0;

	private_netns();
	veth("cnt-a", "cnt-b", 0, &a, &b);
	cr_assert_eq(nl_link_set_up(a.ifindex), 0);
	cr_assert_eq(nl_link_set_up(b.ifindex), 0);
	cr_assert_eq(nl_addr_add(a.ifindex, ip("10.7.0.1"), 24), 0);

	cr_assert_eq(nl_route_replace(&(struct nl_route){ .dst = ip("169.254.1.1"), .dst_len = 32,
							  .ifindex = b.ifindex, .scope_link = true }), 0);
	cr_assert_eq(nl_route_replace(&(struct nl_route){ .dst = ip("10.8.0.0"), .dst_len = 16,
							  .gateway = ip("10.7.0.2"), .ifindex = a.ifindex,
							  .mtu = 1380, .prefsrc = ip("10.7.0.1") }), 0);
	/* replace, not add: a second call with a new MTU changes the same route */
	cr_assert_eq(nl_route_replace(&(struct nl_route){ .dst = ip("10.8.0.0"), .dst_len = 16,
							  .gateway = ip("10.7.0.2"), .ifindex = a.ifindex,
							  .mtu = 1420, .prefsrc = ip("10.7.0.1") }), 0);

	cr_assert_eq(nl_route_list(0, &v, &n), 0);
	r = find_route(v, n, "10.8.0.0", 16);
	cr_assert_not_null(r);
	cr_assert_eq(r->gateway.s_addr, ip("10.7.0.2").s_addr);
	cr_assert_eq(r->prefsrc.s_addr, ip("10.7.0.1").s_addr);
	cr_assert_eq(r->mtu, 1420);
	cr_assert_eq(r->ifindex, a.ifindex);
	cr_assert_not(r->scope_link);
	r = find_route(v, n, "169.254.1.1", 32);
	cr_assert_not_null(r);
	cr_assert(r->scope_link);
	cr_assert_eq(r->ifindex, b.ifindex);
	free(v);

	cr_assert_eq(nl_route_list(b.ifindex, &v, &n), 0);
	cr_assert_eq(n, 1, "only b's route: %zu", n);
	free(v);

	cr_assert_eq(nl_route_delete(&(struct nl_route){ .dst = ip("10.8.0.0"), .dst_len = 16,
							 .ifindex = a.ifindex }), 0);
	cr_assert_eq(nl_route_delete(&(struct nl_route){ .dst = ip("10.8.0.0"), .dst_len = 16,
							 .ifindex = a.ifindex }), -ESRCH);
	cr_assert_eq(nl_route_list(0, &v, &n), 0);
	cr_assert_null(find_route(v, n, "10.8.0.0", 16));
	free(v);
}

Test(netlink, permanent_neighbour)
{
	struct nl_link_info a, b;
	const uint8_t mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x42 };
	uint8_t got[6];
	bool permanent = false;
	char cmd[128];

	private_netns();
	veth("cnt-a", "cnt-b", 0, &a, &b);
	cr_assert_eq(nl_neigh_get(a.ifindex, ip("169.254.1.1"), got, &permanent), -ENOENT);
	cr_assert_eq(nl_neigh_add_permanent(a.ifindex, ip("169.254.1.1"), mac), 0);
	cr_assert_eq(nl_neigh_get(a.ifindex, ip("169.254.1.1"), got, &permanent), 0);
	cr_assert_eq(memcmp(got, mac, 6), 0);
	cr_assert(permanent);
	cr_assert_eq(nl_neigh_get(b.ifindex, ip("169.254.1.1"), got, &permanent), -ENOENT);
	cr_assert_eq(system("ip neigh replace 169.254.1.2 lladdr 02:00:00:00:00:43 dev cnt-a "
			    "nud reachable"), 0);
	cr_assert_eq(nl_neigh_get(a.ifindex, ip("169.254.1.2"), got, &permanent), 0);
	cr_assert_not(permanent);
	cr_assert_eq(got[5], 0x43);
	/* replace: the same entry again is fine */
	cr_assert_eq(nl_neigh_add_permanent(a.ifindex, ip("169.254.1.1"), mac), 0);
	snprintf(cmd, sizeof(cmd),
		 "ip neigh show 169.254.1.1 dev cnt-a | grep -q '02:00:00:00:00:42 PERMANENT'");
	cr_assert_eq(system(cmd), 0, "ip neigh does not show the permanent entry");
}

Test(netlink, sysctl_forms)
{
	char buf[16];

	private_netns();
	cr_assert_eq(sysctl_write("net.ipv4.ip_forward", "1"), 0);
	cr_assert_eq(sysctl_read("/proc/sys/net/ipv4/ip_forward", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "1");
	cr_assert_eq(sysctl_write("net/ipv4/ip_forward", "0"), 0);
	cr_assert_eq(sysctl_read("net.ipv4.ip_forward", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "0");
	cr_assert_eq(sysctl_read("net.ipv4.no_such_knob", buf, sizeof(buf)), -ENOENT);
	cr_assert_eq(sysctl_write("net/ipv4/../../kernel/hostname", "x"), -EINVAL);
}

Test(netlink, netns_enter_and_leave)
{
	struct netns_saved saved = { .original_fd = -1 };
	struct nl_link_info a, b, got;
	int child_ns, me;
	pid_t pid;
	int p[2];
	char c;

	private_netns();
	/* a second namespace, held by a child, reached through /proc/PID/ns/net */
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		c = 'y';
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	cr_assert_eq(read(p[0], &c, 1), 1);
	{
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
		child_ns = netns_open(path);
	}
	cr_assert_geq(child_ns, 0);
	cr_assert_lt(netns_open("/etc/hostname"), 0, "a plain file is not a namespace");
	cr_assert_eq(netns_open("/nonexistent"), -ENOENT);

	/* the peer is created straight inside the other namespace */
	cr_assert_eq(nl_veth_create("cnt-host", "cnt-pod", child_ns, 1440), 0);
	cr_assert_eq(nl_link_get("cnt-host", &a), 0);
	cr_assert_eq(nl_link_get("cnt-pod", &got), -ENODEV);
	cr_assert_eq(netns_enter(child_ns, &saved), 0);
	cr_assert_eq(nl_link_get("cnt-pod", &b), 0, "netlink must follow the namespace");
	cr_assert_eq(b.mtu, 1440);
	cr_assert_eq(netns_leave(&saved), 0);
	cr_assert_eq(saved.original_fd, -1);
	cr_assert_eq(nl_link_get("cnt-pod", &got), -ENODEV);
	cr_assert_eq(nl_link_get("cnt-host", &got), 0);
	me = got.ifindex;
	cr_assert_eq(me, a.ifindex);
	close(child_ns);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
