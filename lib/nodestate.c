// SPDX-License-Identifier: Apache-2.0
/*
 * <state_dir>/node.json: what the agent tells the CNI plugin and twillctl. Written
 * atomically; read as untrusted input (a corrupt file must not crash the plugin).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomicfile.h"
#include "cidr.h"
#include "log.h"
#include "nodestate.h"
#include "statefile.h"

#define NODESTATE_FILE "node.json"
/* a few short fields: anything much larger is not ours */
#define NODESTATE_FILE_MAX (64 * 1024)

int nodestate_write(const char *state_dir, const struct nodestate *ns)
{
	char path[PATH_MAX], pod[CIDR_STR_LEN], cluster[CIDR_STR_LEN];
	char *text = NULL;
	json_t *root;
	int ret;

	ret = statefile_path(state_dir, NODESTATE_FILE, path);
	if (ret < 0)
		return ret;
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		log_err("node state: cannot create folder '%s': %s", state_dir, strerror(errno));
		return ret;
	}
	cidr_format(ns->pod_net, ns->pod_prefixlen, pod);
	cidr_format(ns->cluster_net, ns->cluster_prefixlen, cluster);
	root = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:b, s:b, s:I, s:s, s:s, s:I, "
			 "s:I, s:I, s:b}",
			 "nodeName", ns->node_name,
			 "podCIDR", pod,
			 "clusterCIDR", cluster,
			 "mtu", (json_int_t)ns->mtu,
			 "wgDevice", ns->wg_device,
			 "backend", ns->backend,
			 "listenPort", (json_int_t)ns->listen_port,
			 "bpfPinDir", ns->bpf_pin_dir,
			 "dataplaneLoaded", ns->dataplane_loaded,
			 "strict", ns->strict,
			 "lastReconcile", (json_int_t)ns->last_reconcile_unix,
			 "lastError", ns->last_error,
			 "lastRecovery", ns->last_recovery,
			 "lastRecoveryTime", (json_int_t)ns->last_recovery_unix,
			 "agentPid", (json_int_t)ns->agent_pid,
			 "agentStartTime", (json_int_t)ns->agent_start_unix,
			 "cleanExit", ns->clean_exit);
	if (!root)
		return -EINVAL;
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	ret = atomic_write_file(path, text, strlen(text), 0644);
	if (ret < 0)
		log_err("node state: cannot write '%s': %s", path, strerror(-ret));
	free(text);
	return ret;
}

static int copy_string(json_t *root, const char *key, char *dst, size_t size, const char *path)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_string(v) || strlen(json_string_value(v)) >= size) {
		log_err("node state '%s': %s is missing, not a string or too long", path, key);
		return -EINVAL;
	}
	strcpy(dst, json_string_value(v));
	return 0;
}

static int get_int(json_t *root, const char *key, json_int_t min, json_int_t max,
		   json_int_t *out, const char *path)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		log_err("node state '%s': %s is missing or not an integer in [%lld, %lld]", path,
			key, (long long)min, (long long)max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

static int get_bool(json_t *root, const char *key, bool *out, const char *path)
{
	json_t *v = json_object_get(root, key);

	if (!json_is_boolean(v)) {
		log_err("node state '%s': %s is missing or not a boolean", path, key);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int nodestate_read(const char *state_dir, struct nodestate *out)
{
	char path[PATH_MAX], pod[32], cluster[32];
	struct nodestate ns;
	json_int_t mtu, port, last, last_rec = 0, pid = 0, started = 0;
	json_t *root;
	int ret;

	ret = statefile_path(state_dir, NODESTATE_FILE, path);
	if (ret < 0)
		return ret;
	ret = statefile_read_json(path, NODESTATE_FILE_MAX, "node state", &root);
	if (ret < 0)
		return ret;
	ret = -EINVAL;
	memset(&ns, 0, sizeof(ns));
	if (copy_string(root, "nodeName", ns.node_name, sizeof(ns.node_name), path) < 0 ||
	    copy_string(root, "podCIDR", pod, sizeof(pod), path) < 0 ||
	    copy_string(root, "clusterCIDR", cluster, sizeof(cluster), path) < 0 ||
	    copy_string(root, "wgDevice", ns.wg_device, sizeof(ns.wg_device), path) < 0 ||
	    copy_string(root, "backend", ns.backend, sizeof(ns.backend), path) < 0 ||
	    copy_string(root, "bpfPinDir", ns.bpf_pin_dir, sizeof(ns.bpf_pin_dir), path) < 0 ||
	    copy_string(root, "lastError", ns.last_error, sizeof(ns.last_error), path) < 0 ||
	    get_int(root, "mtu", 0, 65535, &mtu, path) < 0 ||
	    get_int(root, "listenPort", 0, 65535, &port, path) < 0 ||
	    get_int(root, "lastReconcile", 0, INT64_MAX, &last, path) < 0 ||
	    get_bool(root, "dataplaneLoaded", &ns.dataplane_loaded, path) < 0 ||
	    get_bool(root, "strict", &ns.strict, path) < 0)
		goto cleanup;
	if (cidr_parse(pod, &ns.pod_net, &ns.pod_prefixlen) < 0) {
		log_err("node state '%s': podCIDR '%s' is not an IPv4 CIDR", path, pod);
		goto cleanup;
	}
	if (cidr_parse(cluster, &ns.cluster_net, &ns.cluster_prefixlen) < 0) {
		log_err("node state '%s': clusterCIDR '%s' is not an IPv4 CIDR", path, cluster);
		goto cleanup;
	}
	/* written by newer agents only: absent is "nothing recovered" */
	if (json_object_get(root, "lastRecovery") &&
	    (copy_string(root, "lastRecovery", ns.last_recovery, sizeof(ns.last_recovery),
			 path) < 0 ||
	     get_int(root, "lastRecoveryTime", 0, INT64_MAX, &last_rec, path) < 0))
		goto cleanup;
	if (json_object_get(root, "agentPid") &&
	    (get_int(root, "agentPid", 0, INT32_MAX, &pid, path) < 0 ||
	     get_int(root, "agentStartTime", 0, INT64_MAX, &started, path) < 0 ||
	     get_bool(root, "cleanExit", &ns.clean_exit, path) < 0))
		goto cleanup;
	ns.agent_pid = (int)pid;
	ns.agent_start_unix = started;
	ns.mtu = (unsigned int)mtu;
	ns.listen_port = (uint16_t)port;
	ns.last_reconcile_unix = last;
	ns.last_recovery_unix = last_rec;
	*out = ns;
	ret = 0;
cleanup:
	json_decref(root);
	return ret;
}

int nodestate_remove(const char *state_dir)
{
	return statefile_remove(state_dir, NODESTATE_FILE);
}
