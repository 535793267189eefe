/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_DATAPATH_H
#define TWILL_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>

#include "../bpf/twill_common.h"

/*
 * The BPF dataplane: the only module that includes the generated skeleton.
 * The agent loads and pins it; the CNI plugin and twillctl open the pinned objects.
 */
struct datapath;

/* Loads the programs, reusing maps already pinned in pin_dir so a restart keeps state. */
int datapath_load_and_pin(const char *pin_dir, struct datapath **out);
/* Opens what the agent pinned; -ENOENT when no dataplane is loaded. */
int datapath_open_pinned(const char *pin_dir, struct datapath **out);
void datapath_close(struct datapath *dp);
/* Removes the pins (the agent's explicit cleanup). */
int datapath_unpin(const char *pin_dir);

int datapath_attach_pod(struct datapath *dp, int host_ifindex);   /* TC ingress */
int datapath_attach_wg(struct datapath *dp, int wg_ifindex);      /* TC ingress */
int datapath_attach_guard(struct datapath *dp, int underlay_ifindex); /* TC egress */
/* -ENOENT when no twill filter is there, -ENODEV when the link is gone. */
int datapath_detach(int ifindex, bool egress);
/* Which twill program (if any) is attached there: name copied into prog_name. */
int datapath_query_attached(int ifindex, bool egress, char *prog_name, size_t len);

int datapath_config_set(struct datapath *dp, const struct twill_config *cfg);
int datapath_config_get(struct datapath *dp, struct twill_config *cfg);

/* value->since is not taken: a new key is stamped now, an existing one keeps its time. */
int datapath_route_set(struct datapath *dp, const struct twill_route_key *key,
		       const struct twill_route_value *value);
int datapath_route_delete(struct datapath *dp, const struct twill_route_key *key);
int datapath_route_list(struct datapath *dp, struct twill_route_key **keys,
			struct twill_route_value **values, size_t *count);

int datapath_endpoint_set(struct datapath *dp, const struct twill_endpoint_key *key,
			  const struct twill_endpoint_value *value);
int datapath_endpoint_delete(struct datapath *dp, const struct twill_endpoint_key *key);
int datapath_endpoint_list(struct datapath *dp, struct twill_endpoint_key **keys,
			   struct twill_endpoint_value **values, size_t *count);

/* Sums the per-CPU counters: out has TWILL_R_MAX entries. */
int datapath_counters_read(struct datapath *dp, struct twill_counter *out);

/*
 * The *_list functions allocate *keys and *values with malloc (NULL when count is 0):
 * the caller frees both.
 */
/* What the pod program would do with addr: longest-prefix route (matched may be NULL). */
int datapath_route_lookup(struct datapath *dp, __u32 addr_be, struct twill_route_key *matched,
			  struct twill_route_value *value);
int datapath_endpoint_lookup(struct datapath *dp, __u32 addr_be, struct twill_endpoint_value *value);
/* Re-attaches the pod program to the host veth of every endpoint (after an upgrade). */
int datapath_attach_endpoints(struct datapath *dp);
/*
 * CNI ADD in one call: registers the endpoint, then attaches the pod program to the host
 * veth (rolling the endpoint back if the attach fails). pod_mac is the pod interface's,
 * host_mac the host veth's.
 */
int datapath_pod_add(struct datapath *dp, __u32 pod_addr_be, int host_ifindex,
		     const __u8 pod_mac[6], const __u8 host_mac[6]);
/*
 * CNI DEL: removes the endpoint only if it still points at host_ifindex (a stale DEL
 * must not unregister a newer pod that reuses the address; host_ifindex 0 removes it
 * regardless) and detaches from the veth if it still exists. Idempotent: 0 when
 * nothing was left to remove.
 */
int datapath_pod_del(struct datapath *dp, __u32 pod_addr_be, int host_ifindex);
/* fd of a program (TWILL_PROG_*), owned by dp; for tests (BPF_PROG_TEST_RUN). */
int datapath_prog_fd(const struct datapath *dp, const char *prog_name);
/*
 * Whether the loaded programs look up conntrack so NATed connections (Kubernetes
 * Services) take the host stack: false when the kernel lacked the kfuncs at load time
 * (nf_conntrack not loaded) or TWILL_NO_CONNTRACK was set. -ENOENT when unknown.
 */
int datapath_services_active(struct datapath *dp, bool *active);
/* Stable lower-case name of a reason ("to_wireguard", ...), "unknown" when out of range. */
const char *datapath_reason_name(unsigned int reason);

#endif
