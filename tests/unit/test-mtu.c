// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mtu.h"

Test(mtu, wireguard_overhead)
{
	cr_assert_eq(mtu_wireguard(1500, false), 1440);
	cr_assert_eq(mtu_wireguard(1500, true), 1420);
	cr_assert_eq(mtu_wireguard(9000, false), 8940);
	cr_assert_eq(mtu_wireguard(9000, true), 8920);
	/* nonsense underlay: do not hand pods a tiny MTU */
	cr_assert_eq(mtu_wireguard(100, false), MTU_FALLBACK);
}

static union wg_endpoint ep4(const char *s)
{
	union wg_endpoint e;

	memset(&e, 0, sizeof(e));
	e.addr4.sin_family = AF_INET;
	e.addr4.sin_port = htons(51820);
	cr_assert_eq(inet_pton(AF_INET, s, &e.addr4.sin_addr), 1);
	return e;
}

/* Loopback is the one underlay every test namespace has: 127/8 routes to lo. */
Test(mtu, route_lookup_finds_the_output_link)
{
	union wg_endpoint e = ep4("127.0.0.2");
	unsigned int mtu = 0, lo_mtu;
	int ifindex = 0;
	struct mtu_result r;

	log_set_stderr(0);
	cr_assert_eq(mtu_route_lookup(&e, &mtu, &ifindex), 0);
	cr_assert_eq(ifindex, (int)if_nametoindex("lo"));
	cr_assert_gt(mtu, 0);
	lo_mtu = mtu;
	union wg_endpoint list[3];

	memset(list, 0, sizeof(list));
	list[0] = ep4("127.0.0.2");
	list[1] = ep4("127.0.0.3");
	cr_assert_eq(mtu_for_endpoints(list, 3, &r), 0);
	cr_assert_eq(r.underlay_mtu, lo_mtu);
	cr_assert_eq(r.wg_mtu, mtu_wireguard(lo_mtu, false));
	cr_assert_eq(r.n_ifindexes, 1);
	cr_assert_eq(r.ifindexes[0], ifindex);
	mtu_result_clear(&r);
}

Test(mtu, no_endpoints_falls_back)
{
	struct mtu_result r;

	cr_assert_eq(mtu_for_endpoints(NULL, 0, &r), 0);
	cr_assert_eq(r.underlay_mtu, 0);
	cr_assert_eq(r.wg_mtu, MTU_FALLBACK);
	cr_assert_eq(r.n_ifindexes, 0);
	mtu_result_clear(&r);
}

/* Criterion forks per test: the namespace and its routes go with the test's process. */
static void private_netns(const char *setup)
{
	char cmd[512];

	log_set_stderr(0);
	if (unshare(CLONE_NEWNET) < 0)
		cr_skip_test("needs root for a private network namespace");
	snprintf(cmd, sizeof(cmd), "ip link set lo mtu 9000 up && %s", setup);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static union wg_endpoint ep6(const char *s)
{
	union wg_endpoint e;

	memset(&e, 0, sizeof(e));
	e.addr6.sin6_family = AF_INET6;
	e.addr6.sin6_port = htons(51820);
	cr_assert_eq(inet_pton(AF_INET6, s, &e.addr6.sin6_addr), 1);
	return e;
}

/*
 * A prohibit route answers EACCES, a blackhole route EINVAL, a host with IPv6 off
 * EAFNOSUPPORT: each endpoint counts as unreachable, the reconcile goes on.
 */
Test(mtu, failed_lookups_count_as_unreachable)
{
	union wg_endpoint list[3] = { ep4("203.0.113.5"), ep4("127.0.0.2"), ep4("198.51.100.5") };
	struct mtu_result r;

	private_netns("ip route add prohibit 203.0.113.0/24 && ip route add blackhole 198.51.100.0/24");
	cr_assert_eq(mtu_for_endpoints(list, 3, &r), 0);
	cr_assert_eq(r.n_unreachable, 2);
	cr_assert_eq(r.lookup_error, -EACCES);
	cr_assert_str_eq(r.lookup_error_endpoint, "203.0.113.5");
	cr_assert_eq(r.underlay_mtu, 9000);
	cr_assert_eq(r.wg_mtu, 8940);
	cr_assert_eq(r.n_ifindexes, 1);
	mtu_result_clear(&r);
	/* nothing left to measure: the fallback, still no error */
	cr_assert_eq(mtu_for_endpoints(list, 1, &r), 0);
	cr_assert_eq(r.n_unreachable, 1);
	cr_assert_eq(r.underlay_mtu, 0);
	cr_assert_eq(r.wg_mtu, MTU_FALLBACK);
	mtu_result_clear(&r);
}

Test(mtu, ipv6_endpoint_takes_80_bytes)
{
	union wg_endpoint e = ep6("::1");
	struct mtu_result r;
	unsigned int mtu = 0;
	int ifindex = 0;

	private_netns("true");
	cr_assert_eq(mtu_route_lookup(&e, &mtu, &ifindex), 0);
	cr_assert_eq(ifindex, (int)if_nametoindex("lo"));
	cr_assert_eq(mtu, 9000);
	cr_assert_eq(mtu_for_endpoints(&e, 1, &r), 0);
	cr_assert(r.any_ipv6);
	cr_assert_eq(r.underlay_mtu, 9000);
	cr_assert_eq(r.wg_mtu, 9000 - 80);
	mtu_result_clear(&r);
}

Test(mtu, ipv6_switched_off_is_unreachable_not_an_error)
{
	union wg_endpoint list[2] = { ep6("::1"), ep4("127.0.0.2") };
	struct mtu_result r;

	private_netns("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1");
	cr_assert_eq(mtu_for_endpoints(list, 2, &r), 0);
	cr_assert_eq(r.n_unreachable, 1);
	cr_assert_not(r.any_ipv6);
	cr_assert_eq(r.wg_mtu, 8940);
	mtu_result_clear(&r);
}
