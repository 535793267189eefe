// SPDX-License-Identifier: Apache-2.0
/*
 * One interface to a WireGuard device over two back ends: kernel WireGuard (generic
 * netlink, wg_kernel.c) and userspace WireGuard (the UAPI socket, wg_uapi.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "netlink.h"
#include "wg_kernel.h"
#include "wg_uapi.h"
#include "wgctl.h"

#define WG_USERSPACE_START_TIMEOUT_MS 5000
#define WG_USERSPACE_STOP_TIMEOUT_MS 3000

struct wgctl {
	char ifname[IF_NAMESIZE];
	enum wg_backend backend;
	uint16_t family_id;          /* kernel back end */
	char *program;               /* userspace back end */
};

const char *wg_backend_name(enum wg_backend backend)
{
	switch (backend) {
	case WG_BACKEND_AUTO:
		return "auto";
	case WG_BACKEND_KERNEL:
		return "kernel";
	case WG_BACKEND_USERSPACE:
		return "userspace";
	}
	return "unknown";
}

bool wgctl_kernel_available(void)
{
	uint16_t id;

	return wg_kernel_family_id(&id) == 0;
}

int wgctl_open(const char *ifname, enum wg_backend backend, struct wgctl **out)
{
	struct wgctl *wg;
	uint16_t id = 0;
	int ret;

	if (!nl_ifname_valid(ifname)) {
		log_err("wgctl: '%s' is not a valid interface name", ifname ? ifname : "");
		return -EINVAL;
	}
	if (backend != WG_BACKEND_AUTO && backend != WG_BACKEND_KERNEL &&
	    backend != WG_BACKEND_USERSPACE)
		return -EINVAL;
	if (backend != WG_BACKEND_USERSPACE) {
		ret = wg_kernel_family_id(&id);
		if (ret < 0 && backend == WG_BACKEND_KERNEL) {
			log_err("wgctl: kernel back end asked for '%s', but the generic netlink "
				"family '%s' does not resolve: %s", ifname, "wireguard",
				strerror(-ret));
			return ret;
		}
		backend = ret == 0 ? WG_BACKEND_KERNEL : WG_BACKEND_USERSPACE;
	}
	wg = calloc(1, sizeof(*wg));
	if (!wg)
		return -ENOMEM;
	snprintf(wg->ifname, sizeof(wg->ifname), "%s", ifname);
	wg->backend = backend;
	wg->family_id = id;
	wg->program = strdup("wireguard-go");
	if (!wg->program) {
		free(wg);
		return -ENOMEM;
	}
	log_debug("wgctl: device '%s' uses the %s back end", ifname, wg_backend_name(backend));
	*out = wg;
	return 0;
}

void wgctl_close(struct wgctl *wg)
{
	if (!wg)
		return;
	free(wg->program);
	free(wg);
}

enum wg_backend wgctl_backend(const struct wgctl *wg)
{
	return wg->backend;
}

const char *wgctl_ifname(const struct wgctl *wg)
{
	return wg->ifname;
}

int wgctl_set_userspace_program(struct wgctl *wg, const char *path)
{
	char *copy;

	if (!path || !*path)
		return -EINVAL;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	free(wg->program);
	wg->program = copy;
	return 0;
}

bool wgctl_device_exists(struct wgctl *wg)
{
	if (wg->backend == WG_BACKEND_KERNEL)
		return if_nametoindex(wg->ifname) != 0;
	return wg_uapi_device_exists(wg->ifname);
}

int wgctl_create_device(struct wgctl *wg)
{
	int ret;

	if (wg->backend == WG_BACKEND_KERNEL)
		return wg_kernel_link_create(wg->ifname);
	if (wg_uapi_device_exists(wg->ifname))
		return -EEXIST;
	ret = wg_uapi_start(wg->program, wg->ifname, WG_USERSPACE_START_TIMEOUT_MS);
	if (ret < 0)
		log_err("wgctl: cannot start userspace WireGuard for '%s': %s", wg->ifname,
			strerror(-ret));
	return ret;
}

/*
 * Deleting the link makes wireguard-go close its device, remove its socket and exit. A
 * daemon that lingers (its link already gone, or wedged) is asked to stop by its pid,
 * which the socket itself names (SO_PEERCRED), so no other process can be hit.
 */
static int userspace_delete(struct wgctl *wg)
{
	pid_t pid = 0;
	int ret;

	(void)wg_uapi_server_pid(wg->ifname, &pid);
	ret = wg_kernel_link_delete(wg->ifname);
	if (ret < 0 && ret != -ENODEV)
		return ret;
	if (ret == -ENODEV && !pid)
		return -ENODEV;
	if (wg_uapi_wait_gone(wg->ifname, WG_USERSPACE_STOP_TIMEOUT_MS) == 0)
		return 0;
	if (pid > 0) {
		log_warn("wgctl: userspace WireGuard for '%s' (pid %d) outlived its link, "
			 "sending SIGTERM", wg->ifname, (int)pid);
		if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
			return -errno;
	}
	ret = wg_uapi_wait_gone(wg->ifname, WG_USERSPACE_STOP_TIMEOUT_MS);
	if (ret < 0)
		log_err("wgctl: userspace WireGuard for '%s' still answers after SIGTERM",
			wg->ifname);
	return ret;
}

int wgctl_delete_device(struct wgctl *wg)
{
	if (wg->backend == WG_BACKEND_KERNEL)
		return wg_kernel_link_delete(wg->ifname);
	return userspace_delete(wg);
}

int wgctl_get(struct wgctl *wg, struct wg_device **out)
{
	if (wg->backend == WG_BACKEND_KERNEL)
		return wg_kernel_get(wg->family_id, wg->ifname, out);
	return wg_uapi_get(wg->ifname, out);
}

int wgctl_set(struct wgctl *wg, const struct wg_device *dev)
{
	struct wg_device copy;

	/* The handle names the device; dev->name may be left empty by the caller. */
	copy = *dev;
	snprintf(copy.name, sizeof(copy.name), "%s", wg->ifname);
	if (wg->backend == WG_BACKEND_KERNEL)
		return wg_kernel_set(wg->family_id, &copy);
	return wg_uapi_set(wg->ifname, &copy);
}

void wg_device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	for (size_t i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowed_ips);
	free(dev->peers);
	OPENSSL_cleanse(dev->private_key, sizeof(dev->private_key));
	free(dev);
}

/*
 * The capacity is not stored: it is 4 for counts up to 4, then the next power of two.
 * So the array is full, and grows to twice its count, exactly when the count is 0 or a
 * power of two of at least 4.
 */
static void *grow(void *array, size_t n, size_t size)
{
	size_t cap;

	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return array;
	cap = n ? n * 2 : 4;
	if (cap > SIZE_MAX / size)
		return NULL;
	return realloc(array, cap * size);
}

struct wg_peer *wg_device_add_peer(struct wg_device *dev)
{
	struct wg_peer *peers = grow(dev->peers, dev->n_peers, sizeof(*peers));

	if (!peers)
		return NULL;
	dev->peers = peers;
	memset(&peers[dev->n_peers], 0, sizeof(*peers));
	return &peers[dev->n_peers++];
}

struct wg_allowed_ip *wg_peer_add_allowed_ip(struct wg_peer *peer)
{
	struct wg_allowed_ip *a = grow(peer->allowed_ips, peer->n_allowed_ips, sizeof(*a));

	if (!a)
		return NULL;
	peer->allowed_ips = a;
	memset(&a[peer->n_allowed_ips], 0, sizeof(*a));
	return &a[peer->n_allowed_ips++];
}
