/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_INSPECT_H
#define TWILL_INSPECT_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../bpf/twill_common.h"
#include "ipam.h"
#include "netlink.h"
#include "nodestate.h"
#include "topology.h"
#include "wgctl.h"

/*
 * The node's view for twillctl, in two halves: inspect_collect() reads every real
 * source (pinned maps, the WireGuard device, rtnetlink, the state files) into a plain
 * snapshot without needing the agent; everything else is a pure function of that
 * snapshot, so the analysis is tested with snapshots built by hand.
 */

#define INSPECT_STALE_HANDSHAKE_SEC 180
#define INSPECT_VETH_PREFIX "tw"
#define INSPECT_TEXT_MAX 256

struct inspect_index;

struct inspect_link {
	struct nl_link_info info;
	char prog_ingress[64];   /* twill program attached at TC ingress, "" when none */
	char prog_egress[64];
	bool kernel_path;        /* pod veth the CNI left to the kernel (bandwidth limits) */
};

struct inspect_snapshot {
	int64_t now;                         /* unix seconds the snapshot was taken */
	char network[64];                    /* IPAM network name */

	bool have_state;                     /* <state_dir>/node.json was read */
	struct nodestate state;

	char pin_dir[PATH_MAX];
	bool dp_loaded;                      /* the pinned maps could be opened */
	int dp_services;                     /* NATed connections take the stack: 1, 0, -1 unknown */
	bool have_config;
	struct twill_config config;
	struct twill_route_key *route_keys;
	struct twill_route_value *route_values;
	size_t n_routes;
	struct twill_endpoint_key *endpoint_keys;
	struct twill_endpoint_value *endpoint_values;
	size_t n_endpoints;
	bool have_counters;
	struct twill_counter counters[TWILL_R_MAX];

	char wg_ifname[IF_NAMESIZE];
	struct wg_device *wg;                /* NULL when the device could not be read */
	char wg_backend[16];

	struct nl_route *kroutes;            /* main-table IPv4 routes, every device */
	size_t n_kroutes;
	struct inspect_link *links;
	size_t n_links;

	bool have_ipam;
	struct ipam_allocation *allocs;
	size_t n_allocs;
	char (*alloc_veths)[IF_NAMESIZE];    /* host veth name per allocation, or NULL */

	struct topology *topo;               /* NULL without --topology */

	struct inspect_index *index;         /* sorted lookups, NULL: linear scans */
};

struct inspect_options {
	const char *state_dir;
	const char *pin_dir;                 /* NULL: from node.json, else the default */
	const char *wg_device;               /* NULL: from node.json, else "twill0" */
	const char *topology_path;           /* NULL: none */
	const char *network;                 /* NULL: "twill" */
};

/*
 * Never fails because a source is missing (the agent may be down): that is a health
 * problem. Fails when it cannot look at all: the state folder is missing, not a folder
 * or unreadable (-ENOENT, -ENOTDIR, -EACCES), pinned maps exist but bpf() refuses to
 * open them (-EPERM, -EACCES: not root), or -ENOMEM.
 */
int inspect_collect(const struct inspect_options *opt, struct inspect_snapshot **out);
/* 0 when the state folder (opt->state_dir or the default) can be read, else -errno. */
int inspect_state_dir_check(const struct inspect_options *opt);
void inspect_snapshot_free(struct inspect_snapshot *s);
/* Re-reads only the per-CPU counters (for --watch). */
int inspect_read_counters(const char *pin_dir, struct twill_counter counters[TWILL_R_MAX]);
/* The public key from <state_dir>/private.key, else from the device; never the private key. */
int inspect_public_key(const struct inspect_options *opt, uint8_t pub[WG_KEY_LEN]);

/* Builds (or rebuilds) s->index: same answers, in log time. Call after filling s. */
int inspect_snapshot_index(struct inspect_snapshot *s);
void inspect_index_free(struct inspect_index *ix);

/* Names of enum twill_reason: "TWILL_R_DROP_NO_ROUTE", "drop_no_route", a sentence. */
const char *inspect_reason_enum_name(int reason);
const char *inspect_reason_name(int reason);
const char *inspect_reason_description(int reason);
/* Per-second rate between two reads of a counter; 0 when it went back (a reset). */
double inspect_rate(uint64_t prev, uint64_t cur, double secs);

const struct inspect_link *inspect_link_by_index(const struct inspect_snapshot *s, int ifindex);
const struct inspect_link *inspect_link_by_name(const struct inspect_snapshot *s, const char *name);
int inspect_wg_ifindex(const struct inspect_snapshot *s);   /* 0 when unknown */
/* The link's name, else "ifindex N" written into buf. */
const char *inspect_link_name(const struct inspect_snapshot *s, int ifindex, char *buf, size_t len);

struct inspect_peer_row {
	const struct wg_peer *peer;
	char node[TOPO_NAME_MAX];            /* "" when unknown */
	char path[TOPO_NAME_MAX];            /* private network name, "private" or "public" */
	bool is_private;
	int64_t handshake_age;               /* seconds, -1 when never */
	int64_t configured_age;              /* seconds since the peer was configured, -1 unknown */
	bool stale;                          /* no handshake for 180 s, or none in 180 s configured */
	bool pending;                        /* no handshake yet, configured under 180 s ago */
};
int inspect_peers(const struct inspect_snapshot *s, struct inspect_peer_row **out,
		  size_t *count);

struct inspect_route_row {
	struct in_addr net;
	uint8_t prefixlen;
	bool in_bpf;
	struct twill_route_value bpf;
	bool in_kernel;                      /* a main-table route covers the CIDR */
	struct nl_route kernel;              /* the most specific one */
	const struct wg_peer *peer;          /* whose allowed IPs hold exactly this CIDR */
	char node[TOPO_NAME_MAX];
	char problem[INSPECT_TEXT_MAX];      /* "" when the three sources agree */
};
int inspect_routes(const struct inspect_snapshot *s, struct inspect_route_row **out,
		   size_t *count);

struct inspect_pod_row {
	const struct ipam_allocation *alloc; /* NULL when no allocation holds the address */
	struct in_addr addr;
	bool in_endpoints;
	struct twill_endpoint_value endpoint;
	const struct inspect_link *veth;     /* host veth, NULL when none */
	char problem[INSPECT_TEXT_MAX];      /* a mismatch: unhealthy */
	/* works, but through the kernel: no endpoint entry or no program on the veth
	 * (none for a veth whose pod takes the kernel path by design) */
	char warning[INSPECT_TEXT_MAX];
};
int inspect_pods(const struct inspect_snapshot *s, struct inspect_pod_row **out,
		 size_t *count);

#define INSPECT_MAX_STEPS 8

enum inspect_addr_kind {
	INSPECT_ADDR_LOCAL_POD,      /* in the endpoint map or allocated here */
	INSPECT_ADDR_LOCAL_CIDR,     /* in this node's pod CIDR, but no such pod */
	INSPECT_ADDR_REMOTE_POD,     /* in another node's pod CIDR (route map or peer) */
	INSPECT_ADDR_CLUSTER,        /* in the cluster range, no node owns it */
	INSPECT_ADDR_OUTSIDE,
};

struct inspect_trace {
	struct in_addr src, dst;
	enum inspect_addr_kind src_kind, dst_kind;
	char program[32];                    /* twill program that sees it, "" when none */
	char program_ifname[IF_NAMESIZE];
	char match[16];                      /* "endpoint", "route", "none" */
	struct in_addr match_net;
	uint8_t match_prefixlen;
	int reason;                          /* enum twill_reason, -1 when no program */
	char verdict[32];                    /* "redirect", "drop", "kernel stack" */
	bool wg_drop;                        /* dropped by WireGuard: no peer holds dst */
	char out_ifname[IF_NAMESIZE];        /* where it leaves, "" when dropped */
	bool has_peer;
	uint8_t peer_key[WG_KEY_LEN];
	char peer_node[TOPO_NAME_MAX];
	union wg_endpoint peer_endpoint;
	bool is_private;
	char path[TOPO_NAME_MAX];            /* private network name or "public", "" */
	unsigned int mtu;                    /* of the device it leaves by, 0 unknown */
	unsigned int pod_mtu;
	char steps[INSPECT_MAX_STEPS][INSPECT_TEXT_MAX];
	size_t n_steps;
};
int inspect_trace(const struct inspect_snapshot *s, struct in_addr src, struct in_addr dst,
		  struct inspect_trace *out);

#define INSPECT_MAX_PROBLEMS 32

struct inspect_health {
	bool healthy;
	size_t peers_up, peers_total;
	size_t peers_pending;                /* no handshake yet, configured under 180 s ago */
	size_t pods;
	char problems[INSPECT_MAX_PROBLEMS][INSPECT_TEXT_MAX];
	size_t n_problems;
	char warnings[INSPECT_MAX_PROBLEMS][INSPECT_TEXT_MAX];  /* shown, still healthy */
	size_t n_warnings;
};
int inspect_health(const struct inspect_snapshot *s, struct inspect_health *out);

const char *inspect_addr_kind_name(enum inspect_addr_kind kind);
/* "a.b.c.d:port" or "(none)". */
void inspect_endpoint_str(const union wg_endpoint *ep, char *buf, size_t len);

#endif
