/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_WG_UAPI_H
#define TWILL_WG_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "wgctl.h"

/* Userspace WireGuard (wireguard-go, boringtun) over the cross-platform UAPI protocol. */

int wg_uapi_socket_path(const char *ifname, char *buf, size_t len);
/* Someone answers on the device's socket (a stale socket file does not count). */
bool wg_uapi_device_exists(const char *ifname);

/* Pure: the reply to get=1, up to and including "errno=N" and the blank line. */
int wg_uapi_parse_get(const char *text, size_t len, struct wg_device **out);
/* Pure: the reply to set=1; 0 or the daemon's -errno, -EPROTO when malformed. */
int wg_uapi_parse_set_reply(const char *text, size_t len);
/* Pure: the set=1 request for dev, blank line included; *text is malloc'ed. */
int wg_uapi_build_set(const struct wg_device *dev, char **text, size_t *len);

int wg_uapi_get(const char *ifname, struct wg_device **out);
int wg_uapi_set(const char *ifname, const struct wg_device *dev);
/* The process serving the socket, from SO_PEERCRED. */
int wg_uapi_server_pid(const char *ifname, pid_t *out);
/* Runs `program ifname` here (it daemonises) and waits up to timeout_ms for its socket. */
int wg_uapi_start(const char *program, const char *ifname, int timeout_ms);
/* Waits up to timeout_ms for the socket to stop answering. */
int wg_uapi_wait_gone(const char *ifname, int timeout_ms);

#endif
