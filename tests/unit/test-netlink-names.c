// SPDX-License-Identifier: Apache-2.0
/* nl_ifname_valid needs no kernel: the rest of lib/netlink is tested as root in
 * tests/integration/test-netlink.c. */
#include <criterion/criterion.h>
#include <stdbool.h>

#include "netlink.h"

static const struct {
	const char *name;
	bool valid;
} cases[] = {
	{ "eth0", true },
	{ "twill0", true },
	{ "a", true },
	{ "...", true },
	{ ".a", true },
	{ "a-b_c.d@e", true },
	{ "123456789012345", true },	/* 15 bytes, the most IFNAMSIZ allows */
	{ "caf\xc3\xa9", true },	/* the kernel allows UTF-8 */
	{ "1234567890123456", false },
	{ "", false },
	{ ".", false },
	{ "..", false },
	{ "a/b", false },
	{ "a:1", false },
	{ "a b", false },
	{ "a\tb", false },
	{ "a\nb", false },
	{ "a\vb", false },
	{ "a\fb", false },
	{ "a\rb", false },
	{ "a\xa0" "b", false },	/* the kernel's isspace() counts 0xa0 */
	{ "/", false },
	{ ":", false },
};

Test(netlink_names, ifname_valid_table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(nl_ifname_valid(cases[i].name), cases[i].valid, "'%s': want %s",
			     cases[i].name, cases[i].valid ? "valid" : "invalid");
}

Test(netlink_names, null_is_invalid)
{
	cr_assert(!nl_ifname_valid(NULL));
}
