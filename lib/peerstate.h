/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_PEERSTATE_H
#define TWILL_PEERSTATE_H

#include <stddef.h>

#include "reconcile.h"

/*
 * <state_dir>/peers.json: the endpoint the agent last applied to each peer, so that a
 * restarted agent tells "the topology moved this peer" from "WireGuard roamed it".
 * Only key, endpoint and name are kept.
 */
int peerstate_write(const char *state_dir, const struct rc_peer *peers, size_t n);
/* Sorted by public key; -ENOENT when absent, -EINVAL (logged) when not ours. */
int peerstate_read(const char *state_dir, struct rc_peer **out, size_t *n);
int peerstate_remove(const char *state_dir);  /* 0 when absent */

#endif
