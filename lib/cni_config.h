/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_CNI_CONFIG_H
#define TWILL_CNI_CONFIG_H

#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "cni_result.h"
#include "log.h"

/* One network configuration as the runtime hands it to the plugin on stdin. */
struct cni_attachment {
	char container_id[256];
	char ifname[16];
};

struct cni_config {
	enum cni_version version;
	char name[128];
	char type[64];
	bool has_pod_cidr;
	char pod_cidr[INET_ADDRSTRLEN + 4];
	struct in_addr pod_net;
	unsigned int pod_prefixlen;
	unsigned int mtu;                 /* 0: not in the config */
	char state_dir[PATH_MAX];
	char bpf_pin_dir[PATH_MAX];
	char log_file[PATH_MAX];          /* "": stderr only */
	bool has_log_level;
	enum log_level log_level;
	json_t *dns;                      /* owned, NULL when absent */
	json_t *prev_result;              /* owned, NULL when absent */
	/* runtimeConfig.bandwidth sets a rate or burst: the pod takes the kernel path */
	bool bandwidth_limited;
	bool has_attachments;             /* GC: cni.dev/valid-attachments given */
	size_t n_attachments;
	struct cni_attachment *attachments;
};

/* Fills err (code and a message naming the field) and returns -EINVAL on bad input. */
int cni_config_parse(const char *buf, size_t len, struct cni_config **out,
		     struct cni_error *err);
void cni_config_free(struct cni_config *cfg);

/* Only the version, for VERSION and for answering errors in the caller's version. */
int cni_config_peek_version(const char *buf, size_t len, enum cni_version *out);

#endif
