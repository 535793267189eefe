/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_NODESTATE_H
#define TWILL_NODESTATE_H

#include <net/if.h>
#include <netinet/in.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * What the agent tells the CNI plugin and twillctl about this node:
 * <state_dir>/node.json, replaced atomically on every reconcile.
 */
struct nodestate {
	char node_name[254];
	struct in_addr pod_net;
	uint8_t pod_prefixlen;
	struct in_addr cluster_net;
	uint8_t cluster_prefixlen;
	unsigned int mtu;
	char wg_device[IF_NAMESIZE];
	char backend[16];           /* "kernel" or "userspace" */
	uint16_t listen_port;
	char bpf_pin_dir[PATH_MAX];
	bool dataplane_loaded;
	bool strict;
	int64_t last_reconcile_unix;
	char last_error[512];       /* "" when the last reconcile succeeded */
	char last_recovery[256];    /* what the agent last repaired by itself; "" when nothing */
	int64_t last_recovery_unix;
	/* the agent that wrote this: pid 0 when unknown (older agents, the plugin's tests) */
	int agent_pid;
	int64_t agent_start_unix;
	bool clean_exit;            /* that agent stopped on SIGTERM or finished --once */
};

int nodestate_write(const char *state_dir, const struct nodestate *ns);
int nodestate_read(const char *state_dir, struct nodestate *out);   /* -ENOENT when absent */

int nodestate_remove(const char *state_dir);  /* 0 when absent */

#endif
