// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: <state_dir>/node.json, the node state the agent writes and the CNI
 * plugin and twillctl read. nodestate.h reads only from a folder, so each input is
 * written to node.json in a private folder (tmpfs when there is one) and read back.
 * Beyond "no crash": a state that reads back has terminated strings and a sane prefix.
 */
#include <string.h>

#include "fuzz-statedir.h"
#include "log.h"
#include "nodestate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(0);
	fuzz_statedir_init("fuzz-nodestate", "node.json");
	return 0;
}

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nodestate ns;
	int r;

	fuzz_statedir_write(data, size);
	memset(&ns, 0xa5, sizeof(ns));
	r = nodestate_read(fuzz_dir, &ns);
	check(r <= 0, "positive return");
	if (r == 0) {
		check(TERMINATED(ns.node_name) && TERMINATED(ns.wg_device) &&
		      TERMINATED(ns.backend) && TERMINATED(ns.bpf_pin_dir) &&
		      TERMINATED(ns.last_error), "unterminated string");
		check(ns.pod_prefixlen <= 32 && ns.cluster_prefixlen <= 32, "prefix out of range");
		check(ns.mtu <= 65535, "mtu out of range");
	}
	unlink(fuzz_file);
	return 0;
}
