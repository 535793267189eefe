// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the network configuration the runtime writes to the plugin's stdin,
 * prevResult included (CHECK and chained plugins decode it). Beyond "no crash": a
 * refusal always carries a CNI error code and a message, a success never does, and
 * *out is set exactly on success.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni_config.h"
#include "cni_result.h"
#include "log.h"

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-cni-config: broken promise: %s\n", what);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cni_config *cfg = NULL;
	struct cni_result prev;
	struct cni_error err, perr;
	enum cni_version v;
	int r;

	memset(&err, 0, sizeof(err));
	if (cni_config_peek_version((const char *)data, size, &v) == 0)
		check(v < CNI_VERSION_COUNT, "peeked version out of range");
	r = cni_config_parse((const char *)data, size, &cfg, &err);
	check(r <= 0, "positive return");
	check((r == 0) == (cfg != NULL), "*out set on failure or unset on success");
	if (r < 0) {
		check(err.code != 0, "refused without a CNI error code");
		check(memchr(err.msg, '\0', sizeof(err.msg)) && err.msg[0],
		      "refused without a message");
		return 0;
	}
	check(cfg->version < CNI_VERSION_COUNT, "version out of range");
	check(cfg->name[0] && memchr(cfg->name, '\0', sizeof(cfg->name)), "bad name");
	check(!cfg->has_attachments || cfg->n_attachments == 0 || cfg->attachments,
	      "attachments counted but absent");
	if (cfg->prev_result) {
		memset(&perr, 0, sizeof(perr));
		r = cni_result_decode(cfg->prev_result, &prev, &perr);
		check(r <= 0, "prevResult: positive return");
		check(r == 0 || perr.code != 0, "prevResult refused without a CNI error code");
		if (r == 0)
			check(prev.n_interfaces <= CNI_RESULT_MAX && prev.n_ips <= CNI_RESULT_MAX &&
			      prev.n_routes <= CNI_RESULT_MAX, "prevResult counts out of range");
		cni_result_clear(&prev);
	}
	cni_config_free(cfg);
	return 0;
}
