/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_IPAM_H
#define TWILL_IPAM_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

/* One network's address store for the node's /24: <state_dir>/ipam/<network>/. */
struct ipam;

struct ipam_allocation {
	struct in_addr addr;
	char container_id[256];
	char ifname[16];
};

int ipam_open(const char *state_dir, const char *network, const char *pod_cidr,
	      struct ipam **out);
void ipam_close(struct ipam *ipam);

/* Same container id + ifname twice returns the same address. */
int ipam_allocate(struct ipam *ipam, const char *container_id, const char *ifname,
		  struct in_addr *out);
/* Releasing an unknown attachment returns -ENOENT and changes nothing. */
int ipam_release(struct ipam *ipam, const char *container_id, const char *ifname,
		 struct in_addr *released);
int ipam_find(struct ipam *ipam, const char *container_id, const char *ifname,
	      struct in_addr *out);
int ipam_list(struct ipam *ipam, struct ipam_allocation **out, size_t *count);
/* Releases every allocation for which keep() is false, in one store update. */
int ipam_gc(struct ipam *ipam, bool (*keep)(const struct ipam_allocation *a, void *arg),
	    void *arg, struct ipam_allocation **released, size_t *released_count);
int ipam_usage(struct ipam *ipam, size_t *in_use, size_t *capacity);

#endif
