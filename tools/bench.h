/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_BENCH_H
#define TWILL_BENCH_H

/* One function per twill-bench subcommand; argv[0] is the subcommand's name. */
int bench_cni_main(int argc, char **argv);
int bench_run_main(int argc, char **argv);
int bench_rr_main(int argc, char **argv);

#endif
