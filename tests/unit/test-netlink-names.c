// SPDX-License-Identifier: Apache-2.0
/* nl_ifname_valid needs no kernel: the rest of lib/netlink is tested as root in
 * tests/integration/test-netlink.c. */
#include <criterion/criterion.h>
#include <stdbool.h>

#include "netlink.h"

static const char *const valid[] = {
	"eth0", "twill0", "a", "...", ".a", "a-b_c.d@e",
	"123456789012345",	/* 15 bytes, the most IFNAMSIZ allows */
	"caf\xc3\xa9",		/* the kernel allows UTF-8 */
};

static const char *const invalid[] = {
	"1234567890123456", "", ".", "..", "a/b", "a:1", "a b", "a\tb", "a\nb", "a\vb",
	"a\fb", "a\rb", "/", ":",
	"a\xa0" "b",		/* the kernel's isspace() counts 0xa0 */
};

Test(netlink_names, ifname_valid_table)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		cr_expect(nl_ifname_valid(valid[i]), "'%s' refused", valid[i]);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		cr_expect(!nl_ifname_valid(invalid[i]), "'%s' accepted", invalid[i]);
	cr_expect(!nl_ifname_valid(NULL));
}
