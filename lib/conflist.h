/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_CONFLIST_H
#define TWILL_CONFLIST_H

#include <stdbool.h>

/* <cni_conf_dir>/10-twill.conflist: the twill plugin chained with portmap and bandwidth. */
#define CONFLIST_FILE "10-twill.conflist"

struct conflist_params {
	const char *pod_cidr;      /* "10.244.1.0/24" */
	unsigned int mtu;
	const char *state_dir;
	const char *bpf_pin_dir;
	const char *log_file;      /* NULL: not written */
};

/* Returns a malloc'ed JSON text. */
int conflist_render(const struct conflist_params *p, char **out);
/* Atomic; leaves an identical file untouched (runtimes watch the folder). *changed may be NULL. */
int conflist_write(const char *conf_dir, const struct conflist_params *p, bool *changed);
int conflist_remove(const char *conf_dir);   /* -ENOENT when absent */

#endif
