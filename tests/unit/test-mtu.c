// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <net/if.h>
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
