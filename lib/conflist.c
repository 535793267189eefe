// SPDX-License-Identifier: Apache-2.0
/*
 * The CNI network configuration the container runtime reads. cniVersion stays at
 * 1.0.0 for libcni before 1.2 (Debian's among them), which reads nothing newer;
 * "cniVersions" (CNI 1.1) lets libcni 1.2 and later pick 1.1.0, the first version it
 * sends GC and STATUS to. Older libcni ignores the field.
 *
 * twill declares the "bandwidth" capability so a pod's limits reach it too: a pod with
 * limits gets no BPF program, so the bandwidth plugin after portmap can shape it.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "conflist.h"
#include "log.h"

int conflist_render(const struct conflist_params *p, char **out)
{
	json_t *root, *twill;
	char *text;

	twill = json_pack("{s:s, s:s, s:I, s:s, s:s, s:{s:b}}",
			  "type", "twill",
			  "podCIDR", p->pod_cidr,
			  "mtu", (json_int_t)p->mtu,
			  "stateDir", p->state_dir,
			  "bpfPinDir", p->bpf_pin_dir,
			  "capabilities", "bandwidth", 1);
	if (!twill)
		return -EINVAL;
	if (p->log_file && json_object_set_new(twill, "logFile", json_string(p->log_file)) < 0) {
		json_decref(twill);
		return -EINVAL;
	}
	root = json_pack("{s:s, s:[s, s], s:s, s:[o, {s:s, s:{s:b}}, {s:s, s:{s:b}}]}",
			 "cniVersion", "1.0.0",
			 "cniVersions", "1.0.0", "1.1.0",
			 "name", "twill",
			 "plugins", twill,
			 "type", "portmap", "capabilities", "portMappings", 1,
			 "type", "bandwidth", "capabilities", "bandwidth", 1);
	if (!root)
		return -EINVAL;
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	/* a text file ends in a newline (cat, diff and editors expect one) */
	*out = realloc(text, strlen(text) + 2);
	if (!*out) {
		free(text);
		return -ENOMEM;
	}
	strcat(*out, "\n");
	return 0;
}

static bool file_has(const char *path, const char *text)
{
	size_t len = strlen(text);
	char *buf = malloc(len + 2);
	bool same = false;
	FILE *f;

	if (!buf)
		return false;
	f = fopen(path, "re");
	if (f) {
		same = fread(buf, 1, len + 1, f) == len && memcmp(buf, text, len) == 0;
		fclose(f);
	}
	free(buf);
	return same;
}

int conflist_write(const char *conf_dir, const struct conflist_params *p, bool *changed)
{
	char path[PATH_MAX];
	char *text = NULL;
	int ret;

	if (snprintf(path, sizeof(path), "%s/" CONFLIST_FILE, conf_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	ret = conflist_render(p, &text);
	if (ret < 0)
		return ret;
	if (changed)
		*changed = false;
	if (file_has(path, text))
		goto cleanup;
	if (mkdir(conf_dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		log_err("conflist: cannot create folder '%s': %s", conf_dir, strerror(errno));
		goto cleanup;
	}
	ret = atomic_write_file(path, text, strlen(text), 0644);
	if (ret < 0) {
		log_err("conflist: cannot write '%s': %s", path, strerror(-ret));
		goto cleanup;
	}
	if (changed)
		*changed = true;
	log_info("conflist: wrote '%s' (podCIDR %s, mtu %u)", path, p->pod_cidr, p->mtu);
cleanup:
	free(text);
	return ret;
}

int conflist_remove(const char *conf_dir)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/" CONFLIST_FILE, conf_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return unlink(path) < 0 ? -errno : 0;
}
