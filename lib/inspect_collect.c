// SPDX-License-Identifier: Apache-2.0
/*
 * The collecting half of inspect: reads every source directly (pinned maps, the
 * WireGuard device, rtnetlink, the agent's state files) so twillctl answers while the
 * agent is down. A missing source is recorded as missing, never fatal: the analysis
 * turns it into a health problem.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "cni_plugin.h"
#include "datapath.h"
#include "inspect.h"
#include "log.h"
#include "twill-config.h"
#include "wgkey.h"

#define INSPECT_DEFAULT_WG_DEVICE "twill0"
#define INSPECT_DEFAULT_NETWORK "twill"

/* 0 also when nothing is pinned (a health problem); -EPERM/-EACCES when we may not look. */
static int collect_dataplane(struct inspect_snapshot *s, const char *pin_dir)
{
	struct datapath *dp = NULL;
	bool services;
	int ret;

	ret = datapath_open_pinned(pin_dir, &dp);
	if (ret == -EPERM || ret == -EACCES) {
		log_err("inspect: cannot open the dataplane pinned in '%s': %s", pin_dir,
			strerror(-ret));
		return ret;
	}
	if (ret < 0) {
		log_debug("inspect: no dataplane pinned in '%s': %s", pin_dir, strerror(-ret));
		return 0;
	}
	s->dp_loaded = true;
	s->dp_services = datapath_services_active(dp, &services) == 0 ? services : -1;
	if (datapath_config_get(dp, &s->config) == 0)
		s->have_config = true;
	ret = datapath_route_list(dp, &s->route_keys, &s->route_values, &s->n_routes);
	if (ret < 0)
		log_warn("inspect: cannot read the route map in '%s': %s", pin_dir, strerror(-ret));
	ret = datapath_endpoint_list(dp, &s->endpoint_keys, &s->endpoint_values, &s->n_endpoints);
	if (ret < 0)
		log_warn("inspect: cannot read the endpoint map in '%s': %s", pin_dir,
			 strerror(-ret));
	if (datapath_counters_read(dp, s->counters) == 0)
		s->have_counters = true;
	datapath_close(dp);
	return 0;
}

int inspect_read_counters(const char *pin_dir, struct twill_counter counters[TWILL_R_MAX])
{
	struct datapath *dp = NULL;
	int ret;

	ret = datapath_open_pinned(pin_dir, &dp);
	if (ret < 0)
		return ret;
	ret = datapath_counters_read(dp, counters);
	datapath_close(dp);
	return ret;
}

static int wg_read(const char *name, enum wg_backend backend, struct wg_device **dev,
		   enum wg_backend *used)
{
	struct wgctl *wg = NULL;
	int ret;

	ret = wgctl_open(name, backend, &wg);
	if (ret < 0)
		return ret;
	if (!wgctl_device_exists(wg)) {
		ret = -ENODEV;
		goto cleanup;
	}
	ret = wgctl_get(wg, dev);
	if (ret == 0)
		*used = wgctl_backend(wg);
cleanup:
	wgctl_close(wg);
	return ret;
}

static void collect_wg(struct inspect_snapshot *s)
{
	enum wg_backend first = WG_BACKEND_AUTO, used = WG_BACKEND_AUTO;
	int ret;

	if (s->have_state && !strcmp(s->state.backend, "kernel"))
		first = WG_BACKEND_KERNEL;
	else if (s->have_state && !strcmp(s->state.backend, "userspace"))
		first = WG_BACKEND_USERSPACE;
	ret = wg_read(s->wg_ifname, first, &s->wg, &used);
	if (ret < 0 && first != WG_BACKEND_USERSPACE)
		ret = wg_read(s->wg_ifname, WG_BACKEND_USERSPACE, &s->wg, &used);
	if (ret < 0) {
		log_debug("inspect: cannot read WireGuard device '%s': %s", s->wg_ifname,
			  strerror(-ret));
		return;
	}
	/* twillctl never needs the private key: do not keep it in memory. */
	explicit_bzero(s->wg->private_key, WG_KEY_LEN);
	snprintf(s->wg_backend, sizeof(s->wg_backend), "%s", wg_backend_name(used));
}

static int collect_links(struct inspect_snapshot *s)
{
	struct nl_link_info *links = NULL;
	size_t n = 0;
	int ret;

	ret = nl_link_list(&links, &n);
	if (ret < 0) {
		log_warn("inspect: cannot list links: %s", strerror(-ret));
		return ret == -ENOMEM ? ret : 0;
	}
	s->links = calloc(n ? n : 1, sizeof(*s->links));
	if (!s->links) {
		free(links);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct inspect_link *l = &s->links[i];

		l->info = links[i];
		if (datapath_query_attached(l->info.ifindex, false, l->prog_ingress,
					    sizeof(l->prog_ingress)) < 0)
			l->prog_ingress[0] = '\0';
		if (datapath_query_attached(l->info.ifindex, true, l->prog_egress,
					    sizeof(l->prog_egress)) < 0)
			l->prog_egress[0] = '\0';
		if (!strncmp(l->info.name, CNI_HOST_VETH_PREFIX, strlen(CNI_HOST_VETH_PREFIX)))
			l->kernel_path = cni_host_veth_kernel_path(l->info.ifindex);
	}
	s->n_links = n;
	free(links);
	return 0;
}

static int collect_ipam(struct inspect_snapshot *s, const char *state_dir)
{
	char path[PATH_MAX], cidr[CIDR_STR_LEN];
	struct ipam *ipam = NULL;
	struct stat st;
	int ret;

	if (!s->have_state || !s->state.pod_prefixlen)
		return 0;
	/* ipam_open would create the store: only read one that exists. */
	if (snprintf(path, sizeof(path), "%s/ipam/%s", state_dir, s->network) >=
	    (int)sizeof(path)) {
		log_warn("inspect: IPAM folder under '%s' is too long a path", state_dir);
		return 0;
	}
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		s->have_ipam = true;
		return 0;
	}
	cidr_format(s->state.pod_net, s->state.pod_prefixlen, cidr);
	ret = ipam_open(state_dir, s->network, cidr, &ipam);
	if (ret < 0) {
		log_warn("inspect: cannot open the IPAM store '%s': %s", path, strerror(-ret));
		return ret == -ENOMEM ? ret : 0;
	}
	ret = ipam_list(ipam, &s->allocs, &s->n_allocs);
	ipam_close(ipam);
	if (ret < 0) {
		log_warn("inspect: cannot list the IPAM store '%s': %s", path, strerror(-ret));
		return ret == -ENOMEM ? ret : 0;
	}
	s->have_ipam = true;
	/* The CNI plugin's naming rule finds a pod's veth even without an endpoint entry. */
	s->alloc_veths = calloc(s->n_allocs ? s->n_allocs : 1, sizeof(*s->alloc_veths));
	if (!s->alloc_veths)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_allocs; i++)
		cni_host_veth_name(s->allocs[i].container_id, s->allocs[i].ifname,
				   s->alloc_veths[i]);
	return 0;
}

int inspect_state_dir_check(const struct inspect_options *opt)
{
	const char *state_dir = opt->state_dir ? opt->state_dir : TWILL_DEFAULT_STATE_DIR;
	int fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		int ret = -errno;

		log_debug("inspect: cannot read the state folder '%s': %s", state_dir,
			  strerror(errno));
		return ret;
	}
	close(fd);
	return 0;
}

int inspect_collect(const struct inspect_options *opt, struct inspect_snapshot **out)
{
	struct inspect_snapshot *s = NULL;
	const char *state_dir = opt->state_dir ? opt->state_dir : TWILL_DEFAULT_STATE_DIR;
	const char *pin_dir, *wg_name;
	int ret;

	/* A state folder that is not there or not ours to read: nothing here to judge. */
	ret = inspect_state_dir_check(opt);
	if (ret < 0)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->now = (int64_t)time(NULL);
	snprintf(s->network, sizeof(s->network), "%s",
		 opt->network ? opt->network : INSPECT_DEFAULT_NETWORK);
	ret = nodestate_read(state_dir, &s->state);
	if (ret == 0)
		s->have_state = true;
	else
		log_debug("inspect: no node state in '%s': %s", state_dir, strerror(-ret));

	pin_dir = opt->pin_dir;
	if (!pin_dir)
		pin_dir = s->have_state && s->state.bpf_pin_dir[0] ? s->state.bpf_pin_dir :
								      TWILL_DEFAULT_BPF_PIN_DIR;
	if (s->have_state && !s->state.bpf_pin_dir[0])
		snprintf(s->state.bpf_pin_dir, sizeof(s->state.bpf_pin_dir), "%s", pin_dir);
	wg_name = opt->wg_device;
	if (!wg_name)
		wg_name = s->have_state && s->state.wg_device[0] ? s->state.wg_device :
								   INSPECT_DEFAULT_WG_DEVICE;
	snprintf(s->wg_ifname, sizeof(s->wg_ifname), "%s", wg_name);
	snprintf(s->pin_dir, sizeof(s->pin_dir), "%s", pin_dir);

	ret = collect_dataplane(s, pin_dir);
	if (ret < 0)
		goto cleanup;
	collect_wg(s);
	ret = collect_links(s);
	if (ret < 0)
		goto cleanup;
	ret = nl_route_list(0, &s->kroutes, &s->n_kroutes);
	if (ret < 0) {
		log_warn("inspect: cannot list routes: %s", strerror(-ret));
		s->kroutes = NULL;
		s->n_kroutes = 0;
	}
	ret = collect_ipam(s, state_dir);
	if (ret < 0)
		goto cleanup;
	if (opt->topology_path) {
		ret = topology_load_file(opt->topology_path, &s->topo);
		if (ret < 0) {
			log_warn("inspect: cannot read topology '%s': %s", opt->topology_path,
				 strerror(-ret));
			s->topo = NULL;
		}
	}
	ret = inspect_snapshot_index(s);
	if (ret < 0)
		goto cleanup;
	*out = s;
	s = NULL;
	ret = 0;
cleanup:
	inspect_snapshot_free(s);
	return ret;
}

void inspect_snapshot_free(struct inspect_snapshot *s)
{
	if (!s)
		return;
	free(s->route_keys);
	free(s->route_values);
	free(s->endpoint_keys);
	free(s->endpoint_values);
	wg_device_free(s->wg);
	free(s->kroutes);
	free(s->links);
	free(s->allocs);
	free(s->alloc_veths);
	topology_free(s->topo);
	inspect_index_free(s->index);
	free(s);
}

static int public_key_from_file(const char *path, uint8_t pub[WG_KEY_LEN])
{
	char buf[WG_KEY_B64_LEN + 8];
	uint8_t priv[WG_KEY_LEN];
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	ret = n < 0 ? -errno : 0;
	close(fd);
	if (ret < 0)
		goto cleanup;
	buf[n] = '\0';
	buf[strcspn(buf, " \r\n")] = '\0';
	ret = wgkey_from_base64(buf, priv);
	if (ret < 0) {
		log_err("inspect: key file '%s' does not hold a base64 WireGuard key", path);
		goto cleanup;
	}
	ret = wgkey_public_from_private(priv, pub);
cleanup:
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(priv, sizeof(priv));
	return ret;
}

int inspect_public_key(const struct inspect_options *opt, uint8_t pub[WG_KEY_LEN])
{
	const char *state_dir = opt->state_dir ? opt->state_dir : TWILL_DEFAULT_STATE_DIR;
	char path[PATH_MAX];
	struct nodestate ns;
	struct wg_device *dev = NULL;
	enum wg_backend used;
	const char *name = opt->wg_device;
	int ret;

	if (snprintf(path, sizeof(path), "%s/private.key", state_dir) >= (int)sizeof(path))
		ret = -ENAMETOOLONG;
	else
		ret = public_key_from_file(path, pub);
	if (ret == 0)
		return 0;
	log_debug("inspect: no usable key file '%s': %s", path, strerror(-ret));
	if (!name)
		name = nodestate_read(state_dir, &ns) == 0 && ns.wg_device[0] ?
			       ns.wg_device : INSPECT_DEFAULT_WG_DEVICE;
	ret = wg_read(name, WG_BACKEND_AUTO, &dev, &used);
	if (ret < 0 && wg_read(name, WG_BACKEND_USERSPACE, &dev, &used) == 0)
		ret = 0;
	if (ret < 0) {
		log_debug("inspect: no key file '%s' and no WireGuard device '%s'", path, name);
		return ret;
	}
	memcpy(pub, dev->public_key, WG_KEY_LEN);
	explicit_bzero(dev->private_key, WG_KEY_LEN);
	wg_device_free(dev);
	return 0;
}
