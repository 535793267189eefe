/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_MTU_H
#define TWILL_MTU_H

#include <stdbool.h>
#include <stddef.h>

#include "wgctl.h"

#define MTU_WG_OVERHEAD_V4 60
#define MTU_WG_OVERHEAD_V6 80
/* When no endpoint tells us the underlay: what wg-quick assumes. */
#define MTU_FALLBACK 1420

/* Underlay MTU minus WireGuard's overhead: 60 over IPv4, 80 when any endpoint is IPv6. */
unsigned int mtu_wireguard(unsigned int underlay_mtu, bool any_ipv6);

/*
 * Route lookup (RTM_GETROUTE) for the endpoint's address in the current network
 * namespace: the route's MTU metric when set, else the output link's MTU.
 */
int mtu_route_lookup(const union wg_endpoint *ep, unsigned int *mtu, int *ifindex);

struct mtu_result {
	unsigned int underlay_mtu;   /* smallest over the endpoints; 0 when none resolved */
	unsigned int wg_mtu;         /* what the device and pods use */
	bool any_ipv6;
	int *ifindexes;              /* distinct output links, malloc'ed */
	size_t n_ifindexes;
	size_t n_unreachable;        /* endpoints with no route, or whose lookup failed */
	int lookup_error;            /* the first failure other than "unreachable", -errno */
	char lookup_error_endpoint[INET6_ADDRSTRLEN];
};

/*
 * Looks every endpoint up (one netlink socket); wg_mtu falls back to MTU_FALLBACK. An
 * endpoint whose lookup fails counts as unreachable; only a failure of the socket or of
 * a link's MTU read is returned.
 */
int mtu_for_endpoints(const union wg_endpoint *eps, size_t n, struct mtu_result *out);
void mtu_result_clear(struct mtu_result *r);

#endif
