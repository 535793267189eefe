// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the cluster topology, a Kubernetes NodeList or Node document. It
 * comes from the API server or a file an operator edits, so the agent must survive any
 * bytes. Beyond "no crash": what parses keeps the documented promises (nodes sorted by
 * name, pod CIDRs that do not overlap, every node findable) and endpoint selection works
 * on any pair of parsed nodes; names are unique (sorted strictly), every pod CIDR is a
 * clean /24, and the desired peers of the first node exclude it and are keyed uniquely.
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

static uint32_t mask(unsigned int prefixlen)
{
	return prefixlen ? ~0u << (32 - prefixlen) : 0;
}

static int overlap(const struct topo_node *a, const struct topo_node *b)
{
	unsigned int p = a->pod_prefixlen < b->pod_prefixlen ? a->pod_prefixlen : b->pod_prefixlen;

	return ((ntohl(a->pod_net.s_addr) ^ ntohl(b->pod_net.s_addr)) & mask(p)) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct topology *t = NULL;
	int r;

	r = topology_parse((const char *)data, size, &t);
	check(r <= 0, "positive return");
	check((r == 0) == (t != NULL), "*out set on failure or unset on success");
	if (r < 0)
		return 0;
	check(t->n_nodes == 0 || t->nodes, "nodes counted but absent");
	for (size_t i = 0; i < t->n_nodes; i++) {
		const struct topo_node *n = &t->nodes[i];

		check(memchr(n->name, '\0', sizeof(n->name)) && n->name[0], "bad node name");
		check(n->pod_prefixlen <= 32, "prefix length out of range");
		check(i == 0 || strcmp(t->nodes[i - 1].name, n->name) < 0, "nodes not sorted or repeated");
		check(n->pod_prefixlen == 24 && (ntohl(n->pod_net.s_addr) & 0xff) == 0,
		      "pod CIDR not a clean /24");
		check(topology_find(t, n->name) != NULL, "a parsed node is not found");
		/* bounded: the pairs of the first few nodes are enough to reach every branch */
		for (size_t j = 0; j < i && j < 8; j++) {
			union wg_endpoint ep;
			bool is_private;

			check(!overlap(&t->nodes[j], n), "overlapping pod CIDRs accepted");
			(void)topology_endpoint(&t->nodes[j], n, &ep, &is_private);
			(void)topology_endpoint(n, &t->nodes[j], &ep, &is_private);
		}
	}
	for (size_t i = 0; i < t->n_unkeyed; i++) {
		check(topology_find_any(t, t->unkeyed[i].name) != NULL, "an unkeyed node is not found");
		check(topology_find(t, t->unkeyed[i].name) == NULL, "a name both keyed and unkeyed");
	}
	if (t->n_nodes) {
		const struct topo_node *self = &t->nodes[0];
		struct rc_peer *peers = NULL;
		size_t n = 0;

		check(reconcile_desired(t, self->name, self->public_key, &peers, &n) == 0,
		      "no desired peers for a parsed node");
		for (size_t i = 0; i < n; i++) {
			check(strcmp(peers[i].name, self->name) != 0, "a node is its own peer");
			check(i == 0 || memcmp(peers[i - 1].public_key, peers[i].public_key, WG_KEY_LEN) < 0,
			      "peers not sorted by key or a key repeated");
		}
		free(peers);
	}
	topology_free(t);
	return 0;
}
