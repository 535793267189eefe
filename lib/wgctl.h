/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_WGCTL_H
#define TWILL_WGCTL_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wgkey.h"

/*
 * One interface to a WireGuard device, two back ends: kernel WireGuard over generic
 * netlink, and userspace WireGuard (wireguard-go, boringtun) over its UAPI socket.
 */
enum wg_backend { WG_BACKEND_AUTO, WG_BACKEND_KERNEL, WG_BACKEND_USERSPACE };

struct wg_allowed_ip {
	int family;               /* AF_INET or AF_INET6 */
	union {
		struct in_addr ip4;
		struct in6_addr ip6;
	};
	uint8_t cidr;
};

union wg_endpoint {
	struct sockaddr addr;
	struct sockaddr_in addr4;
	struct sockaddr_in6 addr6;
};

#define WG_PEER_REMOVE            (1u << 0)
#define WG_PEER_REPLACE_ALLOWEDIPS (1u << 1)
#define WG_PEER_HAS_ENDPOINT      (1u << 2)
#define WG_PEER_HAS_KEEPALIVE     (1u << 3)
#define WG_PEER_UPDATE_ONLY       (1u << 4) /* change the peer only if it already exists */

struct wg_peer {
	uint8_t public_key[WG_KEY_LEN];
	uint32_t flags;                 /* WG_PEER_* when setting */
	union wg_endpoint endpoint;     /* family 0 when none */
	uint16_t keepalive_interval;    /* seconds, 0 = off */
	struct wg_allowed_ip *allowed_ips;
	size_t n_allowed_ips;
	/* read back only */
	int64_t last_handshake_sec;     /* unix seconds, 0 = never */
	uint64_t rx_bytes, tx_bytes;
	int64_t last_handshake_nsec;
	uint32_t protocol_version;      /* 0 when the back end does not say */
};

#define WG_DEVICE_HAS_PRIVATE_KEY (1u << 0)
#define WG_DEVICE_HAS_LISTEN_PORT (1u << 1)
#define WG_DEVICE_REPLACE_PEERS   (1u << 2)

struct wg_device {
	char name[IF_NAMESIZE];
	int ifindex;
	uint32_t flags;                 /* WG_DEVICE_* when setting */
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
	uint16_t listen_port;
	struct wg_peer *peers;
	size_t n_peers;
	uint32_t fwmark;                /* read back only */
};

struct wgctl;

/* AUTO picks kernel when the "wireguard" genetlink family exists, userspace otherwise. */
int wgctl_open(const char *ifname, enum wg_backend backend, struct wgctl **out);
void wgctl_close(struct wgctl *wg);
enum wg_backend wgctl_backend(const struct wgctl *wg);
const char *wg_backend_name(enum wg_backend backend);
bool wgctl_device_exists(struct wgctl *wg);
/* Kernel: RTM_NEWLINK kind wireguard. Userspace: starts wireguard-go and waits for the socket. */
int wgctl_create_device(struct wgctl *wg);
int wgctl_delete_device(struct wgctl *wg);
/*
 * Peers come back with flags 0, endpoint family 0 when none, ifindex from the name.
 * -ENODEV when the device is gone (userspace: no socket, or no daemon behind it).
 */
int wgctl_get(struct wgctl *wg, struct wg_device **out);
/*
 * Applies only what is in dev: flags say which device fields, peers carry their own flags.
 * A peer's endpoint is sent only with WG_PEER_HAS_ENDPOINT (then it must be AF_INET or
 * AF_INET6), its keepalive only with WG_PEER_HAS_KEEPALIVE; its allowed IPs are always
 * added (replacing the old ones with WG_PEER_REPLACE_ALLOWEDIPS).
 */
int wgctl_set(struct wgctl *wg, const struct wg_device *dev);
void wg_device_free(struct wg_device *dev);

/* Userspace back end: the wireguard-go program to start (default: "wireguard-go" on PATH). */
int wgctl_set_userspace_program(struct wgctl *wg, const char *path);
const char *wgctl_ifname(const struct wgctl *wg);
/* The kernel's "wireguard" generic netlink family resolves in this network namespace. */
bool wgctl_kernel_available(void);
/*
 * Append one zeroed element, amortised O(1): only for arrays grown by these helpers from
 * empty (capacity is implied by the count). NULL when out of memory.
 */
struct wg_peer *wg_device_add_peer(struct wg_device *dev);
struct wg_allowed_ip *wg_peer_add_allowed_ip(struct wg_peer *peer);

#endif
