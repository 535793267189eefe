// SPDX-License-Identifier: Apache-2.0
/*
 * The topology parser on arbitrary bytes. Beyond "no crash", a document that parses
 * must hold the promises the agent relies on: nodes sorted by name, names unique and
 * non-empty, every pod CIDR a /24 without host bits and unique across all nodes, and
 * the peer diff of any node against the rest well formed.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reconcile.h"
#include "topology.h"

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-topology: broken promise: %s\n", what);
		abort();
	}
}

static void check_nodes(const struct topo_node *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct topo_node *node = &nodes[i];

		check(memchr(node->name, '\0', sizeof(node->name)) != NULL, "name not terminated");
		check(node->name[0] != '\0', "empty name");
		check(i == 0 || strcmp(nodes[i - 1].name, node->name) < 0, "names not sorted or repeated");
		check(node->pod_prefixlen == 24, "pod CIDR not a /24");
		check((ntohl(node->pod_net.s_addr) & 0xff) == 0, "pod CIDR has host bits");
		check(node->wg_port != 0, "port 0");
		check(memchr(node->private_network, '\0', sizeof(node->private_network)) != NULL,
		      "private network not terminated");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct topology *t = NULL;
	struct rc_peer *peers = NULL;
	size_t n = 0;

	log_set_stderr(0);
	if (topology_parse((const char *)data, size, &t) < 0)
		return 0;
	check_nodes(t->nodes, t->n_nodes);
	check_nodes(t->unkeyed, t->n_unkeyed);
	for (size_t i = 0; i < t->n_nodes; i++)
		for (size_t j = 0; j < t->n_unkeyed; j++)
			check(strcmp(t->nodes[i].name, t->unkeyed[j].name) != 0, "name both keyed and unkeyed");
	if (t->n_nodes) {
		const struct topo_node *self = &t->nodes[0];

		check(topology_find(t, self->name) == self, "find misses a node");
		check(reconcile_desired(t, self->name, self->public_key, &peers, &n) == 0, "desired failed");
		check(n < t->n_nodes, "self among its peers");
		for (size_t i = 0; i < n; i++) {
			check(strcmp(peers[i].name, self->name) != 0, "self among its peers");
			check(i == 0 || memcmp(peers[i - 1].public_key, peers[i].public_key, 32) < 0,
			      "peers not sorted by key or key repeated");
		}
		free(peers);
	}
	topology_free(t);
	return 0;
}
