// SPDX-License-Identifier: Apache-2.0
/*
 * Numbers from command lines, annotations and the environment. strtoul() would take
 * " +12" and wrap "-1" to ULONG_MAX: every front end had to remember that, so they
 * share this strict parser instead.
 */
#include <errno.h>

#include "strutil.h"

int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned long d;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = (unsigned long)(*s - '0');
		if (d > max || v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}
