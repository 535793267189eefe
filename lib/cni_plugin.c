// SPDX-License-Identifier: Apache-2.0
/*
 * The CNI verbs. ADD allocates first and wires second, and undoes both on failure, so
 * a plugin killed at any instant leaves at most an allocation and a host veth that
 * are both named by (container id, ifname): exactly what DEL and GC remove.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "cni_config.h"
#include "cni_plugin.h"
#include "datapath.h"
#include "ipam.h"
#include "log.h"
#include "netlink.h"
#include "netns.h"
#include "nodestate.h"

/*
 * The kernel caps IFLA_IFALIAS at 255 bytes with libnl's terminating NUL: 254 characters.
 * A longer alias (long container ids are valid) is cut, never refused: GC only reads
 * its "twill <network> " prefix.
 */
#define HOST_VETH_ALIAS_SIZE 255
/* An ADD tags its veth within milliseconds of creating it (see gc_veths). */
#define GC_UNTAGGED_GRACE_MS 3000

/* Pod CIDR and MTU, from the config or else from the agent's node state. */
struct node_params {
	char pod_cidr[CIDR_STR_LEN];
	unsigned int mtu;
};

struct pod_wiring {
	struct nl_link_info host;
	struct nl_link_info pod;
	/* setns back to the host failed: this process must not touch anything any more */
	bool stuck_in_pod;
};

void cni_host_veth_name(const char *container_id, const char *ifname, char out[IF_NAMESIZE])
{
	uint64_t h = 0xcbf29ce484222325ull;
	const unsigned char *p;

	for (p = (const unsigned char *)container_id; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	/* the separator keeps ("ab","c") and ("a","bc") apart */
	h = (h ^ 0) * 0x100000001b3ull;
	for (p = (const unsigned char *)ifname; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	snprintf(out, IF_NAMESIZE, CNI_HOST_VETH_PREFIX "%013llx",
		 (unsigned long long)(h & 0xfffffffffffffull));
}

bool cni_host_veth_kernel_path(int ifindex)
{
	char alias[HOST_VETH_ALIAS_SIZE];

	return nl_link_get_alias(ifindex, alias, sizeof(alias)) == 0 &&
	       strstr(alias, " " CNI_HOST_VETH_KERNEL_PATH " ");
}

static bool is_host_veth_name(const char *name)
{
	if (strncmp(name, CNI_HOST_VETH_PREFIX, 2) != 0 || strlen(name) != 15)
		return false;
	for (const char *p = name + 2; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static struct in_addr gateway_addr(void)
{
	struct in_addr gw;

	inet_pton(AF_INET, CNI_GATEWAY, &gw);
	return gw;
}

static const char *ip_str(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static int env_fail(struct cni_error *err, const char *var, const char *value, const char *why)
{
	char shown[65];
	size_t i;

	/* a control character quoted back would forge lines in the log */
	for (i = 0; value && value[i] && i < sizeof(shown) - 1; i++)
		shown[i] = (unsigned char)value[i] < ' ' || value[i] == 0x7f ? '?' : value[i];
	shown[i] = '\0';
	cni_error_set(err, CNI_ERR_INVALID_ENV, "%s '%s' %s", var, shown, why);
	return -EINVAL;
}

static int check_container_id(const char *id, struct cni_error *err)
{
	if (!id || !*id)
		return env_fail(err, "CNI_CONTAINERID", id, "is missing");
	if (strlen(id) >= sizeof(((struct ipam_allocation *)0)->container_id))
		return env_fail(err, "CNI_CONTAINERID", id, "is longer than 255 characters");
	for (const char *p = id; *p; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9');

		if (!alnum && (p == id || (*p != '_' && *p != '.' && *p != '-')))
			return env_fail(err, "CNI_CONTAINERID", id,
					"must start with a letter or digit and hold only letters, digits, '_', '.', '-'");
	}
	return 0;
}

static int check_ifname(const char *ifname, struct cni_error *err)
{
	if (!ifname || !*ifname)
		return env_fail(err, "CNI_IFNAME", ifname, "is missing");
	if (strlen(ifname) >= IF_NAMESIZE)
		return env_fail(err, "CNI_IFNAME", ifname, "is longer than 15 characters");
	if (!strcmp(ifname, ".") || !strcmp(ifname, ".."))
		return env_fail(err, "CNI_IFNAME", ifname, "is not an interface name");
	for (const unsigned char *p = (const unsigned char *)ifname; *p; p++) {
		if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
			return env_fail(err, "CNI_IFNAME", ifname,
					"may not hold '/', ':', white space or control characters");
		/* the IPAM store keeps printable ASCII only (logs and JSON stay unambiguous) */
		if (*p > 0x7f)
			return env_fail(err, "CNI_IFNAME", ifname,
					"holds non-ASCII characters: twill accepts printable ASCII only");
	}
	return 0;
}

static int check_netns(const char *netns, struct cni_error *err)
{
	if (!netns || !*netns)
		return env_fail(err, "CNI_NETNS", netns, "is missing");
	if (netns[0] != '/')
		return env_fail(err, "CNI_NETNS", netns, "is not an absolute path");
	return 0;
}

static int resolve_node(const struct cni_config *cfg, struct node_params *np,
			struct cni_error *err)
{
	struct nodestate *ns = NULL;
	int r = 0;

	memset(np, 0, sizeof(*np));
	if (cfg->has_pod_cidr)
		snprintf(np->pod_cidr, sizeof(np->pod_cidr), "%s", cfg->pod_cidr);
	np->mtu = cfg->mtu;
	if (np->pod_cidr[0] && np->mtu)
		return 0;

	ns = calloc(1, sizeof(*ns));
	if (!ns) {
		cni_error_set(err, CNI_ERR_INTERNAL, "out of memory");
		return -ENOMEM;
	}
	r = nodestate_read(cfg->state_dir, ns);
	if (r == -ENOENT) {
		cni_error_set(err, CNI_ERR_INVALID_CONFIG,
			      "field \"%s\" is missing and there is no node state in '%s'",
			      np->pod_cidr[0] ? "mtu" : "podCIDR", cfg->state_dir);
		cni_error_details(err, "is twilld running? it writes %s/node.json", cfg->state_dir);
		goto cleanup;
	}
	if (r < 0) {
		cni_error_set(err, CNI_ERR_IO, "cannot read the node state in '%s': %s",
			      cfg->state_dir, strerror(-r));
		goto cleanup;
	}
	if (!np->pod_cidr[0]) {
		if (!ns->pod_net.s_addr || ns->pod_prefixlen != 24) {
			cni_error_set(err, CNI_ERR_INVALID_CONFIG,
				      "field \"podCIDR\" is missing and the node state in '%s' has none",
				      cfg->state_dir);
			r = -EINVAL;
			goto cleanup;
		}
		cidr_format(ns->pod_net, ns->pod_prefixlen, np->pod_cidr);
	}
	if (!np->mtu) {
		if (ns->mtu < 576 || ns->mtu > 65535) {
			cni_error_set(err, CNI_ERR_INVALID_CONFIG,
				      "field \"mtu\" is missing and the node state in '%s' has none",
				      cfg->state_dir);
			r = -EINVAL;
			goto cleanup;
		}
		np->mtu = ns->mtu;
	}
	r = 0;
cleanup:
	free(ns);
	return r;
}

static int ipam_fail(struct cni_error *err, const struct cni_config *cfg, const char *what,
		     int r)
{
	if (r == -ETIMEDOUT)
		cni_error_set(err, CNI_ERR_TRY_AGAIN,
			      "IPAM lock '%s/ipam/%s/lock' is held by another process (waited %u s "
			      "to %s): try again", cfg->state_dir, cfg->name,
			      IPAM_LOCK_WAIT_MS / 1000, what);
	else if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EBUSY || r == -EINTR)
		cni_error_set(err, CNI_ERR_TRY_AGAIN, "IPAM store '%s/ipam/%s' is busy (%s): try again",
			      cfg->state_dir, cfg->name, what);
	else if (r == -EINVAL)
		cni_error_set(err, CNI_ERR_INVALID_CONFIG, "IPAM store '%s/ipam/%s' refused to %s",
			      cfg->state_dir, cfg->name, what);
	else if (r == -EEXIST)
		cni_error_set(err, CNI_ERR_INVALID_CONFIG,
			      "IPAM store '%s/ipam/%s' belongs to another podCIDR: cannot %s",
			      cfg->state_dir, cfg->name, what);
	else if (r == -EBADMSG)
		cni_error_set(err, CNI_ERR_IO,
			      "IPAM store '%s/ipam/%s' is corrupt (left untouched): cannot %s",
			      cfg->state_dir, cfg->name, what);
	else
		cni_error_set(err, CNI_ERR_IO, "IPAM store '%s/ipam/%s': cannot %s: %s",
			      cfg->state_dir, cfg->name, what, strerror(-r));
	return r;
}

static int open_store(const struct cni_config *cfg, const struct node_params *np,
		      struct ipam **out, struct cni_error *err)
{
	int r = ipam_open(cfg->state_dir, cfg->name, np->pod_cidr, out);

	if (r < 0)
		return ipam_fail(err, cfg, "open", r);
	return 0;
}

static void host_sysctls(const char *host)
{
	char path[96];

	/* strict reverse-path check: the pod's /32 route points back through this veth */
	snprintf(path, sizeof(path), "net/ipv4/conf/%s/rp_filter", host);
	if (sysctl_write(path, "1") < 0)
		log_debug("%s: cannot set rp_filter", host);
	snprintf(path, sizeof(path), "net/ipv6/conf/%s/accept_ra", host);
	sysctl_write(path, "0");   /* absent when IPv6 is off: fine */
}

/* Creates and configures the veth pair; on failure the caller deletes the host end. */
static int wire(const struct cni_request *req, const struct cni_config *cfg,
		const struct node_params *np, int nsfd, struct in_addr addr,
		const char *host_name, struct pod_wiring *w, bool *created,
		struct cni_error *err)
{
	struct netns_saved saved = { .original_fd = -1 };
	struct in_addr gw = gateway_addr(), any = { 0 };
	char alias[HOST_VETH_ALIAS_SIZE], path[96], s[INET_ADDRSTRLEN];
	const char *step;
	int r;

	step = "create the veth pair";
	r = nl_veth_create(host_name, req->ifname, nsfd, np->mtu);
	if (r == -EEXIST && nl_link_get(host_name, &w->host) == 0) {
		/* same (container id, ifname): left over by an ADD that was killed */
		log_info("removing leftover host veth '%s' of container '%s'", host_name,
			 req->container_id);
		nl_link_delete(w->host.ifindex);
		r = nl_veth_create(host_name, req->ifname, nsfd, np->mtu);
	}
	if (r == -EEXIST) {
		cni_error_set(err, CNI_ERR_WIRING, "interface '%s' already exists in CNI_NETNS '%s'",
			      req->ifname, req->netns);
		return r;
	}
	if (r < 0)
		goto fail;
	*created = true;

	step = "find the host veth";
	r = nl_link_get(host_name, &w->host);
	if (r < 0)
		goto fail;
	/* the marker sits before the (possibly cut) container id, so it always survives */
	snprintf(alias, sizeof(alias), "twill %s %s%s%s %s", cfg->name,
		 cfg->bandwidth_limited ? CNI_HOST_VETH_KERNEL_PATH : "",
		 cfg->bandwidth_limited ? " " : "", req->ifname, req->container_id);
	step = "tag the host veth";
	r = nl_link_set_alias(w->host.ifindex, alias);
	if (r < 0)
		goto fail;
	host_sysctls(host_name);
	step = "set the host veth up";
	r = nl_link_set_up(w->host.ifindex);
	if (r < 0)
		goto fail;

	step = "enter CNI_NETNS";
	r = netns_enter(nsfd, &saved);
	if (r < 0)
		goto fail;
	step = "find the pod interface";
	r = nl_link_get(req->ifname, &w->pod);
	if (r < 0)
		goto fail;
	snprintf(path, sizeof(path), "net/ipv6/conf/%s/accept_ra", req->ifname);
	sysctl_write(path, "0");
	step = "set the pod interface up";
	r = nl_link_set_up(w->pod.ifindex);
	if (r < 0)
		goto fail;
	step = "add the pod address";
	r = nl_addr_add(w->pod.ifindex, addr, 32);
	if (r < 0)
		goto fail;
	step = "add the gateway route in the pod";
	r = nl_route_replace(&(struct nl_route){ .dst = gw, .dst_len = 32,
						 .ifindex = w->pod.ifindex, .scope_link = true });
	if (r < 0)
		goto fail;
	step = "add the gateway neighbour in the pod";
	r = nl_neigh_add_permanent(w->pod.ifindex, gw, w->host.mac);
	if (r < 0)
		goto fail;
	step = "add the default route in the pod";
	r = nl_route_replace(&(struct nl_route){ .dst = any, .dst_len = 0, .gateway = gw,
						 .ifindex = w->pod.ifindex });
	if (r < 0)
		goto fail;
	r = netns_leave(&saved);
	if (r < 0)
		goto stuck;

	step = "add the host route to the pod";
	r = nl_route_replace(&(struct nl_route){ .dst = addr, .dst_len = 32,
						 .ifindex = w->host.ifindex, .scope_link = true });
	if (r < 0)
		goto fail;
	/* saves the first packet an ARP round trip; the pod's MAC never changes */
	step = "add the pod neighbour on the host";
	r = nl_neigh_add_permanent(w->host.ifindex, addr, w->pod.mac);
	if (r < 0)
		goto fail;
	step = "enable IPv4 forwarding";
	r = sysctl_write("net/ipv4/ip_forward", "1");
	if (r < 0)
		goto fail;
	return 0;
fail:
	if (netns_leave(&saved) < 0)
		goto stuck;
	cni_error_set(err, CNI_ERR_WIRING, "cannot %s for pod address %s (host veth '%s', %s): %s",
		      step, ip_str(addr, s), host_name, req->ifname, strerror(-r));
	return r;
stuck:
	/*
	 * Still in the pod's namespace: deleting "the host veth" or releasing the address
	 * from here would act on the wrong namespace and could hand the pod's address to
	 * another pod. Leave both to the DEL the runtime sends after a failed ADD.
	 */
	w->stuck_in_pod = true;
	cni_error_set(err, CNI_ERR_INTERNAL,
		      "cannot return to the host network namespace after wiring pod address %s "
		      "(host veth '%s'): left for DEL", ip_str(addr, s), host_name);
	return -EIO;
}

static void unwire(const char *host_name)
{
	struct nl_link_info host;
	int r;

	r = nl_link_get(host_name, &host);
	if (r == 0)
		r = nl_link_delete(host.ifindex);
	if (r < 0 && r != -ENODEV)
		log_warn("cannot delete host veth '%s': %s", host_name, strerror(-r));
}

/* The agent's pinned dataplane, or NULL (kernel routing) when none is loaded. */
static int dataplane_open(const struct cni_config *cfg, struct datapath **out)
{
	int r = datapath_open_pinned(cfg->bpf_pin_dir, out);

	if (r == -ENOENT) {
		log_debug("no BPF dataplane pinned in '%s': kernel routing only", cfg->bpf_pin_dir);
		*out = NULL;
		return 0;
	}
	if (r < 0)
		log_err("cannot open the BPF dataplane pinned in '%s': %s", cfg->bpf_pin_dir,
			strerror(-r));
	return r;
}

static int dataplane_register(const struct cni_config *cfg, struct in_addr addr,
			      const struct pod_wiring *w, struct cni_error *err)
{
	struct twill_endpoint_key key = { .addr = addr.s_addr };
	struct twill_endpoint_value val = { .host_ifindex = (__u32)w->host.ifindex };
	struct datapath *dp = NULL;
	const char *step = "open";
	char s[INET_ADDRSTRLEN];
	int r;

	r = dataplane_open(cfg, &dp);
	if (r < 0 || !dp)
		goto cleanup;
	memcpy(val.pod_mac, w->pod.mac, 6);
	memcpy(val.host_mac, w->host.mac, 6);
	step = "register the endpoint in";
	r = datapath_endpoint_set(dp, &key, &val);
	if (r < 0)
		goto cleanup;
	step = "attach the pod program of";
	r = datapath_attach_pod(dp, w->host.ifindex);
	if (r < 0)
		datapath_endpoint_delete(dp, &key);
cleanup:
	if (r < 0)
		cni_error_set(err, CNI_ERR_WIRING,
			      "cannot %s the BPF dataplane in '%s' for pod address %s: %s", step,
			      cfg->bpf_pin_dir, ip_str(addr, s), strerror(-r));
	datapath_close(dp);
	return r;
}

/* Drops the endpoint of addr (when known) and any left on host_ifindex. */
static void dataplane_forget(const struct cni_config *cfg, struct in_addr addr, int host_ifindex)
{
	struct twill_endpoint_key *keys = NULL;
	struct twill_endpoint_value *vals = NULL;
	struct datapath *dp = NULL;
	size_t n = 0;

	if (dataplane_open(cfg, &dp) < 0 || !dp)
		return;
	if (addr.s_addr) {
		struct twill_endpoint_key key = { .addr = addr.s_addr };
		int r = datapath_endpoint_delete(dp, &key);

		if (r < 0 && r != -ENOENT)
			log_warn("cannot remove the BPF endpoint of %s: %s",
				 inet_ntoa(addr), strerror(-r));
	}
	if (host_ifindex > 0 && datapath_endpoint_list(dp, &keys, &vals, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if ((int)vals[i].host_ifindex == host_ifindex)
				datapath_endpoint_delete(dp, &keys[i]);
	free(keys);
	free(vals);
	datapath_close(dp);
}

static int cmd_add(const struct cni_request *req, const struct cni_config *cfg,
		   json_t **result, struct cni_error *err)
{
	struct cni_result res = { 0 };
	struct node_params np;
	struct pod_wiring w = { 0 };
	struct ipam *store = NULL;
	struct in_addr addr;
	char host_name[IF_NAMESIZE], s[INET_ADDRSTRLEN];
	bool allocated = false, created = false;
	int nsfd = -1, r;

	if ((r = check_container_id(req->container_id, err)) < 0 ||
	    (r = check_netns(req->netns, err)) < 0 || (r = check_ifname(req->ifname, err)) < 0)
		return r;
	r = resolve_node(cfg, &np, err);
	if (r < 0)
		return r;
	cni_host_veth_name(req->container_id, req->ifname, host_name);

	nsfd = netns_open(req->netns);
	if (nsfd < 0) {
		r = nsfd;
		env_fail(err, "CNI_NETNS", req->netns, "cannot be opened as a network namespace");
		cni_error_details(err, "%s", strerror(-r));
		goto cleanup;
	}
	r = open_store(cfg, &np, &store, err);
	if (r < 0)
		goto cleanup;
	r = ipam_allocate(store, req->container_id, req->ifname, &addr);
	if (r == -ENOSPC) {
		size_t used = 0, cap = 0;

		ipam_usage(store, &used, &cap);
		cni_error_set(err, CNI_ERR_ADDRESS_EXHAUSTED,
			      "no free address in pod CIDR %s (%zu of %zu in use)", np.pod_cidr,
			      used, cap);
		goto cleanup;
	}
	if (r < 0) {
		ipam_fail(err, cfg, "allocate an address", r);
		goto cleanup;
	}
	allocated = true;

	r = wire(req, cfg, &np, nsfd, addr, host_name, &w, &created, err);
	if (r < 0)
		goto cleanup;
	if (cfg->bandwidth_limited) {
		/*
		 * The bandwidth plugin chained after twill shapes with qdiscs on the host veth:
		 * its ingress qdisc cannot share the veth with twill's clsact, and the BPF
		 * redirects (straight into the peer) would bypass its tbf. Such a pod takes
		 * the kernel's routes both ways, as every pod does without the BPF dataplane.
		 */
		dataplane_forget(cfg, addr, 0);
		log_info("ADD %s %s: runtimeConfig.bandwidth sets limits: no BPF endpoint or "
			 "program, the pod takes the kernel route path", req->container_id,
			 req->ifname);
	} else {
		/* last: a pod the dataplane knows is fully wired */
		r = dataplane_register(cfg, addr, &w, err);
		if (r < 0)
			goto cleanup;
	}

	res.n_interfaces = 2;
	snprintf(res.interfaces[0].name, IF_NAMESIZE, "%s", host_name);
	memcpy(res.interfaces[0].mac, w.host.mac, 6);
	res.interfaces[0].has_mac = true;
	res.interfaces[0].mtu = np.mtu;
	snprintf(res.interfaces[1].name, IF_NAMESIZE, "%s", req->ifname);
	memcpy(res.interfaces[1].mac, w.pod.mac, 6);
	res.interfaces[1].has_mac = true;
	snprintf(res.interfaces[1].sandbox, PATH_MAX, "%s", req->netns);
	res.interfaces[1].mtu = np.mtu;
	res.n_ips = 1;
	res.ips[0] = (struct cni_ip){ .addr = addr, .prefixlen = 32, .gateway = gateway_addr(),
				      .interface = 1 };
	res.n_routes = 1;
	res.routes[0] = (struct cni_route){ .gw = gateway_addr() };
	res.dns = cfg->dns;
	r = cni_result_encode(&res, cfg->version, result);
	if (r < 0) {
		cni_error_set(err, CNI_ERR_INTERNAL, "cannot encode the result: %s", strerror(-r));
		goto cleanup;
	}
	log_info("ADD %s %s: %s/32 on host veth '%s'", req->container_id, req->ifname,
		 ip_str(addr, s), host_name);
cleanup:
	if (w.stuck_in_pod) {
		log_err("ADD %s %s: stuck in CNI_NETNS: the host veth and the address are left "
			"for DEL", req->container_id, req->ifname);
		allocated = created = false;
	}
	if (r < 0 && created)
		unwire(host_name);
	if (r < 0 && allocated && ipam_release(store, req->container_id, req->ifname, NULL) < 0)
		log_warn("cannot release the address of '%s' %s after a failed ADD",
			 req->container_id, req->ifname);
	ipam_close(store);
	if (nsfd >= 0)
		close(nsfd);
	return r;
}

/*
 * The store DEL releases from: the one the config or node state names, else the store
 * as it is. After the node's pod CIDR changed, or with no pod CIDR at hand at all, the
 * old pods' addresses must still go back. Returns 0 (found), -ENOENT (nothing
 * allocated) with *store open, or another error (err set) with *store NULL.
 */
static int del_lookup(const struct cni_request *req, const struct cni_config *cfg,
		      struct ipam **store, struct in_addr *addr, struct cni_error *err)
{
	struct cni_error scratch;
	struct node_params np;
	int r;

	*store = NULL;
	if (resolve_node(cfg, &np, &scratch) < 0 && !np.pod_cidr[0])
		log_info("DEL %s %s: %s: releasing from the store as it is", req->container_id,
			 req->ifname, scratch.msg);
	if (np.pod_cidr[0]) {
		r = open_store(cfg, &np, store, err);
		if (r < 0)
			return r;
		r = ipam_find(*store, req->container_id, req->ifname, addr);
		if (r != -EEXIST)
			goto done;
		log_warn("DEL %s %s: the IPAM store was made for another pod CIDR than %s: "
			 "releasing from it as it is", req->container_id, req->ifname, np.pod_cidr);
		ipam_close(*store);
		*store = NULL;
	}
	r = ipam_open_existing(cfg->state_dir, cfg->name, store);
	if (r == -ENOENT) {
		log_info("DEL %s %s: network '%s' has no IPAM store", req->container_id,
			 req->ifname, cfg->name);
		return -ENOENT;
	}
	if (r < 0)
		return ipam_fail(err, cfg, "open", r);
	r = ipam_find(*store, req->container_id, req->ifname, addr);
done:
	if (r < 0 && r != -ENOENT) {
		ipam_fail(err, cfg, "release the address", r);
		ipam_close(*store);
		*store = NULL;
	}
	return r;
}

static int cmd_del(const struct cni_request *req, const struct cni_config *cfg,
		   struct cni_error *err)
{
	struct nl_link_info host = { .ifindex = 0 };
	struct ipam *store = NULL;
	struct in_addr addr = { 0 };
	char host_name[IF_NAMESIZE], s[INET_ADDRSTRLEN];
	int r, found;

	if ((r = check_container_id(req->container_id, err)) < 0 ||
	    (r = check_ifname(req->ifname, err)) < 0)
		return r;
	cni_host_veth_name(req->container_id, req->ifname, host_name);

	found = del_lookup(req, cfg, &store, &addr, err);
	/*
	 * The veth and the endpoint are named by (container id, ifname) and the veth: they
	 * go whatever the store says, even when it cannot be read. Dataplane, then veth,
	 * then address: a released address is never still wired.
	 */
	if (nl_link_get(host_name, &host) < 0)
		host.ifindex = 0;
	dataplane_forget(cfg, addr, host.ifindex);
	unwire(host_name);
	if (found < 0 && found != -ENOENT) {
		/* a corrupt or unreadable store is never rewritten: report, having unwired */
		r = found;
		goto cleanup;
	}
	r = 0;
	if (!store)
		goto cleanup;
	r = ipam_release(store, req->container_id, req->ifname, &addr);
	if (r == -ENOENT) {
		log_info("DEL %s %s: no address allocated", req->container_id, req->ifname);
		r = 0;
	} else if (r < 0) {
		ipam_fail(err, cfg, "release the address", r);
	} else {
		log_info("DEL %s %s: released %s", req->container_id, req->ifname,
			 ip_str(addr, s));
	}
cleanup:
	ipam_close(store);
	return r;
}

static int check_fail(struct cni_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int check_fail(struct cni_error *err, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cni_error_set(err, CNI_ERR_CHECK_FAILED, "%s", msg);
	return -EINVAL;
}

static const struct nl_route *route_find(const struct nl_route *routes, size_t n,
					 struct in_addr dst, unsigned int dst_len)
{
	for (size_t i = 0; i < n; i++)
		if (routes[i].dst.s_addr == dst.s_addr && routes[i].dst_len == dst_len)
			return &routes[i];
	return NULL;
}

/* The pod's link-local gateway: its link route and its permanent neighbour entry. */
static int check_pod_gateway(const struct cni_request *req, const struct nl_link_info *pod,
			     const struct nl_link_info *host, const struct nl_route *routes,
			     size_t n, struct cni_error *err)
{
	const struct nl_route *rt = route_find(routes, n, gateway_addr(), 32);
	char m1[18], m2[18];
	uint8_t mac[6];
	bool permanent;
	int r;

	if (!rt || rt->gateway.s_addr || !rt->scope_link)
		return check_fail(err, "gateway route %s dev %s scope link is missing in the pod",
				  CNI_GATEWAY, req->ifname);
	r = nl_neigh_get(pod->ifindex, gateway_addr(), mac, &permanent);
	if (r == -ENOENT)
		return check_fail(err, "gateway neighbour %s on '%s' is missing in the pod",
				  CNI_GATEWAY, req->ifname);
	if (r < 0) {
		cni_error_set(err, CNI_ERR_IO, "cannot read the neighbours in CNI_NETNS: %s",
			      strerror(-r));
		return r;
	}
	cni_mac_format(mac, m1);
	cni_mac_format(host->mac, m2);
	if (memcmp(mac, host->mac, 6) != 0)
		return check_fail(err, "gateway neighbour %s on '%s' has MAC %s, host veth '%s' "
				  "has %s", CNI_GATEWAY, req->ifname, m1, host->name, m2);
	if (!permanent)
		return check_fail(err, "gateway neighbour %s on '%s' is not permanent",
				  CNI_GATEWAY, req->ifname);
	return 0;
}

static int check_pod(const struct cni_request *req, const struct cni_result *prev,
		     int iface, const struct cni_ip *ip, unsigned int mtu,
		     const struct nl_link_info *host, struct cni_error *err)
{
	struct nl_link_info pod;
	struct nl_route *routes = NULL;
	char m1[18], m2[18], buf[CIDR_STR_LEN];
	size_t n = 0;
	int r;

	r = nl_link_get(req->ifname, &pod);
	if (r < 0)
		return check_fail(err, "interface '%s' is missing in CNI_NETNS '%s'", req->ifname,
				  req->netns);
	if (prev->interfaces[iface].has_mac &&
	    memcmp(prev->interfaces[iface].mac, pod.mac, 6) != 0) {
		cni_mac_format(pod.mac, m1);
		cni_mac_format(prev->interfaces[iface].mac, m2);
		return check_fail(err, "interface '%s' has MAC %s, prevResult says %s", req->ifname,
				  m1, m2);
	}
	if (mtu && pod.mtu != mtu) {
		return check_fail(err, "interface '%s' has MTU %u, config says %u", req->ifname,
				  pod.mtu, mtu);
	}
	if (!pod.up)
		return check_fail(err, "interface '%s' is down", req->ifname);
	if (!nl_addr_present(pod.ifindex, ip->addr, ip->prefixlen)) {
		cidr_format(ip->addr, (uint8_t)ip->prefixlen, buf);
		return check_fail(err, "interface '%s' lacks address %s", req->ifname, buf);
	}
	r = nl_route_list(pod.ifindex, &routes, &n);
	if (r < 0) {
		cni_error_set(err, CNI_ERR_IO, "cannot list the routes in CNI_NETNS: %s",
			      strerror(-r));
		return r;
	}
	r = check_pod_gateway(req, &pod, host, routes, n, err);
	if (r < 0) {
		free(routes);
		return r;
	}
	for (size_t i = 0; i < prev->n_routes; i++) {
		const struct cni_route *want = &prev->routes[i];
		bool found = false;

		for (size_t k = 0; k < n && !found; k++)
			found = routes[k].dst.s_addr == want->dst.s_addr &&
				routes[k].dst_len == want->dst_len &&
				(!want->gw.s_addr || routes[k].gateway.s_addr == want->gw.s_addr);
		if (!found) {
			char gw[INET_ADDRSTRLEN];

			cidr_format(want->dst, (uint8_t)want->dst_len, buf);
			free(routes);
			return check_fail(err, "route %s via %s is missing in the pod (%s)", buf,
					  want->gw.s_addr ? ip_str(want->gw, gw) : "link",
					  req->ifname);
		}
	}
	free(routes);
	return 0;
}

/* The host's /32 route to the pod, through its host veth. */
static int check_host_route(struct in_addr addr, const struct nl_link_info *host,
			    struct cni_error *err)
{
	struct nl_route *routes = NULL;
	const struct nl_route *rt;
	char s[INET_ADDRSTRLEN], dev[IF_NAMESIZE + 16];
	struct nl_link_info other;
	size_t n = 0;
	int r;

	r = nl_route_list(0, &routes, &n);
	if (r < 0) {
		cni_error_set(err, CNI_ERR_IO, "cannot list the host's routes: %s", strerror(-r));
		return r;
	}
	rt = route_find(routes, n, addr, 32);
	if (!rt)
		r = check_fail(err, "host route %s/32 dev %s is missing", ip_str(addr, s),
			       host->name);
	else if (rt->ifindex != host->ifindex || rt->gateway.s_addr) {
		if (nl_link_get_by_index(rt->ifindex, &other) == 0)
			snprintf(dev, sizeof(dev), "'%s'", other.name);
		else
			snprintf(dev, sizeof(dev), "ifindex %d", rt->ifindex);
		r = check_fail(err, "host route %s/32 goes %s%s, not to host veth '%s'",
			       ip_str(addr, s), rt->gateway.s_addr ? "via a gateway on " : "to ",
			       dev, host->name);
	}
	free(routes);
	return r;
}

static int check_dataplane(const struct cni_config *cfg, struct in_addr addr,
			   const struct nl_link_info *host, struct cni_error *err)
{
	struct twill_endpoint_value val;
	struct datapath *dp = NULL;
	char prog[64], s[INET_ADDRSTRLEN];
	int r;

	r = dataplane_open(cfg, &dp);
	if (r < 0) {
		cni_error_set(err, CNI_ERR_IO, "cannot open the BPF dataplane in '%s': %s",
			      cfg->bpf_pin_dir, strerror(-r));
		return r;
	}
	if (!dp)
		return 0;
	r = datapath_endpoint_lookup(dp, addr.s_addr, &val);
	if (cni_host_veth_kernel_path(host->ifindex)) {
		/* ADD left it to the kernel (bandwidth limits): an endpoint would bypass them */
		r = r == 0 ? check_fail(err, "BPF endpoint of %s is present, but host veth '%s' "
					"takes the kernel path (bandwidth limits)",
					ip_str(addr, s), host->name) : 0;
		goto cleanup;
	}
	if (cfg->bandwidth_limited) {
		r = check_fail(err, "runtimeConfig.bandwidth sets limits, but host veth '%s' is "
			       "on the BPF path, which bypasses them", host->name);
		goto cleanup;
	}
	if (r < 0 || (int)val.host_ifindex != host->ifindex ||
	    memcmp(val.host_mac, host->mac, 6) != 0) {
		r = check_fail(err, "BPF endpoint of %s is %s (host veth '%s')",
			       ip_str(addr, s), r < 0 ? "missing" : "stale", host->name);
		goto cleanup;
	}
	r = datapath_query_attached(host->ifindex, false, prog, sizeof(prog));
	if (r < 0 || strcmp(prog, TWILL_PROG_POD) != 0) {
		r = check_fail(err, "host veth '%s' lacks the BPF program '%s'", host->name,
			       TWILL_PROG_POD);
		goto cleanup;
	}
	r = 0;
cleanup:
	datapath_close(dp);
	return r;
}

static int cmd_check(const struct cni_request *req, const struct cni_config *cfg,
		     struct cni_error *err)
{
	struct netns_saved saved = { .original_fd = -1 };
	struct cni_result prev = { 0 };
	struct node_params np;
	struct nl_link_info host;
	struct ipam *store = NULL;
	struct in_addr have;
	const struct cni_ip *ip = NULL;
	char host_name[IF_NAMESIZE], s[INET_ADDRSTRLEN], s2[INET_ADDRSTRLEN];
	bool have_veth;
	int iface = -1, nsfd = -1, r;

	if ((r = check_container_id(req->container_id, err)) < 0 ||
	    (r = check_netns(req->netns, err)) < 0 || (r = check_ifname(req->ifname, err)) < 0)
		return r;
	if (!cfg->prev_result) {
		cni_error_set(err, CNI_ERR_INVALID_CONFIG, "field \"prevResult\" is missing");
		return -EINVAL;
	}
	r = cni_result_decode(cfg->prev_result, &prev, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < prev.n_interfaces && iface < 0; i++)
		if (!strcmp(prev.interfaces[i].name, req->ifname) && prev.interfaces[i].sandbox[0])
			iface = (int)i;
	for (size_t i = 0; i < prev.n_ips && iface >= 0 && !ip; i++)
		if (prev.ips[i].interface == iface)
			ip = &prev.ips[i];
	if (!ip) {
		r = check_fail(err, "prevResult has no address for CNI_IFNAME '%s'", req->ifname);
		goto cleanup;
	}
	r = resolve_node(cfg, &np, err);
	if (r < 0)
		goto cleanup;
	r = open_store(cfg, &np, &store, err);
	if (r < 0)
		goto cleanup;
	r = ipam_find(store, req->container_id, req->ifname, &have);
	cni_host_veth_name(req->container_id, req->ifname, host_name);
	have_veth = nl_link_get(host_name, &host) == 0;
	if (r == -ENOENT && !have_veth) {
		cni_error_set(err, CNI_ERR_UNKNOWN_CONTAINER,
			      "container '%s' (%s) is unknown: no address allocated, no host veth "
			      "'%s'", req->container_id, req->ifname, host_name);
		r = -ENOENT;
		goto cleanup;
	}
	if (r == -ENOENT || (r == 0 && have.s_addr != ip->addr.s_addr)) {
		r = check_fail(err, "address %s of prevResult is not the one allocated to "
			       "container '%s' (%s)", ip_str(ip->addr, s), req->container_id,
			       r == 0 ? ip_str(have, s2) : "none");
		goto cleanup;
	}
	if (r < 0) {
		ipam_fail(err, cfg, "look up the address", r);
		goto cleanup;
	}

	if (!have_veth || !host.up) {
		r = check_fail(err, "host veth '%s' of container '%s' is %s", host_name,
			       req->container_id, have_veth ? "down" : "missing");
		goto cleanup;
	}
	r = check_host_route(ip->addr, &host, err);
	if (r < 0)
		goto cleanup;

	r = check_dataplane(cfg, ip->addr, &host, err);
	if (r < 0)
		goto cleanup;

	nsfd = netns_open(req->netns);
	if (nsfd < 0) {
		r = nsfd;
		env_fail(err, "CNI_NETNS", req->netns, "cannot be opened as a network namespace");
		goto cleanup;
	}
	r = netns_enter(nsfd, &saved);
	if (r < 0) {
		cni_error_set(err, CNI_ERR_INTERNAL, "cannot enter CNI_NETNS '%s'", req->netns);
		goto cleanup;
	}
	r = check_pod(req, &prev, iface, ip, np.mtu, &host, err);
	if (netns_leave(&saved) < 0 && r == 0) {
		cni_error_set(err, CNI_ERR_INTERNAL, "cannot return to the host network namespace");
		r = -EIO;
	}
cleanup:
	if (nsfd >= 0)
		close(nsfd);
	ipam_close(store);
	cni_result_clear(&prev);
	return r;
}

struct gc_ctx {
	const struct cni_config *cfg;
};

static bool gc_keep(const struct ipam_allocation *a, void *arg)
{
	const struct gc_ctx *ctx = arg;

	for (size_t i = 0; i < ctx->cfg->n_attachments; i++)
		if (!strcmp(ctx->cfg->attachments[i].container_id, a->container_id) &&
		    !strcmp(ctx->cfg->attachments[i].ifname, a->ifname))
			return true;
	return false;
}

static bool gc_veth_valid(const struct cni_config *cfg, const char *name)
{
	char valid[IF_NAMESIZE];

	for (size_t i = 0; i < cfg->n_attachments; i++) {
		cni_host_veth_name(cfg->attachments[i].container_id, cfg->attachments[i].ifname,
				   valid);
		if (!strcmp(valid, name))
			return true;
	}
	return false;
}

static void gc_veth_remove(const struct nl_link_info *link, const char *why)
{
	int r;

	log_info("GC: removing host veth '%s' (%s)", link->name, why);
	r = nl_link_delete(link->ifindex);
	if (r < 0 && r != -ENODEV)
		log_warn("GC: cannot remove host veth '%s': %s", link->name, strerror(-r));
}

static int gc_veths(const struct cni_config *cfg)
{
	struct nl_link_info *links = NULL, now;
	char alias[256], owner[160];
	size_t n = 0, untagged = 0;
	int r;

	r = nl_link_list(&links, &n);
	if (r < 0) {
		log_err("GC: cannot list links: %s", strerror(-r));
		return r;
	}
	/*
	 * Another twill network's veths (tagged with its name) are not ours to judge, nor
	 * any veth tagged by something else. An untagged one was left by an ADD killed
	 * between creating and tagging it (the kernel ignores IFLA_IFALIAS on creation, so
	 * that window cannot be closed) - or belongs to an ADD in flight, of any network,
	 * that tags it a moment later. So an untagged veth goes only once it has stayed
	 * untagged for GC_UNTAGGED_GRACE_MS: the kernel keeps no creation time to ask.
	 */
	snprintf(owner, sizeof(owner), "twill %s ", cfg->name);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(links[i].kind, "veth") || !is_host_veth_name(links[i].name) ||
		    gc_veth_valid(cfg, links[i].name))
			continue;
		r = nl_link_get_alias(links[i].ifindex, alias, sizeof(alias));
		if (r == -ENODATA)
			links[untagged++] = links[i];
		else if (r == 0 && strncmp(alias, owner, strlen(owner)) == 0)
			gc_veth_remove(&links[i], alias);
	}
	if (untagged) {
		log_info("GC: %zu untagged host veth(s): removing those still untagged in %d ms",
			 untagged, GC_UNTAGGED_GRACE_MS);
		usleep(GC_UNTAGGED_GRACE_MS * 1000);
	}
	for (size_t i = 0; i < untagged; i++)
		if (nl_link_get_by_index(links[i].ifindex, &now) == 0 &&
		    !strcmp(now.name, links[i].name) &&
		    nl_link_get_alias(links[i].ifindex, alias, sizeof(alias)) == -ENODATA)
			gc_veth_remove(&links[i], "untagged");
	free(links);
	return 0;
}

static int cmd_gc(const struct cni_config *cfg, struct cni_error *err)
{
	struct gc_ctx ctx = { .cfg = cfg };
	struct ipam_allocation *released = NULL;
	struct node_params np;
	struct ipam *store = NULL;
	size_t n = 0;
	char s[INET_ADDRSTRLEN];
	int r;

	if (!cfg->has_attachments) {
		cni_error_set(err, CNI_ERR_INVALID_CONFIG,
			      "field \"cni.dev/valid-attachments\" is missing");
		return -EINVAL;
	}
	r = gc_veths(cfg);
	if (r < 0) {
		cni_error_set(err, CNI_ERR_IO, "GC cannot list the host's links: %s", strerror(-r));
		return r;
	}
	r = resolve_node(cfg, &np, err);
	if (r < 0)
		return r;
	r = open_store(cfg, &np, &store, err);
	if (r < 0)
		return r;
	r = ipam_gc(store, gc_keep, &ctx, &released, &n);
	if (r < 0) {
		ipam_fail(err, cfg, "collect garbage", r);
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		dataplane_forget(cfg, released[i].addr, 0);
		log_info("GC: released %s of '%s' %s", ip_str(released[i].addr, s),
			 released[i].container_id, released[i].ifname);
	}
cleanup:
	free(released);
	ipam_close(store);
	return r;
}

static int cmd_status(const struct cni_config *cfg, struct cni_error *err)
{
	struct node_params np;
	struct ipam *store = NULL;
	size_t used = 0, cap = 0;
	char dir[PATH_MAX + 160];
	int r;

	r = resolve_node(cfg, &np, err);
	if (r < 0)
		goto unavailable;
	r = open_store(cfg, &np, &store, err);
	if (r < 0)
		goto unavailable;
	snprintf(dir, sizeof(dir), "%s/ipam/%s", cfg->state_dir, cfg->name);
	if (access(dir, W_OK) < 0) {
		r = -errno;
		cni_error_set(err, CNI_ERR_UNAVAILABLE, "state folder '%s' is not writable: %s", dir,
			      strerror(-r));
		goto cleanup;
	}
	r = ipam_usage(store, &used, &cap);
	if (r < 0) {
		ipam_fail(err, cfg, "count addresses", r);
		goto unavailable;
	}
	if (used >= cap) {
		cni_error_set(err, CNI_ERR_UNAVAILABLE, "no address left in pod CIDR %s (%zu of %zu in use)",
			      np.pod_cidr, used, cap);
		r = -ENOSPC;
		goto cleanup;
	}
	{
		struct datapath *dp = NULL;

		if (dataplane_open(cfg, &dp) < 0) {
			cni_error_set(err, CNI_ERR_UNAVAILABLE,
				      "the BPF dataplane pinned in '%s' cannot be opened",
				      cfg->bpf_pin_dir);
			r = -EIO;
			goto cleanup;
		}
		log_info("STATUS: ready, pod CIDR %s, %zu of %zu addresses in use, dataplane: %s",
			 np.pod_cidr, used, cap, dp ? "BPF" : "kernel routing (no BPF dataplane)");
		datapath_close(dp);
	}
	goto cleanup;
unavailable:
	{
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		cni_error_set(err, CNI_ERR_UNAVAILABLE, "not ready: %s", msg);
	}
cleanup:
	ipam_close(store);
	return r;
}

static json_t *version_json(enum cni_version v)
{
	json_t *j = json_object(), *a = json_array();

	for (int i = 0; i < CNI_VERSION_COUNT; i++)
		json_array_append_new(a, json_string(cni_version_str((enum cni_version)i)));
	json_object_set_new(j, "cniVersion", json_string(cni_version_str(v)));
	json_object_set_new(j, "supportedVersions", a);
	return j;
}

static void apply_logging(const struct cni_config *cfg)
{
	int r;

	if (cfg->has_log_level)
		log_set_level(cfg->log_level);
	if (cfg->log_file[0]) {
		r = log_open_file(cfg->log_file);
		if (r < 0)
			log_warn("cannot open logFile '%s': %s", cfg->log_file, strerror(-r));
	}
}

int cni_plugin_run(const struct cni_request *req, json_t **result, struct cni_error *err)
{
	struct cni_config *cfg = NULL;
	enum cni_version v = CNI_VERSION_LATEST;
	const char *cmd = req->command;
	bool status;
	int r;

	memset(err, 0, sizeof(*err));
	err->version = CNI_VERSION_LATEST;
	*result = NULL;
	if (!cmd || !*cmd)
		return env_fail(err, "CNI_COMMAND", cmd, "is missing");
	if (!strcmp(cmd, "VERSION")) {
		if (req->config_len)
			cni_config_peek_version(req->config, req->config_len, &v);
		*result = version_json(v);
		return *result ? 0 : -ENOMEM;
	}
	if (strcmp(cmd, "ADD") && strcmp(cmd, "DEL") && strcmp(cmd, "CHECK") &&
	    strcmp(cmd, "GC") && strcmp(cmd, "STATUS"))
		return env_fail(err, "CNI_COMMAND", cmd,
				"is not one of ADD, DEL, CHECK, VERSION, GC, STATUS");
	status = !strcmp(cmd, "STATUS");

	r = cni_config_parse(req->config, req->config_len, &cfg, err);
	if (r < 0) {
		if (status) {
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			cni_error_set(err, CNI_ERR_UNAVAILABLE, "network configuration is invalid: %s",
				      msg);
		}
		return r;
	}
	/* as libcni's skel: CHECK came with 0.4.0, GC and STATUS with 1.1.0 */
	if ((!strcmp(cmd, "CHECK") && cfg->version < CNI_VERSION_0_4_0) ||
	    ((!strcmp(cmd, "GC") || status) && cfg->version < CNI_VERSION_1_1_0)) {
		cni_error_set(err, CNI_ERR_INCOMPATIBLE_VERSION,
			      "cniVersion '%s' does not allow %s", cni_version_str(cfg->version),
			      cmd);
		cni_config_free(cfg);
		return -ENOTSUP;
	}
	apply_logging(cfg);
	log_debug("%s container '%s' netns '%s' ifname '%s' network '%s' (%s)", cmd,
		  req->container_id ? req->container_id : "", req->netns ? req->netns : "",
		  req->ifname ? req->ifname : "", cfg->name, cni_version_str(cfg->version));

	if (!strcmp(cmd, "ADD"))
		r = cmd_add(req, cfg, result, err);
	else if (!strcmp(cmd, "DEL"))
		r = cmd_del(req, cfg, err);
	else if (!strcmp(cmd, "CHECK"))
		r = cmd_check(req, cfg, err);
	else if (!strcmp(cmd, "GC"))
		r = cmd_gc(cfg, err);
	else
		r = cmd_status(cfg, err);
	if (r < 0) {
		if (!err->code)
			cni_error_set(err, CNI_ERR_INTERNAL, "%s failed: %s", cmd, strerror(-r));
		log_err("%s '%s' %s: %s%s%s", cmd, req->container_id ? req->container_id : "",
			req->ifname ? req->ifname : "", err->msg, err->details[0] ? ": " : "",
			err->details);
	}
	cni_config_free(cfg);
	return r;
}
