/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_CNI_PLUGIN_H
#define TWILL_CNI_PLUGIN_H

#include <jansson.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#include "cni_result.h"

/* The pod's link-local gateway: answered by a permanent neighbour entry in the pod. */
#define CNI_GATEWAY "169.254.1.1"
#define CNI_HOST_VETH_PREFIX "tw"
/*
 * In the host veth's alias ("twill <network> path:kernel <ifname> <container id>"):
 * ADD gave the pod no BPF endpoint or program because of its bandwidth limits. ':' is
 * in no network name, interface name or container id, so the word cannot be forged.
 */
#define CNI_HOST_VETH_KERNEL_PATH "path:kernel"

/* What the runtime passes: the CNI_* environment and the configuration on stdin. */
struct cni_request {
	const char *command;
	const char *container_id;
	const char *netns;
	const char *ifname;
	const char *args;
	const char *path;
	const char *config;
	size_t config_len;
};

/*
 * Runs one verb. On success *result is the JSON to print, or NULL when the verb prints
 * nothing (DEL, GC, STATUS). On failure err holds the spec's code and a message.
 */
int cni_plugin_run(const struct cni_request *req, json_t **result, struct cni_error *err);

/* "tw" + 13 hex digits of FNV-1a 64 over container id and ifname. */
void cni_host_veth_name(const char *container_id, const char *ifname, char out[IF_NAMESIZE]);
/* The host veth's alias carries CNI_HOST_VETH_KERNEL_PATH: no BPF for its pod. */
bool cni_host_veth_kernel_path(int ifindex);

#endif
