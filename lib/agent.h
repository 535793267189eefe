/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_AGENT_H
#define TWILL_AGENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topology.h"
#include "wgctl.h"

/* The node agent: keys, WireGuard device, peers, routes, BPF maps, CNI config. */
struct agent_config {
	/* the topology source: a file, or the API server (in-cluster or a kubeconfig) */
	const char *topology_path;
	bool kube_in_cluster;
	const char *kubeconfig;
	char node_name[TOPO_NAME_MAX];
	const char *state_dir;
	const char *cni_conf_dir;
	const char *bpf_pin_dir;
	const char *wg_device;
	enum wg_backend backend;
	int listen_port;               /* -1: the node's twill.dev/wireguard-port */
	uint16_t keepalive;            /* seconds, 0 = off */
	struct in_addr cluster_net;
	uint8_t cluster_prefixlen;
	bool no_bpf;
	bool strict;
	const char *metrics_addr;      /* NULL: no endpoint */
	unsigned int resync_sec;       /* 0: no periodic resync */
	const char *log_file;          /* handed to the CNI plugin through the conflist */
};

struct agent_stats {
	size_t nodes, peers;
	size_t peers_added, peers_removed, peers_updated, peers_unchanged;
	size_t routes_changed, routes_removed;
	size_t bpf_changed, bpf_removed;
	unsigned int mtu;
	bool dataplane_loaded;
	double parse_ms, diff_ms, apply_ms, total_ms;
	/* parts of apply_ms (the read-backs included) */
	double device_ms, peers_ms, mtu_ms, routes_ms, bpf_ms;
};

struct agent;

/* Loads or creates the key; touches no device yet. */
int agent_new(const struct agent_config *cfg, struct agent **out);
/* Records the clean exit in node.json (once this agent wrote it); the dataplane stays. */
void agent_free(struct agent *a);
/* One full reconcile; on a bad topology the last good state stays in force. */
int agent_reconcile(struct agent *a, struct agent_stats *stats);
/* From the API server: waits up to timeout_ms for the first node list. */
int agent_wait_topology(struct agent *a, int timeout_ms);
/* Reconciles, then on topology changes, SIGHUP and the resync timer until SIGTERM or SIGINT. */
int agent_run(struct agent *a);

/* The node's public key, creating the private key on first use. */
int agent_public_key(const char *state_dir, char out[WG_KEY_B64_LEN]);
/* Removes the device, routes, attached programs, pins, conflist and node state; keeps the key. */
int agent_cleanup(const struct agent_config *cfg);

#endif
