// SPDX-License-Identifier: Apache-2.0
/* The wgctl front door: names, back-end choice, the array helpers, and (as root, in a
 * private network namespace) the real rtnetlink path used to delete links. */
#include <criterion/criterion.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "wg_kernel.h"
#include "wgctl.h"

static void quiet(void)
{
	log_set_stderr(0);
}

Test(wgctl, backend_names)
{
	cr_assert_str_eq(wg_backend_name(WG_BACKEND_AUTO), "auto");
	cr_assert_str_eq(wg_backend_name(WG_BACKEND_KERNEL), "kernel");
	cr_assert_str_eq(wg_backend_name(WG_BACKEND_USERSPACE), "userspace");
}

Test(wgctl, open_validates_names, .init = quiet)
{
	static const char *const bad[] = { "", "0123456789abcdef", "a/b", "a b" };
	struct wgctl *wg = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(wgctl_open(bad[i], WG_BACKEND_USERSPACE, &wg), -EINVAL, "'%s'", bad[i]);
		cr_expect_null(wg);
	}
	cr_assert_eq(wgctl_open("wgt-x", 42, &wg), -EINVAL);
	cr_assert_eq(wgctl_open("wgt-x", WG_BACKEND_USERSPACE, &wg), 0);
	cr_assert_str_eq(wgctl_ifname(wg), "wgt-x");
	cr_assert_eq(wgctl_backend(wg), WG_BACKEND_USERSPACE);
	cr_assert_eq(wgctl_set_userspace_program(wg, "/opt/wg/wireguard-go"), 0);
	cr_assert_eq(wgctl_set_userspace_program(wg, ""), -EINVAL);
	wgctl_close(wg);
	wgctl_close(NULL);
}

/* AUTO must follow what the kernel offers; on a machine without WireGuard (this one)
 * that is userspace, and forcing the kernel back end fails instead of pretending. */
Test(wgctl, auto_follows_the_kernel_family, .init = quiet)
{
	bool kernel = wgctl_kernel_available();
	struct wgctl *wg = NULL;
	int r;

	cr_assert_eq(wgctl_open("wgt-x", WG_BACKEND_AUTO, &wg), 0);
	cr_assert_eq(wgctl_backend(wg), kernel ? WG_BACKEND_KERNEL : WG_BACKEND_USERSPACE);
	wgctl_close(wg);
	wg = NULL;
	r = wgctl_open("wgt-x", WG_BACKEND_KERNEL, &wg);
	if (kernel) {
		cr_assert_eq(r, 0);
		wgctl_close(wg);
	} else {
		cr_assert_eq(r, -ENOENT);
		cr_assert_null(wg);
	}
}

Test(wgctl, array_helpers_grow_and_zero)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));

	for (int i = 0; i < 10000; i++) {
		struct wg_peer *p = wg_device_add_peer(dev);

		cr_assert_not_null(p);
		cr_assert_eq(p->n_allowed_ips, 0);
		cr_assert_eq(p->flags, 0);
		p->keepalive_interval = (uint16_t)i;
		for (int j = 0; j < i % 7; j++) {
			struct wg_allowed_ip *a = wg_peer_add_allowed_ip(p);

			cr_assert_eq(a->cidr, 0);
			a->cidr = (uint8_t)j;
		}
	}
	cr_assert_eq(dev->n_peers, 10000);
	for (int i = 0; i < 10000; i++) {
		cr_assert_eq(dev->peers[i].keepalive_interval, i);
		cr_assert_eq(dev->peers[i].n_allowed_ips, (size_t)(i % 7));
		for (size_t j = 0; j < dev->peers[i].n_allowed_ips; j++)
			cr_assert_eq(dev->peers[i].allowed_ips[j].cidr, j);
	}
	wg_device_free(dev);
	wg_device_free(NULL);
}

/* Real rtnetlink, in a namespace of this test process only (criterion forks per test). */
Test(wgctl, link_requests_reach_the_kernel, .init = quiet)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		cr_skip_test("needs root for a private network namespace");
	cr_assert_eq(system("ip link add wgt-dummy type veth peer name wgt-dummy1"), 0);
	cr_assert_neq(if_nametoindex("wgt-dummy"), 0);
	cr_assert_eq(wg_kernel_link_delete("wgt-dummy"), 0);
	cr_assert_eq(if_nametoindex("wgt-dummy"), 0);
	cr_assert_eq(if_nametoindex("wgt-dummy1"), 0);
	cr_assert_eq(wg_kernel_link_delete("wgt-dummy"), -ENODEV);
	if (!wgctl_kernel_available())
		cr_assert_lt(wg_kernel_link_create("wgt-k"), 0,
			     "a wireguard link without the module");
}
