/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_IPAM_H
#define TWILL_IPAM_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * One network's address store for the node's /24: <state_dir>/ipam/<network>/.
 * Errors: -EINVAL bad argument, -ENOSPC the /24 is full, -ENOENT unknown attachment,
 * -EBADMSG the store file is corrupt (it is left untouched), -EEXIST the store was made
 * for another pod CIDR than the one given to ipam_open; a full disk is -EIO (the store
 * is then left as it was); -ETIMEDOUT another process held the lock for the whole wait
 * (IPAM_LOCK_WAIT_MS unless ipam_set_lock_wait says otherwise). A handle must not be
 * used across fork(): the lock is per open file.
 */
struct ipam;

/* kubelet gives a CNI call minutes; a lock held longer than this is a stuck process */
#define IPAM_LOCK_WAIT_MS 10000u

struct ipam_allocation {
	struct in_addr addr;
	char container_id[256];
	char ifname[16];
	time_t allocated_at;
};

int ipam_open(const char *state_dir, const char *network, const char *pod_cidr,
	      struct ipam **out);
/* The store as it is, for whichever /24 it was made: creates nothing (-ENOENT when the
 * network has no folder) and cannot allocate; release, find, list and gc work. */
int ipam_open_existing(const char *state_dir, const char *network, struct ipam **out);
void ipam_set_lock_wait(struct ipam *ipam, unsigned int ms);
void ipam_close(struct ipam *ipam);

/* Same container id + ifname twice returns the same address. */
int ipam_allocate(struct ipam *ipam, const char *container_id, const char *ifname,
		  struct in_addr *out);
/* Releasing an unknown attachment returns -ENOENT and changes nothing. */
int ipam_release(struct ipam *ipam, const char *container_id, const char *ifname,
		 struct in_addr *released);
int ipam_find(struct ipam *ipam, const char *container_id, const char *ifname,
	      struct in_addr *out);
/* *out is sorted by address, to free(); it may be NULL when *count is 0. */
int ipam_list(struct ipam *ipam, struct ipam_allocation **out, size_t *count);
/* Releases every allocation for which keep() is false, in one store update.
 * released may be NULL; otherwise *released is to free(). */
int ipam_gc(struct ipam *ipam, bool (*keep)(const struct ipam_allocation *a, void *arg),
	    void *arg, struct ipam_allocation **released, size_t *released_count);
int ipam_usage(struct ipam *ipam, size_t *in_use, size_t *capacity);
/* The folder holding the store, for messages and twillctl. */
const char *ipam_dir(const struct ipam *ipam);

/* Validation shared with the CNI front end (CNI spec rules). */
bool ipam_container_id_valid(const char *id);
bool ipam_ifname_valid(const char *ifname);
bool ipam_network_name_valid(const char *name);
/* Parses "a.b.c.0/24"; anything else is -EINVAL with a message naming the input. */
int ipam_cidr_parse(const char *pod_cidr, struct in_addr *network);

/*
 * The store file's content, parsed and formatted without touching files, so the
 * loader can be unit-tested and fuzzed on the very code ipam_open's handle uses.
 */
struct ipam_store {
	struct in_addr network; /* the pod CIDR's first address, the store was made for */
	unsigned int cursor;    /* host octet handed out last; 1 when none yet */
	size_t count;
	struct ipam_allocation *allocs; /* sorted by address */
};

/* origin names the input in messages (the file path). pod_cidr may be NULL to accept
 * whichever /24 the text names; otherwise another /24 is -EEXIST. */
int ipam_store_parse(const char *text, size_t len, const char *pod_cidr, const char *origin,
		     struct ipam_store **out);
/* *out is a NUL-terminated JSON document to free(). */
int ipam_store_format(const struct ipam_store *store, char **out);
void ipam_store_free(struct ipam_store *store);

#endif
