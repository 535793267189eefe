// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>

#include "cidr.h"

struct parse_case {
	const char *text;
	int ret;
	const char *addr;	/* as parsed, host bits kept */
	uint8_t len;
	bool host_bits;
};

static const struct parse_case parse_cases[] = {
	{ "10.244.1.0/24", 0, "10.244.1.0", 24, false },
	{ "10.244.1.7/24", 0, "10.244.1.7", 24, true },
	{ "0.0.0.0/0", 0, "0.0.0.0", 0, false },
	{ "1.2.3.4/0", 0, "1.2.3.4", 0, true },
	{ "1.2.3.4/32", 0, "1.2.3.4", 32, false },
	{ "10.0.0.0/8", 0, "10.0.0.0", 8, false },
	{ "10.128.0.0/9", 0, "10.128.0.0", 9, false },
	{ "255.255.255.255/32", 0, "255.255.255.255", 32, false },
	{ "10.0.0.0/33", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/", -EINVAL, NULL, 0, false },
	{ "10.0.0.0", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/ 8", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/+8", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/-8", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/08", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/8 ", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/8x", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/100", -EINVAL, NULL, 0, false },
	{ "10.0.0.0/99999999999999999999", -EINVAL, NULL, 0, false },
	{ " 10.0.0.0/8", -EINVAL, NULL, 0, false },
	{ "10.0.0/8", -EINVAL, NULL, 0, false },
	{ "10.0.0.256/8", -EINVAL, NULL, 0, false },
	{ "/8", -EINVAL, NULL, 0, false },
	{ "", -EINVAL, NULL, 0, false },
	{ "fd00::/64", -EAFNOSUPPORT, NULL, 0, false },
	{ "fd00::/200", -EAFNOSUPPORT, NULL, 0, false },
	{ "::ffff:10.0.0.0/120", -EAFNOSUPPORT, NULL, 0, false },
	{ "10.0.0.0/8/8", -EINVAL, NULL, 0, false },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/8", -EINVAL, NULL, 0, false },
};

Test(cidr, parse_table)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct in_addr net = { .s_addr = htonl(0x01020304) }, want;
		uint8_t len = 99;
		int r = cidr_parse(c->text, &net, &len);

		cr_assert_eq(r, c->ret, "'%s': got %d, want %d", c->text, r, c->ret);
		if (r < 0) {
			cr_assert_eq(net.s_addr, htonl(0x01020304), "'%s': net written on error", c->text);
			cr_assert_eq(len, 99, "'%s': prefixlen written on error", c->text);
			continue;
		}
		cr_assert_eq(inet_pton(AF_INET, c->addr, &want), 1);
		cr_assert_eq(net.s_addr, want.s_addr, "'%s': wrong address", c->text);
		cr_assert_eq(len, c->len, "'%s': got /%u", c->text, len);
		cr_assert_eq(cidr_has_host_bits(net, len), c->host_bits, "'%s': host bits", c->text);
	}
}

Test(cidr, parse_null)
{
	struct in_addr net;
	uint8_t len;

	cr_assert_eq(cidr_parse(NULL, &net, &len), -EINVAL);
}

Test(cidr, mask)
{
	static const struct { const char *in; const char *out; } cases[] = {
		{ "10.244.1.7/24", "10.244.1.0/24" },
		{ "10.255.255.255/9", "10.128.0.0/9" },
		{ "1.2.3.4/0", "0.0.0.0/0" },
		{ "1.2.3.4/32", "1.2.3.4/32" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct in_addr net;
		uint8_t len;
		char buf[CIDR_STR_LEN];

		cr_assert_eq(cidr_parse(cases[i].in, &net, &len), 0);
		net = cidr_mask(net, len);
		cr_assert(!cidr_has_host_bits(net, len));
		cidr_format(net, len, buf);
		cr_assert_str_eq(buf, cases[i].out);
	}
}

Test(cidr, format_round_trip)
{
	static const char *const cases[] = {
		"0.0.0.0/0", "10.244.1.0/24", "255.255.255.255/32", "192.168.0.1/17",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct in_addr net;
		uint8_t len;
		char buf[CIDR_STR_LEN];

		cr_assert_eq(cidr_parse(cases[i], &net, &len), 0);
		cidr_format(net, len, buf);
		cr_assert_str_eq(buf, cases[i]);
	}
}
