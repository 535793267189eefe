/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_TOPOLOGY_H
#define TWILL_TOPOLOGY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgctl.h"

/*
 * The cluster as a Kubernetes NodeList (or Node) document with the twill.dev/ annotations,
 * exactly as `kubectl get nodes -o json` prints it.
 */
#define TOPO_NAME_MAX 254

struct topo_node {
	char name[TOPO_NAME_MAX];
	struct in_addr pod_net;          /* the node's pod CIDR, network address */
	uint8_t pod_prefixlen;
	uint8_t public_key[WG_KEY_LEN];
	union wg_endpoint public_addr;   /* ExternalIP, else InternalIP; port = wireguard-port */
	char private_network[TOPO_NAME_MAX]; /* "" when none */
	union wg_endpoint private_addr;  /* family 0 when none */
	uint16_t wg_port;
};

struct topology {
	struct topo_node *nodes;         /* sorted by name */
	size_t n_nodes;
	/*
	 * Nodes with a pod CIDR but no public key yet: never peers, but the agent still
	 * finds itself here before its key is published as the annotation.
	 */
	struct topo_node *unkeyed;
	size_t n_unkeyed;
};

/*
 * Nodes missing a key or pod CIDR are skipped with a warning. Invalid JSON, a bad or
 * overlapping pod CIDR, or a bad key fail the whole document with a message naming
 * the node and the field.
 */
int topology_parse(const char *json, size_t len, struct topology **out);
int topology_load_file(const char *path, struct topology **out);
void topology_free(struct topology *topo);
const struct topo_node *topology_find(const struct topology *topo, const char *name);
/* Also searches the nodes that have no public key yet. */
const struct topo_node *topology_find_any(const struct topology *topo, const char *name);

/* The endpoint self uses to reach peer: private when both share a non-empty private network. */
int topology_endpoint(const struct topo_node *self, const struct topo_node *peer,
		      union wg_endpoint *out, bool *is_private);

#endif
