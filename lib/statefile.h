/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_STATEFILE_H
#define TWILL_STATEFILE_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>

/* The agent's JSON files in its state folder (node.json, peers.json). */

/* "<state_dir>/<name>"; -ENAMETOOLONG when it does not fit. */
int statefile_path(const char *state_dir, const char *name, char path[PATH_MAX]);
/*
 * The JSON object in path, read as untrusted input: a regular file of at most max
 * bytes, no key twice. -ENOENT when absent; -EINVAL when not ours, logged as
 * "<what> '<path>': ...".
 */
int statefile_read_json(const char *path, size_t max, const char *what, json_t **out);
int statefile_remove(const char *state_dir, const char *name);   /* 0 when absent */

#endif
