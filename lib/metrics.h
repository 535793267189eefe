/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_METRICS_H
#define TWILL_METRICS_H

#include <stddef.h>

/*
 * A tiny single-threaded HTTP responder for Prometheus scrapes: the owner polls
 * metrics_fd() with its other descriptors and calls metrics_serve() when readable.
 */
struct metrics;

/* addr: "ADDR:PORT", "[V6]:PORT" or ":PORT" (every address). */
int metrics_open(const char *addr, struct metrics **out);
void metrics_close(struct metrics *m);
int metrics_fd(const struct metrics *m);
/*
 * Accepts one connection and answers it with render()'s text (malloc'ed, freed here),
 * all within one deadline of 2 s: -ETIMEDOUT for a client too slow to send or read.
 */
int metrics_serve(struct metrics *m, int (*render)(void *arg, char **text, size_t *len),
		  void *arg);

#endif
