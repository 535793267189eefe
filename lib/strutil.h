/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_STRUTIL_H
#define TWILL_STRUTIL_H

/*
 * Plain decimal digits only (no sign, space or empty string), at most max.
 * -EINVAL for a malformed number, -ERANGE above max; *out set only on success.
 */
int parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif
