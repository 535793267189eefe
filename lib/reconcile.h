/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_RECONCILE_H
#define TWILL_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>

#include "../bpf/twill_common.h"
#include "netlink.h"
#include "topology.h"
#include "wgctl.h"

/*
 * The difference between the peers and routes the topology asks for and what the
 * WireGuard device, the kernel and the BPF route map hold. Pure functions: the agent
 * applies the plans. Everything is sorted first, so 5000 nodes cost O(n log n).
 */
struct rc_peer {
	uint8_t public_key[WG_KEY_LEN];
	union wg_endpoint endpoint;      /* family 0 when the peer has no address */
	struct in_addr net;              /* its pod CIDR: the one allowed IP */
	uint8_t prefixlen;
	bool is_private;
	char name[TOPO_NAME_MAX];
};

/* Every keyed node but self (and any node that reuses self's key), sorted by key. */
int reconcile_desired(const struct topology *topo, const char *self_name,
		      const uint8_t self_public_key[WG_KEY_LEN], struct rc_peer **out,
		      size_t *count);

struct rc_peer_plan {
	struct wg_peer *peers;       /* removals first, then additions and updates */
	size_t n_peers;
	struct wg_allowed_ip *allowed_ips; /* storage the peers point into */
	size_t n_add, n_remove, n_update, n_unchanged;
};

/*
 * prev is what the last successful reconcile asked for (NULL after a start). A peer
 * whose endpoint in the topology did not change keeps whatever endpoint WireGuard
 * roamed to; without prev, the device's endpoint is compared instead.
 */
int reconcile_peers(const struct rc_peer *desired, size_t n_desired,
		    const struct rc_peer *prev, size_t n_prev,
		    const struct wg_device *actual, uint16_t keepalive,
		    struct rc_peer_plan *plan);
void rc_peer_plan_clear(struct rc_peer_plan *plan);

struct rc_route_plan {
	struct nl_route *replace;
	size_t n_replace;
	struct nl_route *remove;
	size_t n_remove;
	size_t n_unchanged;
};

/*
 * want carries the ifindex, prefsrc and mtu every remote pod CIDR route gets. Routes
 * on that device with the pod prefix length that no peer owns are removed.
 */
int reconcile_kernel_routes(const struct rc_peer *desired, size_t n_desired,
			    const struct nl_route *actual, size_t n_actual,
			    const struct nl_route *want, struct rc_route_plan *plan);
void rc_route_plan_clear(struct rc_route_plan *plan);

struct rc_bpf_plan {
	struct twill_route_key *set_keys;
	struct twill_route_value *set_values;
	size_t n_set;
	struct twill_route_key *remove;
	size_t n_remove;
	size_t n_unchanged;
};

int reconcile_bpf_routes(const struct rc_peer *desired, size_t n_desired,
			 const struct twill_route_key *keys, const struct twill_route_value *values,
			 size_t n_actual, int wg_ifindex, struct rc_bpf_plan *plan);
void rc_bpf_plan_clear(struct rc_bpf_plan *plan);

bool rc_endpoint_equal(const union wg_endpoint *a, const union wg_endpoint *b);

#endif
