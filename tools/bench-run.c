// SPDX-License-Identifier: Apache-2.0
/*
 * twill-bench run: the whole benchmark. The orchestration (labs, four dataplanes, the
 * results table) is the shell script twill-bench-run; this execs it with the folder of
 * this binary, so the script calls back the same twill-bench (for `cni`) and finds the
 * twill-lab and twilld that were built or installed with it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#ifndef TWILL_BENCH_LIBEXEC_DIR
#define TWILL_BENCH_LIBEXEC_DIR "/usr/local/libexec/twill"
#endif
#define RUN_SCRIPT "twill-bench-run"

/* The script beside this binary (the build tree), else the installed one. */
static int find_script(const char *self_dir, char *out, size_t len)
{
	const char *env = getenv("TWILL_BENCH_SCRIPT");

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return access(out, X_OK) == 0 ? 0 : -ENOENT;
	}
	if ((size_t)snprintf(out, len, "%s/%s", self_dir, RUN_SCRIPT) < len && access(out, X_OK) == 0)
		return 0;
	snprintf(out, len, "%s/%s", TWILL_BENCH_LIBEXEC_DIR, RUN_SCRIPT);
	return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

int bench_run_main(int argc, char **argv)
{
	char self[PATH_MAX], dir[PATH_MAX], script[PATH_MAX + 32], **args;
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "twill-bench: cannot read /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	self[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", self);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	if (find_script(dir, script, sizeof(script)) < 0) {
		fprintf(stderr, "twill-bench: '%s' not found beside '%s' nor in '%s'\n", RUN_SCRIPT,
			self, TWILL_BENCH_LIBEXEC_DIR);
		return 1;
	}
	if (setenv("TWILL_BENCH_SELF", self, 1) < 0 || setenv("TWILL_BENCH_BINDIR", dir, 1) < 0) {
		fprintf(stderr, "twill-bench: setenv: %s\n", strerror(errno));
		return 1;
	}
	/* argv[0] is "run": the script gets the options only */
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (!args) {
		fprintf(stderr, "twill-bench: out of memory\n");
		return 1;
	}
	args[0] = script;
	for (int i = 1; i < argc; i++)
		args[i] = argv[i];
	execv(script, args);
	fprintf(stderr, "twill-bench: cannot run '%s': %s\n", script, strerror(errno));
	free(args);
	return 1;
}
