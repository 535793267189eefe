// SPDX-License-Identifier: Apache-2.0
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>

#include "strutil.h"

static const struct {
	const char *s;
	unsigned long max;
	int ret;
	unsigned long v;
} cases[] = {
	{ "0", 10, 0, 0 },
	{ "7", 10, 0, 7 },
	{ "10", 10, 0, 10 },
	{ "007", 10, 0, 7 },
	{ "65535", 65535, 0, 65535 },
	{ "18446744073709551615", ULONG_MAX, 0, ULONG_MAX },
	{ "11", 10, -ERANGE, 0 },
	{ "65536", 65535, -ERANGE, 0 },
	{ "5", 0, -ERANGE, 0 },
	{ "18446744073709551616", ULONG_MAX, -ERANGE, 0 },
	{ "99999999999999999999999", ULONG_MAX, -ERANGE, 0 },
	{ "", 10, -EINVAL, 0 },
	{ " 1", 10, -EINVAL, 0 },
	{ "1 ", 10, -EINVAL, 0 },
	{ "+1", 10, -EINVAL, 0 },
	{ "-1", ULONG_MAX, -EINVAL, 0 },
	{ "-0", 10, -EINVAL, 0 },
	{ "1x", 10, -EINVAL, 0 },
	{ "0x10", 100, -EINVAL, 0 },
	{ "1.5", 10, -EINVAL, 0 },
};

Test(strutil, parse_uint_table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long v = 12345;
		int r = parse_uint(cases[i].s, cases[i].max, &v);

		cr_expect_eq(r, cases[i].ret, "'%s' max %lu: got %d, want %d", cases[i].s,
			     cases[i].max, r, cases[i].ret);
		cr_expect_eq(v, r == 0 ? cases[i].v : 12345, "'%s': value %lu", cases[i].s, v);
	}
}

Test(strutil, parse_uint_null)
{
	unsigned long v;

	cr_assert_eq(parse_uint(NULL, 10, &v), -EINVAL);
}
