// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: <state_dir>/node.json, the node state the agent writes and the CNI
 * plugin and twillctl read. nodestate.h reads only from a folder, so each input is
 * written to node.json in a private folder (tmpfs when there is one) and read back.
 * Beyond "no crash": a state that reads back has terminated strings and a sane prefix.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "nodestate.h"

static char dir[64];
static char file[96];

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-nodestate: broken promise: %s\n", what);
		abort();
	}
}

static void remove_dir(void)
{
	unlink(file);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(0);
	strcpy(dir, "/dev/shm/ip-fuzz-nodestate-XXXXXX");
	if (!mkdtemp(dir)) {
		strcpy(dir, "/tmp/ip-fuzz-nodestate-XXXXXX");
		check(mkdtemp(dir) != NULL, "cannot make a folder");
	}
	snprintf(file, sizeof(file), "%s/node.json", dir);
	atexit(remove_dir);
	return 0;
}

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nodestate ns;
	int fd, r;

	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	check(fd >= 0, "cannot write node.json");
	check(size == 0 || write(fd, data, size) == (ssize_t)size, "short write");
	close(fd);
	memset(&ns, 0xa5, sizeof(ns));
	r = nodestate_read(dir, &ns);
	check(r <= 0, "positive return");
	if (r == 0) {
		check(TERMINATED(ns.node_name) && TERMINATED(ns.wg_device) &&
		      TERMINATED(ns.backend) && TERMINATED(ns.bpf_pin_dir) &&
		      TERMINATED(ns.last_error), "unterminated string");
		check(ns.pod_prefixlen <= 32 && ns.cluster_prefixlen <= 32, "prefix out of range");
		check(ns.mtu <= 65535, "mtu out of range");
	}
	unlink(file);
	return 0;
}
