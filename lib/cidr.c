// SPDX-License-Identifier: Apache-2.0
/* IPv4 CIDR text, parsed and printed in one place so every front end agrees on it. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"

static uint32_t prefix_mask(uint8_t prefixlen)
{
	return prefixlen ? ~0u << (32 - prefixlen) : 0;
}

int cidr_parse(const char *text, struct in_addr *net, uint8_t *prefixlen)
{
	char buf[INET6_ADDRSTRLEN + 4];
	struct in6_addr a6;
	struct in_addr a;
	const char *len;
	char *slash;
	unsigned int l;

	if (!text || !net || !prefixlen || strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	len = slash + 1;
	if (inet_pton(AF_INET6, buf, &a6) == 1)
		return -EAFNOSUPPORT;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	/* strtoul would take " +24": refuse anything but 1-2 plain digits */
	if (len[0] < '0' || len[0] > '9')
		return -EINVAL;
	l = (unsigned int)(len[0] - '0');
	if (len[1]) {
		if (l == 0 || len[1] < '0' || len[1] > '9' || len[2])
			return -EINVAL;
		l = l * 10 + (unsigned int)(len[1] - '0');
	}
	if (l > 32)
		return -EINVAL;
	*net = a;
	*prefixlen = (uint8_t)l;
	return 0;
}

bool cidr_has_host_bits(struct in_addr net, uint8_t prefixlen)
{
	return prefixlen < 32 && (ntohl(net.s_addr) & ~prefix_mask(prefixlen));
}

struct in_addr cidr_mask(struct in_addr net, uint8_t prefixlen)
{
	struct in_addr m = { .s_addr = net.s_addr & htonl(prefix_mask(prefixlen)) };

	return m;
}

void cidr_format(struct in_addr net, uint8_t prefixlen, char out[CIDR_STR_LEN])
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &net, a, sizeof(a));
	snprintf(out, CIDR_STR_LEN, "%s/%u", a, (unsigned int)prefixlen);
}
