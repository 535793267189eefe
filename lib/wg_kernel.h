/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_WG_KERNEL_H
#define TWILL_WG_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgctl.h"

/*
 * Kernel WireGuard over generic netlink (family "wireguard", <linux/wireguard.h>) and
 * its links over rtnetlink. Builders and parsers are pure functions over byte buffers;
 * only the wg_kernel_{family_id,get,set,link_*} calls touch a socket.
 */

/* What one SET_DEVICE message may grow to; larger configurations span several. */
#define WG_KERNEL_MSG_MAX 8192
/* Receive buffer: the kernel sizes dump messages by what the reader offers. */
#define WG_KERNEL_RECV_MAX 32768

/* Where the next SET_DEVICE message resumes; zero it before the first. */
struct wg_kernel_set_cursor {
	size_t peer;        /* index of the next peer to emit */
	size_t aip;         /* index of its next allowed IP */
	bool peer_started;  /* that peer's flags, endpoint and keepalive already went out */
	bool device_sent;   /* private key, port and device flags already went out */
	bool done;
};

int wg_kernel_build_getfamily(void *buf, size_t buflen, uint32_t seq);
int wg_kernel_parse_getfamily(const void *buf, size_t len, uint16_t *family_id);
int wg_kernel_build_get(void *buf, size_t buflen, uint16_t family_id, uint32_t seq,
			const char *ifname);
/* Returns the message length; cur->done once the last message is built. */
int wg_kernel_build_set(void *buf, size_t buflen, uint16_t family_id, uint32_t seq,
			const struct wg_device *dev, struct wg_kernel_set_cursor *cur);
/*
 * Feeds one datagram of a GET_DEVICE dump into dev, merging a peer the kernel split
 * across messages. Returns 1 while more is to come, 0 after NLMSG_DONE, -errno on an
 * error reply or malformed bytes.
 */
int wg_kernel_parse_get(const void *buf, size_t len, uint32_t seq, struct wg_device *dev);
int wg_kernel_build_newlink(void *buf, size_t buflen, uint32_t seq, const char *ifname);
int wg_kernel_build_dellink(void *buf, size_t buflen, uint32_t seq, const char *ifname);
/* The acknowledgement of a request: 0, or the kernel's -errno. */
int wg_kernel_parse_ack(const void *buf, size_t len, uint32_t seq);

/* -ENOENT when this kernel has no WireGuard. */
int wg_kernel_family_id(uint16_t *out);
int wg_kernel_get(uint16_t family_id, const char *ifname, struct wg_device **out);
int wg_kernel_set(uint16_t family_id, const struct wg_device *dev);
int wg_kernel_link_create(const char *ifname);
int wg_kernel_link_delete(const char *ifname);

#endif
