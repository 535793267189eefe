/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_CIDR_H
#define TWILL_CIDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* "255.255.255.255/32" and the terminator; one spare so gcc sees a uint8_t fits */
#define CIDR_STR_LEN (INET_ADDRSTRLEN + 4)

/*
 * Strict IPv4 "a.b.c.d/N", N 0..32 in plain decimal (no sign, space or leading zero).
 * Host bits are kept: callers decide with cidr_has_host_bits()/cidr_mask().
 * -EAFNOSUPPORT for an IPv6 CIDR, -EINVAL for anything else that is not a CIDR.
 */
int cidr_parse(const char *text, struct in_addr *net, uint8_t *prefixlen);
bool cidr_has_host_bits(struct in_addr net, uint8_t prefixlen);
struct in_addr cidr_mask(struct in_addr net, uint8_t prefixlen);
void cidr_format(struct in_addr net, uint8_t prefixlen, char out[CIDR_STR_LEN]);

#endif
