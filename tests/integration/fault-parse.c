// SPDX-License-Identifier: Apache-2.0
/*
 * Test driver for the bad-input table: runs one of Twill's file parsers the way the
 * agent does and reports through lib/log on stderr. Not installed; tests only.
 *   fault-parse topology FILE     topology_load_file
 *   fault-parse nodestate DIR     nodestate_read (DIR/node.json)
 * Exit 0 when the input is accepted, 1 when it is rejected.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "nodestate.h"
#include "topology.h"

int main(int argc, char **argv)
{
	struct topology *topo = NULL;
	struct nodestate ns;
	int r;

	log_set_ident("fault-parse");
	if (argc != 3) {
		fprintf(stderr, "usage: fault-parse topology FILE | nodestate DIR\n");
		return 2;
	}
	if (!strcmp(argv[1], "topology")) {
		r = topology_load_file(argv[2], &topo);
		if (r == 0)
			printf("accepted: %zu nodes, %zu without key\n", topo->n_nodes, topo->n_unkeyed);
		topology_free(topo);
	} else if (!strcmp(argv[1], "nodestate")) {
		r = nodestate_read(argv[2], &ns);
		if (r == 0)
			printf("accepted: node '%s'\n", ns.node_name);
	} else {
		fprintf(stderr, "fault-parse: unknown parser '%s'\n", argv[1]);
		return 2;
	}
	if (r < 0)
		fprintf(stderr, "fault-parse: rejected: %s\n", strerror(-r));
	return r < 0 ? 1 : 0;
}
