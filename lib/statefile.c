// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's JSON files in its state folder. Written atomically, but read as
 * untrusted input: a file that is not ours (corrupt, huge, a FIFO, edited by hand) is
 * refused with a message, never half used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "atomicfile.h"
#include "log.h"
#include "statefile.h"

int statefile_path(const char *state_dir, const char *name, char path[PATH_MAX])
{
	if (snprintf(path, PATH_MAX, "%s/%s", state_dir, name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int statefile_read_json(const char *path, size_t max, const char *what, json_t **out)
{
	json_error_t jerr;
	json_t *root;
	char *text;
	size_t len;
	int ret;

	ret = file_read_all(path, max, &text, &len);
	if (ret == -EINVAL || ret == -EFBIG || ret == -EAGAIN) {
		log_err("%s '%s': not a regular file of at most %zu bytes", what, path, max);
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!root) {
		log_err("%s '%s': invalid JSON at line %d: %s", what, path, jerr.line, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		log_err("%s '%s': not a JSON object", what, path);
		json_decref(root);
		return -EINVAL;
	}
	*out = root;
	return 0;
}

int statefile_remove(const char *state_dir, const char *name)
{
	char path[PATH_MAX];
	int ret = statefile_path(state_dir, name, path);

	if (ret < 0)
		return ret;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}
