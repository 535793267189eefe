// SPDX-License-Identifier: Apache-2.0
/* twill-bench: Twill's benchmarks, one subcommand each. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct subcommand subcommands[] = {
	{ "run", bench_run_main, "everything below and the dataplanes, one table (the default)" },
	{ "cni", bench_cni_main, "CNI ADD/DEL latency and peak RSS: twill vs ptp + host-local" },
	{ "rr", bench_rr_main, "TCP request/response latency between two addresses (echo server, client)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: twill-bench [run] [--quick] [--json] [options]   (run --help lists them)\n"
		   "       twill-bench <subcommand> [options]\n\nsubcommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].help);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	/* no subcommand: the whole benchmark, with the options given */
	if (argc < 2 || argv[1][0] == '-') {
		argv[0] = "run";
		return bench_run_main(argc, argv);
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "twill-bench: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
