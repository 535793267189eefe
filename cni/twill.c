// SPDX-License-Identifier: Apache-2.0
/*
 * twill: the CNI plugin. Reads the CNI_* environment and the network configuration
 * on stdin, runs the verb in lib/, prints the result or the error as JSON on stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni_plugin.h"
#include "log.h"

#define STDIN_MAX (16u << 20)

static int read_stdin(char **out, size_t *len)
{
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap), *grown;
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap >= STDIN_MAX) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			grown = realloc(buf, cap);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
		}
		r = read(STDIN_FILENO, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			r = -errno;
			free(buf);
			return (int)r;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int print_json(json_t *j)
{
	int r = json_dumpf(j, stdout, JSON_COMPACT);

	fputc('\n', stdout);
	return (r < 0 || fflush(stdout) != 0) ? -EIO : 0;
}

int main(void)
{
	struct cni_request req = {
		.command = getenv("CNI_COMMAND"),
		.container_id = getenv("CNI_CONTAINERID"),
		.netns = getenv("CNI_NETNS"),
		.ifname = getenv("CNI_IFNAME"),
		.args = getenv("CNI_ARGS"),
		.path = getenv("CNI_PATH"),
	};
	struct cni_error err;
	json_t *out = NULL;
	char *input = NULL;
	int r;

	log_set_ident("twill");
	r = read_stdin(&input, &req.config_len);
	if (r < 0) {
		memset(&err, 0, sizeof(err));
		err.version = CNI_VERSION_LATEST;
		cni_error_set(&err, CNI_ERR_IO, "cannot read the network configuration on stdin: %s",
			      strerror(-r));
	} else {
		req.config = input;
		r = cni_plugin_run(&req, &out, &err);
	}
	if (r < 0) {
		json_t *e = cni_error_encode(&err);

		if (e)
			print_json(e);
		json_decref(e);
		free(input);
		return 1;
	}
	if (out && print_json(out) < 0)
		r = -EIO;
	json_decref(out);
	free(input);
	return r < 0 ? 1 : 0;
}
