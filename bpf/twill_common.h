/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one definition of every map key and value shared by the BPF programs and by
 * lib/. Byte order is stated per field; padding is explicit so the layout is the
 * same for clang -target bpf and for gcc on the host.
 */
#ifndef TWILL_COMMON_H
#define TWILL_COMMON_H

#include <linux/types.h>

/* Names under the pin folder (bpffs names are global, hence the prefix). */
#define TWILL_MAP_ROUTES    "twill_routes"
#define TWILL_MAP_ENDPOINTS "twill_endpoints"
#define TWILL_MAP_CONFIG    "twill_config"
#define TWILL_MAP_COUNTERS  "twill_counters"
#define TWILL_PROG_POD      "twill_pod_ingress"
#define TWILL_PROG_WG       "twill_wg_ingress"
#define TWILL_PROG_GUARD    "twill_underlay_guard"

#define TWILL_MAX_ROUTES    65536
#define TWILL_MAX_ENDPOINTS 1024

/* LPM key: a remote node's pod CIDR. */
struct twill_route_key {
	__u32 prefixlen;  /* host order, 0..32 */
	__u32 addr;       /* network order */
};

struct twill_route_value {
	__u32 ifindex;    /* host order: the WireGuard device */
	__u32 node_addr;  /* network order: the peer endpoint address (for trace output) */
	__u32 flags;      /* TWILL_ROUTE_F_* */
	/*
	 * host order: unix time (seconds) this CIDR was first routed, i.e. its peer was
	 * configured; 0 unknown. Stamped by lib/datapath.c, never read by the programs.
	 */
	__u32 since;
};

#define TWILL_ROUTE_F_PRIVATE (1u << 0) /* peer reached over the private network */

/* Key: a local pod's IPv4 address, network order. */
struct twill_endpoint_key {
	__u32 addr;
};

struct twill_endpoint_value {
	__u32 host_ifindex;  /* host order: host end of the pod's veth */
	__u8 pod_mac[6];     /* MAC of the pod's interface (destination on delivery) */
	__u8 host_mac[6];    /* MAC of the host veth (source on delivery) */
	__u32 flags;
};

/* Single-entry array, key 0. */
struct twill_config {
	__u32 cluster_addr;      /* network order: the cluster pod range */
	__u32 cluster_prefixlen; /* host order */
	__u32 node_addr;         /* network order: this node's pod CIDR */
	__u32 node_prefixlen;    /* host order */
	__u32 wg_ifindex;        /* host order */
	__u32 strict;            /* 1: drop cluster traffic with no route instead of passing it */
	__u32 flags;             /* TWILL_CFG_F_* */
	__u32 pad;
};

/*
 * Deliver to local pods with bpf_redirect() (through the host veth's transmit path)
 * instead of bpf_redirect_peer() (straight into the pod's namespace, the default).
 * An escape hatch for kernels or devices where the peer redirect misbehaves.
 */
#define TWILL_CFG_F_NO_REDIRECT_PEER (1u << 0)

/*
 * A cluster range with prefix length 0 means "not configured": nothing is inside it,
 * so a zeroed configuration map never drops anything.
 */

/* TC filter identity: fixed so a re-attach replaces the filter instead of stacking one. */
#define TWILL_TC_HANDLE   0x7477
#define TWILL_TC_PRIORITY 1

/* Per-CPU array indexed by reason. */
enum twill_reason {
	TWILL_R_TO_WIREGUARD = 0,   /* pod -> remote node's /24, redirected into WireGuard */
	TWILL_R_TO_LOCAL_POD,       /* pod -> pod on this node, veth to veth */
	TWILL_R_WG_TO_POD,          /* decrypted packet delivered straight into a pod */
	TWILL_R_PASS_STACK,         /* handed to the kernel stack (node, outside the cluster) */
	TWILL_R_DROP_NO_ROUTE,      /* strict mode: cluster destination with no route entry */
	TWILL_R_DROP_ESCAPED,       /* underlay guard: pod cluster traffic outside the tunnel */
	TWILL_R_DROP_MALFORMED,     /* truncated or unparsable header */
	TWILL_R_DROP_REDIRECT,      /* redirect or header rewrite failed */
	TWILL_R_PASS_NAT,           /* connection NATed by the host (Services): handed to the stack */
	TWILL_R_MAX,
};

struct twill_counter {
	__u64 packets;
	__u64 bytes;
};

#endif
