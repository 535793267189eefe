// SPDX-License-Identifier: Apache-2.0
/*
 * The node agent. Every reconcile converges the node on the topology and touches only
 * what differs, so it is safe to run at any moment: at start (adopting what a previous
 * agent left running), on every topology change, on SIGHUP and periodically. Exiting
 * leaves the dataplane in place: pods keep talking through an agent restart.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cidr.h"
#include "cni_plugin.h"
#include "conflist.h"
#include "datapath.h"
#include "ipam.h"
#include "kube.h"
#include "log.h"
#include "metrics.h"
#include "mtu.h"
#include "netlink.h"
#include "nodestate.h"
#include "peerstate.h"
#include "reconcile.h"
#include "wgkey.h"

#define KEY_FILE "private.key"
#define DEBOUNCE_MS 100
/* How often the agent checks that its WireGuard device is still there. */
#define HEALTH_MS 1000

struct agent {
	struct agent_config cfg;
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
	struct wgctl *wg;
	struct datapath *dp;
	bool dp_failed_logged;
	struct topology *topo;         /* last good topology */
	struct rc_peer *prev;          /* what the last successful reconcile asked for */
	size_t n_prev;
	bool have_prev;                /* prev comes from this process, not from peers.json */
	bool prev_saved;               /* peers.json holds prev */
	bool boot_checked;             /* allocations older than this boot were released */
	unsigned int mtu;
	int mtu_lookup_error;          /* logged once until it changes */
	uint64_t reconciles, errors, recoveries;
	unsigned int lost_ticks;       /* health checks that found the device missing */
	char last_recovery[256];
	int64_t last_recovery_unix;
	int64_t started_unix;
	bool state_written;            /* node.json names this process */
	bool clean_exit;
	double last_ms;
	int64_t last_ok_unix;
	char last_error[512];
	struct metrics *metrics;
	struct kube_config *kube;
	struct kube_watch *watch;
	char *kube_doc;                /* newest NodeList from the API server */
	size_t kube_doc_len;
	bool kube_doc_fresh;           /* not parsed yet */
	struct stat topo_st;           /* the topology file when a->topo was parsed */
	int attached[64];              /* ifindex, negative for egress: attached by this process */
	size_t n_attached;
	bool signals_blocked;
	sigset_t blocked, saved_mask;
};

static volatile sig_atomic_t pending_term, pending_hup;

static void write_node_state(struct agent *a, const struct topo_node *self);
static bool prog_attached(int ifindex, bool egress, const char *name);

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int key_path(const char *state_dir, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/" KEY_FILE, state_dir) >= (int)len ? -ENAMETOOLONG : 0;
}

int agent_public_key(const char *state_dir, char out[WG_KEY_B64_LEN])
{
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char path[PATH_MAX];
	int ret;

	ret = key_path(state_dir, path, sizeof(path));
	if (ret < 0)
		return ret;
	ret = wgkey_load_or_create(path, priv);
	if (ret == 0)
		ret = wgkey_public_from_private(priv, pub);
	if (ret == 0)
		wgkey_to_base64(pub, out);
	memset(priv, 0, sizeof(priv));
	return ret;
}

/*
 * What the previous agent applied, so that a restart compares the topology with it and
 * never rewrites an endpoint WireGuard roamed to (NAT). Without the file (first start,
 * or a file that is not ours) the device's endpoints stand in for it.
 */
static void load_applied_peers(struct agent *a)
{
	int ret = peerstate_read(a->cfg.state_dir, &a->prev, &a->n_prev);

	if (ret == -ENOENT)
		return;
	if (ret < 0) {
		log_warn("agent: ignoring the applied peers in '%s': %s; comparing with the device",
			 a->cfg.state_dir, strerror(-ret));
		return;
	}
	log_info("agent: %zu peers as the previous agent applied them (endpoints the "
		 "topology did not change are left where WireGuard roamed)", a->n_prev);
}

/*
 * With --no-bpf, a dataplane an earlier run loaded would stay half alive: the plugin
 * would attach its pinned program to new pods, against a route map nobody updates. Take
 * it down once at start: detach the programs (pods fall back to the kernel routes the
 * plugin and the agent keep) and remove the pins.
 */
static void dataplane_off(const struct agent_config *cfg)
{
	struct twill_endpoint_value *values = NULL;
	struct twill_endpoint_key *keys = NULL;
	struct nl_link_info *links = NULL;
	struct datapath *dp = NULL;
	size_t n = 0, n_links = 0, detached = 0;
	int ret;

	ret = datapath_open_pinned(cfg->bpf_pin_dir, &dp);
	if (ret == -ENOENT)
		return;
	if (ret == 0 && datapath_endpoint_list(dp, &keys, &values, &n) == 0)
		for (size_t i = 0; i < n; i++)
			detached += datapath_detach((int)values[i].host_ifindex, false) == 0;
	datapath_close(dp);
	free(keys);
	free(values);
	if (nl_link_list(&links, &n_links) == 0) {
		for (size_t i = 0; i < n_links; i++) {
			int ifx = links[i].ifindex;

			if (prog_attached(ifx, true, TWILL_PROG_GUARD))
				detached += datapath_detach(ifx, true) == 0;
			if (strcmp(links[i].name, cfg->wg_device) == 0 &&
			    prog_attached(ifx, false, TWILL_PROG_WG))
				detached += datapath_detach(ifx, false) == 0;
		}
		free(links);
	}
	ret = datapath_unpin(cfg->bpf_pin_dir);
	if (ret < 0 && ret != -ENOENT)
		log_err("agent: --no-bpf: cannot remove the BPF pins in '%s': %s", cfg->bpf_pin_dir,
			strerror(-ret));
	else
		log_info("agent: --no-bpf: removed the BPF pins in '%s' and detached %zu programs "
			 "an earlier run left: kernel routes only", cfg->bpf_pin_dir, detached);
}

/* When the process pid started, in unix seconds; -1 when it is gone (or a zombie). */
static int64_t process_started(int pid)
{
	struct timespec real, since_boot;
	unsigned long long ticks;
	char path[64], buf[1024], *p, state;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	/* the command name may hold spaces and parentheses: fields start after the last ')' */
	p = ok ? strrchr(buf, ')') : NULL;
	if (!p || sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			 "%*d %*d %*d %*d %llu", &state, &ticks) != 2 || state == 'Z' || state == 'X' ||
	    clock_gettime(CLOCK_REALTIME, &real) < 0 || clock_gettime(CLOCK_BOOTTIME, &since_boot) < 0)
		return -1;
	return (int64_t)(real.tv_sec - since_boot.tv_sec) + (int64_t)(ticks / (unsigned long long)sysconf(_SC_CLK_TCK));
}

/*
 * node.json names the agent that wrote it and whether it exited cleanly (SIGTERM, the end
 * of --once). A previous agent that is gone without saying so was killed (kill -9, the
 * OOM killer, a crash, a power cut) possibly in the middle of a reconcile: say so where
 * twillctl status looks. This start's reconcile repairs whatever it left half done.
 */
static void check_previous_exit(struct agent *a)
{
	struct nodestate ns;
	int64_t started;

	if (nodestate_read(a->cfg.state_dir, &ns) < 0 || ns.agent_pid <= 0 || ns.clean_exit)
		return;
	started = ns.agent_pid == getpid() ? -1 : process_started(ns.agent_pid);
	if (started >= 0 && llabs(started - ns.agent_start_unix) <= 5) {
		log_warn("agent: node state says agent pid %d still runs: two agents on one node "
			 "fight over the same device", ns.agent_pid);
		return;
	}
	a->recoveries++;
	a->last_recovery_unix = time(NULL);
	snprintf(a->last_recovery, sizeof(a->last_recovery),
		 "previous agent (pid %d) ended without a clean exit; reconciled from scratch",
		 ns.agent_pid);
	log_warn("agent: %s", a->last_recovery);
}

static void save_applied_peers(struct agent *a)
{
	a->prev_saved = peerstate_write(a->cfg.state_dir, a->prev, a->n_prev) == 0;
}

int agent_new(const struct agent_config *cfg, struct agent **out)
{
	struct agent *a = calloc(1, sizeof(*a));
	char path[PATH_MAX], b64[WG_KEY_B64_LEN];
	int ret;

	if (!a)
		return -ENOMEM;
	a->cfg = *cfg;
	ret = key_path(cfg->state_dir, path, sizeof(path));
	if (ret < 0)
		goto cleanup;
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		log_err("agent: cannot create state folder '%s': %s", cfg->state_dir, strerror(errno));
		goto cleanup;
	}
	ret = wgkey_load_or_create(path, a->private_key);
	if (ret < 0) {
		log_err("agent: private key '%s': %s", path, strerror(-ret));
		goto cleanup;
	}
	ret = wgkey_public_from_private(a->private_key, a->public_key);
	if (ret < 0)
		goto cleanup;
	wgkey_to_base64(a->public_key, b64);
	log_info("agent: node '%s', public key %s", cfg->node_name, b64);
	load_applied_peers(a);
	a->started_unix = time(NULL);
	check_previous_exit(a);
	if (cfg->no_bpf)
		dataplane_off(cfg);
	if (cfg->kube_in_cluster || cfg->kubeconfig) {
		ret = cfg->kubeconfig ? kube_config_from_kubeconfig(cfg->kubeconfig, &a->kube)
				      : kube_config_in_cluster(NULL, &a->kube);
		if (ret < 0) {
			log_err("agent: no Kubernetes API access from %s: %s",
				cfg->kubeconfig ? cfg->kubeconfig : "the in-cluster service account",
				strerror(-ret));
			goto cleanup;
		}
	}
	ret = wgctl_open(cfg->wg_device, cfg->backend, &a->wg);
	if (ret < 0) {
		log_err("agent: cannot open WireGuard device '%s': %s", cfg->wg_device, strerror(-ret));
		goto cleanup;
	}
	log_info("agent: WireGuard device '%s', %s back end", cfg->wg_device,
		 wg_backend_name(wgctl_backend(a->wg)));
	*out = a;
	a = NULL;
cleanup:
	agent_free(a);
	return ret;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	if (a->state_written) {
		/* the next agent must not take this exit for a crash */
		a->clean_exit = true;
		write_node_state(a, a->topo ? topology_find_any(a->topo, a->cfg.node_name) : NULL);
	}
	metrics_close(a->metrics);
	kube_watch_stop(a->watch);
	kube_config_free(a->kube);
	free(a->kube_doc);
	datapath_close(a->dp);
	wgctl_close(a->wg);
	topology_free(a->topo);
	free(a->prev);
	memset(a->private_key, 0, sizeof(a->private_key));
	free(a);
}

static void set_error(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	if (a->last_error[0])
		return; /* the first failure of a reconcile is the one worth reporting */
	va_start(ap, fmt);
	vsnprintf(a->last_error, sizeof(a->last_error), fmt, ap);
	va_end(ap);
}

/*
 * wireguard-go inherits our signal mask: started while SIGTERM is blocked it could
 * never be stopped by it. Run the start with the original mask; the handlers only
 * record what arrived in that window.
 */
static int create_device(struct agent *a)
{
	int ret;

	if (a->signals_blocked)
		sigprocmask(SIG_SETMASK, &a->saved_mask, NULL);
	ret = wgctl_create_device(a->wg);
	if (a->signals_blocked)
		sigprocmask(SIG_BLOCK, &a->blocked, NULL);
	return ret == -EEXIST ? 0 : ret;
}

static uint16_t listen_port(const struct agent *a, const struct topo_node *self)
{
	return a->cfg.listen_port >= 0 ? (uint16_t)a->cfg.listen_port : self->wg_port;
}

/* Device present, our key and port set; returns its current configuration. */
static int ensure_device(struct agent *a, const struct topo_node *self, struct wg_device **dev)
{
	struct wg_device *d = NULL;
	struct wg_device set = { 0 };
	uint16_t port = listen_port(a, self);
	int ret;

	if (!wgctl_device_exists(a->wg)) {
		log_info("agent: creating WireGuard device '%s'", a->cfg.wg_device);
		ret = create_device(a);
		if (ret < 0) {
			set_error(a, "cannot create WireGuard device '%s': %s", a->cfg.wg_device,
				  strerror(-ret));
			return ret;
		}
	}
	ret = wgctl_get(a->wg, &d);
	if (ret < 0) {
		set_error(a, "cannot read WireGuard device '%s': %s", a->cfg.wg_device, strerror(-ret));
		return ret;
	}
	if (memcmp(d->private_key, a->private_key, WG_KEY_LEN) != 0) {
		set.flags |= WG_DEVICE_HAS_PRIVATE_KEY;
		memcpy(set.private_key, a->private_key, WG_KEY_LEN);
	}
	if (d->listen_port != port) {
		set.flags |= WG_DEVICE_HAS_LISTEN_PORT;
		set.listen_port = port;
	}
	if (set.flags) {
		log_info("agent: setting %s%s%s on '%s'",
			 set.flags & WG_DEVICE_HAS_PRIVATE_KEY ? "private key" : "",
			 set.flags == (WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT) ? " and " : "",
			 set.flags & WG_DEVICE_HAS_LISTEN_PORT ? "listen port" : "", a->cfg.wg_device);
		ret = wgctl_set(a->wg, &set);
		memset(set.private_key, 0, sizeof(set.private_key));
		if (ret < 0) {
			set_error(a, "cannot set key and port on '%s': %s", a->cfg.wg_device,
				  strerror(-ret));
			wg_device_free(d);
			return ret;
		}
	}
	*dev = d;
	return 0;
}

/* Kernel routes are the fallback path between pods and WireGuard: they need forwarding. */
static void ensure_forwarding(void)
{
	char buf[8] = "";
	int ret;

	if (sysctl_read("net.ipv4.ip_forward", buf, sizeof(buf)) == 0 && buf[0] == '1')
		return;
	ret = sysctl_write("net.ipv4.ip_forward", "1");
	if (ret < 0)
		log_warn("agent: cannot enable net.ipv4.ip_forward: %s", strerror(-ret));
	else
		log_info("agent: enabled net.ipv4.ip_forward");
}

static struct in_addr node_gateway(const struct topo_node *self)
{
	struct in_addr gw = { .s_addr = htonl(ntohl(self->pod_net.s_addr) + 1) };

	return gw;
}

static bool in_cluster(const struct agent *a, struct in_addr net)
{
	uint32_t mask = a->cfg.cluster_prefixlen ? ~0u << (32 - a->cfg.cluster_prefixlen) : 0;

	return (ntohl(net.s_addr) & mask) == (ntohl(a->cfg.cluster_net.s_addr) & mask);
}

static int apply_kernel_routes(struct agent *a, const struct rc_peer *desired, size_t n,
			       const struct nl_route *want, struct agent_stats *st)
{
	struct rc_route_plan plan = { 0 };
	struct nl_route *actual = NULL;
	size_t n_actual = 0;
	double t0;
	int ret, first = 0;

	ret = nl_route_list(want->ifindex, &actual, &n_actual);
	if (ret < 0) {
		set_error(a, "cannot list routes on '%s': %s", a->cfg.wg_device, strerror(-ret));
		return ret;
	}
	t0 = now_ms();
	ret = reconcile_kernel_routes(desired, n, actual, n_actual, want, &plan);
	st->diff_ms += now_ms() - t0;
	if (ret < 0)
		goto cleanup;
	for (size_t i = 0; i < plan.n_remove; i++) {
		ret = nl_route_delete(&plan.remove[i]);
		if (ret < 0 && ret != -ESRCH && ret != -ENOENT && !first)
			first = ret;
	}
	for (size_t i = 0; i < plan.n_replace; i++) {
		ret = nl_route_replace(&plan.replace[i]);
		if (ret < 0 && !first) {
			char buf[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &plan.replace[i].dst, buf, sizeof(buf));
			set_error(a, "cannot set route %s/%u dev %s: %s", buf, plan.replace[i].dst_len,
				  a->cfg.wg_device, strerror(-ret));
			first = ret;
		}
	}
	st->routes_changed = plan.n_replace;
	st->routes_removed = plan.n_remove;
	ret = first;
cleanup:
	rc_route_plan_clear(&plan);
	free(actual);
	return ret;
}

static bool prog_attached(int ifindex, bool egress, const char *name)
{
	char got[64] = "";

	return datapath_query_attached(ifindex, egress, got, sizeof(got)) == 0 &&
	       strcmp(got, name) == 0;
}

/*
 * A program a previous agent attached keeps working (the maps are the pinned ones), but
 * it may be an older build: each process replaces it once (atomically, same TC handle),
 * then only re-attaches where it went missing.
 */
static bool needs_attach(struct agent *a, int ifindex, bool egress, const char *name)
{
	int key = egress ? -ifindex : ifindex;

	for (size_t i = 0; i < a->n_attached; i++)
		if (a->attached[i] == key)
			return !prog_attached(ifindex, egress, name);
	return true;
}

static void mark_attached(struct agent *a, int ifindex, bool egress)
{
	int key = egress ? -ifindex : ifindex;

	for (size_t i = 0; i < a->n_attached; i++)
		if (a->attached[i] == key)
			return;
	if (a->n_attached < sizeof(a->attached) / sizeof(a->attached[0]))
		a->attached[a->n_attached++] = key;
}

/*
 * The underlay guard goes on every link a peer is reached through, and on the links of
 * the default routes: pod traffic the stack routes out (no peer for it, strict mode
 * off, a route a user added) must not leave in plaintext through an uplink no peer uses.
 */
static void guard_add(int *v, size_t *n, int ifx, int wg_ifindex)
{
	if (ifx <= 0 || ifx == wg_ifindex)
		return;
	for (size_t k = 0; k < *n; k++)
		if (v[k] == ifx)
			return;
	v[(*n)++] = ifx;
}

static int guard_ifindexes(const struct mtu_result *underlay, int wg_ifindex, int **out,
			   size_t *count)
{
	struct nl_route *routes = NULL;
	size_t n_routes = 0, n = 0;
	int *v, ret;

	ret = nl_route_list(0, &routes, &n_routes);
	if (ret < 0)
		return ret;
	v = calloc(underlay->n_ifindexes + n_routes + 1, sizeof(*v));
	if (!v) {
		free(routes);
		return -ENOMEM;
	}
	for (size_t i = 0; i < underlay->n_ifindexes; i++)
		guard_add(v, &n, underlay->ifindexes[i], wg_ifindex);
	for (size_t i = 0; i < n_routes; i++)
		if (routes[i].dst_len == 0)
			guard_add(v, &n, routes[i].ifindex, wg_ifindex);
	free(routes);
	*out = v;
	*count = n;
	return 0;
}

static int apply_bpf(struct agent *a, const struct topo_node *self, const struct rc_peer *desired,
		     size_t n, int wg_ifindex, const struct mtu_result *underlay,
		     struct agent_stats *st)
{
	struct twill_config cfg = { 0 }, cur;
	struct twill_route_key *keys = NULL;
	struct twill_route_value *values = NULL;
	struct rc_bpf_plan plan = { 0 };
	size_t n_actual = 0, n_guards = 0;
	int *guards = NULL;
	double t0;
	int ret;

	if (!a->dp) {
		ret = datapath_load_and_pin(a->cfg.bpf_pin_dir, &a->dp);
		if (ret < 0) {
			if (!a->dp_failed_logged)
				log_warn("agent: BPF dataplane not loaded (%s): kernel routes only",
					 strerror(-ret));
			a->dp_failed_logged = true;
			return ret;
		}
		a->dp_failed_logged = false;
		/*
		 * The pods' programs hold the maps they were attached with: after a load that
		 * recreated a map (a layout change) they would keep one nobody updates. Every
		 * registered pod gets this load's program (an atomic replace).
		 */
		ret = datapath_attach_endpoints(a->dp);
		if (ret < 0)
			log_warn("agent: cannot re-attach %s to every pod: %s", TWILL_PROG_POD,
				 strerror(-ret));
	}
	/* Start from what is there: fields the agent does not own (flags) are kept. */
	bool have_cur = datapath_config_get(a->dp, &cur) == 0;

	if (have_cur)
		cfg = cur;
	cfg.cluster_addr = a->cfg.cluster_net.s_addr;
	cfg.cluster_prefixlen = a->cfg.cluster_prefixlen;
	cfg.node_addr = self->pod_net.s_addr;
	cfg.node_prefixlen = self->pod_prefixlen;
	cfg.wg_ifindex = (__u32)wg_ifindex;
	cfg.strict = a->cfg.strict;
	if (!have_cur || memcmp(&cur, &cfg, sizeof(cfg)) != 0) {
		ret = datapath_config_set(a->dp, &cfg);
		if (ret < 0) {
			set_error(a, "cannot write the BPF config map: %s", strerror(-ret));
			return ret;
		}
	}
	ret = datapath_route_list(a->dp, &keys, &values, &n_actual);
	if (ret < 0) {
		set_error(a, "cannot list the BPF route map: %s", strerror(-ret));
		return ret;
	}
	t0 = now_ms();
	ret = reconcile_bpf_routes(desired, n, keys, values, n_actual, wg_ifindex, &plan);
	st->diff_ms += now_ms() - t0;
	if (ret < 0)
		goto cleanup;
	for (size_t i = 0; i < plan.n_remove; i++)
		datapath_route_delete(a->dp, &plan.remove[i]);
	for (size_t i = 0; i < plan.n_set; i++) {
		ret = datapath_route_set(a->dp, &plan.set_keys[i], &plan.set_values[i]);
		if (ret < 0) {
			set_error(a, "cannot write the BPF route map: %s", strerror(-ret));
			goto cleanup;
		}
	}
	st->bpf_changed = plan.n_set;
	st->bpf_removed = plan.n_remove;
	if (needs_attach(a, wg_ifindex, false, TWILL_PROG_WG)) {
		ret = datapath_attach_wg(a->dp, wg_ifindex);
		if (ret < 0) {
			set_error(a, "cannot attach %s to '%s': %s", TWILL_PROG_WG, a->cfg.wg_device,
				  strerror(-ret));
			goto cleanup;
		}
		mark_attached(a, wg_ifindex, false);
	}
	ret = guard_ifindexes(underlay, wg_ifindex, &guards, &n_guards);
	if (ret < 0) {
		set_error(a, "cannot list the default routes: %s", strerror(-ret));
		goto cleanup;
	}
	for (size_t i = 0; i < n_guards; i++) {
		int ifx = guards[i];

		if (!needs_attach(a, ifx, true, TWILL_PROG_GUARD))
			continue;
		ret = datapath_attach_guard(a->dp, ifx);
		if (ret < 0) {
			set_error(a, "cannot attach %s to ifindex %d: %s", TWILL_PROG_GUARD, ifx,
				  strerror(-ret));
			goto cleanup;
		}
		mark_attached(a, ifx, true);
	}
	ret = 0;
cleanup:
	rc_bpf_plan_clear(&plan);
	free(guards);
	free(keys);
	free(values);
	return ret;
}

static void write_node_state(struct agent *a, const struct topo_node *self)
{
	struct nodestate ns = { 0 };

	snprintf(ns.node_name, sizeof(ns.node_name), "%s", a->cfg.node_name);
	if (self) {
		ns.pod_net = self->pod_net;
		ns.pod_prefixlen = self->pod_prefixlen;
		ns.listen_port = listen_port(a, self);
	}
	ns.cluster_net = a->cfg.cluster_net;
	ns.cluster_prefixlen = a->cfg.cluster_prefixlen;
	ns.mtu = a->mtu;
	snprintf(ns.wg_device, sizeof(ns.wg_device), "%s", a->cfg.wg_device);
	snprintf(ns.backend, sizeof(ns.backend), "%s", wg_backend_name(wgctl_backend(a->wg)));
	snprintf(ns.bpf_pin_dir, sizeof(ns.bpf_pin_dir), "%s", a->cfg.bpf_pin_dir);
	ns.dataplane_loaded = a->dp != NULL;
	ns.strict = a->cfg.strict;
	ns.last_reconcile_unix = a->last_ok_unix;
	snprintf(ns.last_error, sizeof(ns.last_error), "%s", a->last_error);
	snprintf(ns.last_recovery, sizeof(ns.last_recovery), "%s", a->last_recovery);
	ns.last_recovery_unix = a->last_recovery_unix;
	ns.agent_pid = (int)getpid();
	ns.agent_start_unix = a->started_unix;
	ns.clean_exit = a->clean_exit;
	if (nodestate_write(a->cfg.state_dir, &ns) == 0)
		a->state_written = true;
}

static bool allocated_this_boot_or_wired(const struct ipam_allocation *al, void *arg)
{
	const time_t *booted = arg;
	struct nl_link_info link;
	char veth[IF_NAMESIZE];

	if (al->allocated_at >= *booted)
		return true;
	/* a wall clock stepped forward after boot makes live pods look older: the veth says */
	cni_host_veth_name(al->container_id, al->ifname, veth);
	return nl_link_get(veth, &link) == 0;
}

/*
 * After a reboot no pod of the previous boot exists, but the state folder keeps their
 * addresses, and a runtime that never sends CNI GC would leak them for good. Once per
 * agent process: release what was allocated before this boot and has no host veth.
 * Race-free with the plugin: every ADD of this boot is newer than the boot.
 */
static void release_before_boot(struct agent *a, const char *pod_cidr)
{
	struct timespec real, since_boot;
	struct ipam_allocation *gone = NULL;
	struct ipam *store = NULL;
	struct dirent *e;
	char dir[PATH_MAX], addr[INET_ADDRSTRLEN];
	time_t booted;
	size_t n = 0;
	DIR *d;

	a->boot_checked = true;
	if (clock_gettime(CLOCK_REALTIME, &real) < 0 ||
	    clock_gettime(CLOCK_BOOTTIME, &since_boot) < 0)
		return;
	booted = real.tv_sec - since_boot.tv_sec;
	if (snprintf(dir, sizeof(dir), "%s/ipam", a->cfg.state_dir) >= (int)sizeof(dir))
		return;
	d = opendir(dir);
	if (!d)
		return;   /* no pod yet on this node */
	while ((e = readdir(d))) {
		if (!ipam_network_name_valid(e->d_name))
			continue;
		if (ipam_open(a->cfg.state_dir, e->d_name, pod_cidr, &store) < 0)
			continue;   /* another pod CIDR or a corrupt store: ipam logged it */
		if (ipam_gc(store, allocated_this_boot_or_wired, &booted, &gone, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				log_info("agent: released %s of container '%s' %s in network '%s': "
					 "allocated before this boot, its pod is gone",
					 inet_ntop(AF_INET, &gone[i].addr, addr, sizeof(addr)),
					 gone[i].container_id, gone[i].ifname, e->d_name);
		}
		free(gone);
		gone = NULL;
		n = 0;
		ipam_close(store);
		store = NULL;
	}
	closedir(d);
}

static int converge(struct agent *a, struct topology *topo, struct agent_stats *st)
{
	const struct topo_node *self = topology_find_any(topo, a->cfg.node_name);
	struct rc_peer *desired = NULL;
	struct rc_peer_plan plan = { 0 };
	struct mtu_result underlay = { 0 };
	struct wg_device *dev = NULL;
	union wg_endpoint *eps = NULL;
	struct nl_link_info link;
	struct nl_route want = { 0 };
	struct conflist_params cp;
	char cidr[CIDR_STR_LEN], buf[INET_ADDRSTRLEN];
	size_t n = 0;
	double t0;
	int ret;

	if (!self) {
		set_error(a, "node '%s' is not in the topology (or has no spec.podCIDR)",
			  a->cfg.node_name);
		return -ENOENT;
	}
	if (!in_cluster(a, self->pod_net))
		log_warn("agent: node '%s' spec.podCIDR is outside the cluster range", self->name);
	if (topology_find(topo, self->name) &&
	    memcmp(self->public_key, a->public_key, WG_KEY_LEN) != 0)
		log_warn("agent: node '%s' annotation twill.dev/public-key is not this node's key: "
			 "peers will drop our packets until it is published (twilld --show-public-key)",
			 self->name);

	t0 = now_ms();
	ret = reconcile_desired(topo, a->cfg.node_name, a->public_key, &desired, &n);
	st->diff_ms += now_ms() - t0;
	if (ret < 0)
		return ret;
	st->nodes = topo->n_nodes + topo->n_unkeyed;
	st->peers = n;

	t0 = now_ms();
	ret = ensure_device(a, self, &dev);
	st->device_ms = now_ms() - t0;
	if (ret < 0)
		goto cleanup;
	t0 = now_ms();
	ret = reconcile_peers(desired, n, a->prev, a->n_prev, dev, a->cfg.keepalive, &plan);
	st->diff_ms += now_ms() - t0;
	if (ret < 0)
		goto cleanup;
	if (plan.n_peers) {
		struct wg_device set = { 0 };

		t0 = now_ms();
		set.peers = plan.peers;
		set.n_peers = plan.n_peers;
		ret = wgctl_set(a->wg, &set);
		if (ret < 0) {
			set_error(a, "cannot configure peers on '%s': %s", a->cfg.wg_device,
				  strerror(-ret));
			goto cleanup;
		}
	}
	st->peers_ms = plan.n_peers ? now_ms() - t0 : 0;
	st->peers_added = plan.n_add;
	st->peers_removed = plan.n_remove;
	st->peers_updated = plan.n_update;
	st->peers_unchanged = plan.n_unchanged;
	/* Peers are applied: this is what the next reconcile compares against. */
	free(a->prev);
	a->prev = desired;
	a->n_prev = n;
	a->have_prev = true;
	desired = NULL;
	if (plan.n_peers || !a->prev_saved)
		save_applied_peers(a);

	eps = calloc(n + 1, sizeof(*eps));
	if (!eps) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++)
		eps[i] = a->prev[i].endpoint;
	t0 = now_ms();
	ret = mtu_for_endpoints(eps, n, &underlay);
	st->mtu_ms = now_ms() - t0;
	if (ret < 0) {
		set_error(a, "cannot look up the underlay routes: %s", strerror(-ret));
		goto cleanup;
	}
	if (underlay.lookup_error && underlay.lookup_error != a->mtu_lookup_error)
		log_warn("agent: route lookup for endpoint %s failed (%s): %zu endpoint(s) left out "
			 "of the MTU, as unreachable", underlay.lookup_error_endpoint,
			 strerror(-underlay.lookup_error), underlay.n_unreachable);
	a->mtu_lookup_error = underlay.lookup_error;
	if (underlay.underlay_mtu || !a->mtu)
		a->mtu = underlay.wg_mtu;
	st->mtu = a->mtu;

	ret = nl_link_get(a->cfg.wg_device, &link);
	if (ret < 0) {
		set_error(a, "WireGuard device '%s' has no link: %s", a->cfg.wg_device, strerror(-ret));
		goto cleanup;
	}
	if (link.mtu != a->mtu) {
		log_info("agent: MTU of '%s' %u -> %u (underlay %u)", link.name, link.mtu, a->mtu,
			 underlay.underlay_mtu);
		ret = nl_link_set_mtu(link.ifindex, a->mtu);
		if (ret < 0) {
			set_error(a, "cannot set MTU %u on '%s': %s", a->mtu, link.name, strerror(-ret));
			goto cleanup;
		}
	}
	want.prefsrc = node_gateway(self);
	if (!nl_addr_present(link.ifindex, want.prefsrc, 32)) {
		ret = nl_addr_add(link.ifindex, want.prefsrc, 32);
		if (ret < 0 && ret != -EEXIST) {
			inet_ntop(AF_INET, &want.prefsrc, buf, sizeof(buf));
			set_error(a, "cannot add %s/32 to '%s': %s", buf, link.name, strerror(-ret));
			goto cleanup;
		}
	}
	if (!link.up) {
		ret = nl_link_set_up(link.ifindex);
		if (ret < 0) {
			set_error(a, "cannot bring '%s' up: %s", link.name, strerror(-ret));
			goto cleanup;
		}
	}
	ensure_forwarding();
	want.ifindex = link.ifindex;
	want.mtu = a->mtu;
	want.scope_link = true;
	t0 = now_ms();
	ret = apply_kernel_routes(a, a->prev, n, &want, st);
	st->routes_ms = now_ms() - t0;
	if (ret < 0)
		goto cleanup;

	t0 = now_ms();
	if (!a->cfg.no_bpf)
		apply_bpf(a, self, a->prev, n, link.ifindex, &underlay, st);
	st->bpf_ms = now_ms() - t0;
	st->dataplane_loaded = a->dp != NULL;

	cidr_format(self->pod_net, self->pod_prefixlen, cidr);
	cp.pod_cidr = cidr;
	cp.mtu = a->mtu;
	cp.state_dir = a->cfg.state_dir;
	cp.bpf_pin_dir = a->cfg.bpf_pin_dir;
	cp.log_file = a->cfg.log_file;
	/* node state first: the plugin reads it once the runtime sees the conflist */
	a->last_ok_unix = time(NULL);
	write_node_state(a, self);
	ret = conflist_write(a->cfg.cni_conf_dir, &cp, NULL);
	if (ret < 0) {
		set_error(a, "cannot write the CNI config in '%s': %s", a->cfg.cni_conf_dir,
			  strerror(-ret));
		goto cleanup;
	}
	if (!a->boot_checked)
		release_before_boot(a, cidr);
	/* A BPF failure leaves kernel routes working: reported in node state, not fatal. */
	ret = 0;
cleanup:
	mtu_result_clear(&underlay);
	rc_peer_plan_clear(&plan);
	wg_device_free(dev);
	free(desired);
	free(eps);
	return ret;
}

static const char *source_name(const struct agent *a)
{
	return a->kube ? "the API server's node list" : a->cfg.topology_path;
}

static int start_watch(struct agent *a)
{
	struct kube_watch_opts opts = { 0 };
	char b64[WG_KEY_B64_LEN];
	int ret;

	if (a->watch)
		return 0;
	wgkey_to_base64(a->public_key, b64);
	opts.node_name = a->cfg.node_name;
	opts.public_key = b64;  /* published as this node's twill.dev/public-key */
	ret = kube_watch_start(a->kube, &opts, &a->watch);
	if (ret < 0)
		log_err("agent: cannot watch nodes on the API server: %s", strerror(-ret));
	return ret;
}

/* Keeps only the newest document; true when a new one arrived. */
static bool take_kube_doc(struct agent *a)
{
	char *doc = NULL;
	size_t len = 0;

	if (!a->watch || kube_watch_take(a->watch, &doc, &len) < 0)
		return false;
	free(a->kube_doc);
	a->kube_doc = doc;
	a->kube_doc_len = len;
	a->kube_doc_fresh = true;
	return true;
}

int agent_wait_topology(struct agent *a, int timeout_ms)
{
	struct pollfd pfd;
	int ret;

	if (!a->kube || a->kube_doc)
		return 0;
	ret = start_watch(a);
	if (ret < 0)
		return ret;
	pfd.fd = kube_watch_fd(a->watch);
	pfd.events = POLLIN;
	while (!take_kube_doc(a)) {
		int r = poll(&pfd, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			log_err("agent: no node list from the API server within %d ms", timeout_ms);
			return r < 0 ? -errno : -ETIMEDOUT;
		}
	}
	return 0;
}

static bool same_file(const struct stat *x, const struct stat *y)
{
	return x->st_dev == y->st_dev && x->st_ino == y->st_ino && x->st_size == y->st_size &&
	       x->st_mtim.tv_sec == y->st_mtim.tv_sec && x->st_mtim.tv_nsec == y->st_mtim.tv_nsec &&
	       x->st_ctim.tv_sec == y->st_ctim.tv_sec && x->st_ctim.tv_nsec == y->st_ctim.tv_nsec;
}

/* A periodic resync repairs drift on the node; it need not re-read an unchanged source. */
static bool source_unchanged(const struct agent *a)
{
	struct stat st;

	if (!a->topo)
		return false;
	if (a->kube)
		return !a->kube_doc_fresh;
	return stat(a->cfg.topology_path, &st) == 0 && same_file(&st, &a->topo_st);
}

static int load_topology(struct agent *a, struct topology **out, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	if (!a->kube) {
		/* stat first: a change racing the read shows as a difference next time */
		if (stat(a->cfg.topology_path, st) < 0)
			memset(st, 0, sizeof(*st));
		return topology_load_file(a->cfg.topology_path, out);
	}
	if (!a->kube_doc) {
		log_info("agent: waiting for the first node list from the API server");
		return -EAGAIN;
	}
	a->kube_doc_fresh = false;
	return topology_parse(a->kube_doc, a->kube_doc_len, out);
}

static int reconcile(struct agent *a, struct agent_stats *stats, bool reuse)
{
	struct agent_stats st = { 0 };
	struct topology *topo = NULL;
	struct stat topo_st;
	double t0 = now_ms(), t1;
	int ret = 0;

	a->last_error[0] = '\0';
	if (reuse && source_unchanged(a)) {
		topo = a->topo;
		topo_st = a->topo_st;
	} else {
		ret = load_topology(a, &topo, &topo_st);
	}
	st.parse_ms = now_ms() - t0;
	if (ret == -EAGAIN)
		return ret;
	a->reconciles++;
	if (ret < 0) {
		/* topology.c logged the node and field at fault */
		set_error(a, "topology '%s' rejected (%s): keeping the last good state",
			  source_name(a), strerror(-ret));
		log_err("agent: %s", a->last_error);
		a->errors++;
		if (!a->topo)
			write_node_state(a, NULL);
		else
			write_node_state(a, topology_find_any(a->topo, a->cfg.node_name));
		goto out;
	}
	t1 = now_ms();
	ret = converge(a, topo, &st);
	st.apply_ms = now_ms() - t1 - st.diff_ms;
	if (ret < 0) {
		a->errors++;
		if (!a->last_error[0])
			set_error(a, "%s", strerror(-ret));
		log_err("agent: reconcile failed: %s", a->last_error);
		write_node_state(a, topology_find_any(topo, a->cfg.node_name) ?
				    topology_find_any(topo, a->cfg.node_name) :
				    a->topo ? topology_find_any(a->topo, a->cfg.node_name) : NULL);
		if (ret == -ENOENT && topo != a->topo) {
			/* this node missing: the last good topology stays in force */
			topology_free(topo);
			topo = NULL;
		}
	}
	if (topo && topo != a->topo) {
		topology_free(a->topo);
		a->topo = topo;
		a->topo_st = topo_st;
	}
out:
	st.total_ms = now_ms() - t0;
	a->last_ms = st.total_ms;
	if (ret == 0) {
		bool changed = st.peers_added || st.peers_removed || st.peers_updated ||
			       st.routes_changed || st.routes_removed || st.bpf_changed ||
			       st.bpf_removed;

		/* the first reconcile says what a restarted agent adopted */
		log_msg(changed || a->reconciles == 1 ? TWILL_LOG_INFO : TWILL_LOG_DEBUG,
			"agent: reconciled %zu nodes: peers +%zu -%zu ~%zu =%zu, routes ~%zu -%zu, "
			"bpf ~%zu -%zu, mtu %u, dataplane %s, %.1f ms (parse %.1f, diff %.1f, apply %.1f)",
			st.nodes, st.peers_added, st.peers_removed, st.peers_updated,
			st.peers_unchanged, st.routes_changed, st.routes_removed, st.bpf_changed,
			st.bpf_removed, st.mtu, st.dataplane_loaded ? "bpf" : "kernel routes",
			st.total_ms, st.parse_ms, st.diff_ms, st.apply_ms);
	}
	if (stats)
		*stats = st;
	return ret;
}

int agent_reconcile(struct agent *a, struct agent_stats *stats)
{
	return reconcile(a, stats, false);
}

static void label_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 3 < len; in++) {
		if (*in == '"' || *in == '\\' || *in == '\n') {
			out[o++] = '\\';
			out[o++] = *in == '\n' ? 'n' : *in;
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static int cmp_prev_key(const void *k, const void *p)
{
	return memcmp(k, ((const struct rc_peer *)p)->public_key, WG_KEY_LEN);
}

static int render_metrics(void *arg, char **text, size_t *len)
{
	struct agent *a = arg;
	struct wg_device *dev = NULL;
	time_t now = time(NULL);
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return -ENOMEM;
	fprintf(f, "# HELP twill_reconciles_total Reconciles attempted.\n"
		   "# TYPE twill_reconciles_total counter\ntwill_reconciles_total %llu\n",
		(unsigned long long)a->reconciles);
	fprintf(f, "# HELP twill_reconcile_errors_total Reconciles that failed (bad topology included).\n"
		   "# TYPE twill_reconcile_errors_total counter\ntwill_reconcile_errors_total %llu\n",
		(unsigned long long)a->errors);
	fprintf(f, "# HELP twill_device_recoveries_total WireGuard device re-created after it was lost.\n"
		   "# TYPE twill_device_recoveries_total counter\ntwill_device_recoveries_total %llu\n",
		(unsigned long long)a->recoveries);
	fprintf(f, "# HELP twill_reconcile_duration_seconds Duration of the last reconcile.\n"
		   "# TYPE twill_reconcile_duration_seconds gauge\n"
		   "twill_reconcile_duration_seconds %.6f\n", a->last_ms / 1e3);
	fprintf(f, "# HELP twill_mtu MTU of the WireGuard device and the pods.\n"
		   "# TYPE twill_mtu gauge\ntwill_mtu %u\n", a->mtu);
	fprintf(f, "# HELP twill_dataplane_loaded 1 when the BPF dataplane is loaded.\n"
		   "# TYPE twill_dataplane_loaded gauge\ntwill_dataplane_loaded %d\n", a->dp != NULL);
	if (wgctl_device_exists(a->wg) && wgctl_get(a->wg, &dev) == 0) {
		fprintf(f, "# HELP twill_peers WireGuard peers on the device.\n"
			   "# TYPE twill_peers gauge\ntwill_peers %zu\n", dev->n_peers);
		fprintf(f, "# HELP twill_peer_rx_bytes_total Bytes received from the peer.\n"
			   "# TYPE twill_peer_rx_bytes_total counter\n"
			   "# HELP twill_peer_tx_bytes_total Bytes sent to the peer.\n"
			   "# TYPE twill_peer_tx_bytes_total counter\n"
			   "# HELP twill_peer_seconds_since_handshake Seconds since the last handshake "
			   "(absent: never).\n# TYPE twill_peer_seconds_since_handshake gauge\n");
		for (size_t i = 0; i < dev->n_peers; i++) {
			const struct wg_peer *p = &dev->peers[i];
			const struct rc_peer *known = a->prev ?
				bsearch(p->public_key, a->prev, a->n_prev, sizeof(*a->prev), cmp_prev_key) : NULL;
			char key[WG_KEY_B64_LEN], name[2 * TOPO_NAME_MAX], labels[3 * TOPO_NAME_MAX];

			wgkey_to_base64(p->public_key, key);
			label_escape(known ? known->name : "", name, sizeof(name));
			snprintf(labels, sizeof(labels), "{peer=\"%s\",public_key=\"%s\"}", name, key);
			fprintf(f, "twill_peer_rx_bytes_total%s %llu\n", labels,
				(unsigned long long)p->rx_bytes);
			fprintf(f, "twill_peer_tx_bytes_total%s %llu\n", labels,
				(unsigned long long)p->tx_bytes);
			if (p->last_handshake_sec > 0)
				fprintf(f, "twill_peer_seconds_since_handshake%s %lld\n", labels,
					(long long)(now - p->last_handshake_sec));
		}
		wg_device_free(dev);
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*text = buf;
	*len = size;
	return 0;
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		pending_hup = 1;
	else
		pending_term = 1;
}

static int arm_timer(int fd, unsigned int ms, unsigned int interval_ms)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	its.it_interval.tv_sec = interval_ms / 1000;
	its.it_interval.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
	return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static bool event_is_ours(const struct inotify_event *ev, const char *base)
{
	/* ConfigMap volumes swap a "..data" symlink; editors rename temporary files. */
	return ev->len == 0 || strcmp(ev->name, base) == 0 || strncmp(ev->name, "..", 2) == 0;
}

/*
 * A userspace WireGuard daemon can die (OOM killer, a crash, kill -9) and take the
 * device with it; the kernel device can be deleted by hand. Both must not wait for the
 * next resync: the check is one connect() or one link lookup, cheap enough every second.
 * Only a device the agent had configured counts: before that, reconcile reports it.
 * While it cannot be re-created, retries thin out (1, 2, 4 ... then every 64 s): each
 * try may wait for a daemon's socket, and the loop must keep serving.
 */
static bool device_lost(struct agent *a)
{
	struct nl_link_info link;
	const char *why;

	if (!a->have_prev)
		return false;
	if (!wgctl_device_exists(a->wg))
		why = wgctl_backend(a->wg) == WG_BACKEND_USERSPACE ?
		      "its userspace daemon is gone" : "it was deleted";
	else if (nl_link_get(a->cfg.wg_device, &link) < 0)
		why = "its network interface is gone";
	else {
		a->lost_ticks = 0;
		return false;
	}
	if (a->lost_ticks++ == 0) {
		a->recoveries++;
		a->last_recovery_unix = time(NULL);
		snprintf(a->last_recovery, sizeof(a->last_recovery),
			 "WireGuard device '%s' lost (%s): re-creating it", a->cfg.wg_device, why);
		log_warn("agent: %s", a->last_recovery);
	}
	return (a->lost_ticks & (a->lost_ticks - 1)) == 0 || a->lost_ticks % 64 == 0;
}

/* The reconcile that followed a loss worked: say so where twillctl looks. */
static void device_recovered(struct agent *a, double ms)
{
	char *cut = strstr(a->last_recovery, ": re-creating it");

	if (!cut)
		return;
	snprintf(cut, sizeof(a->last_recovery) - (size_t)(cut - a->last_recovery),
		 ": re-created with key, port, peers and routes in %.0f ms", ms);
	a->lost_ticks = 0;
	log_info("agent: WireGuard device '%s' re-created in %.0f ms", a->cfg.wg_device, ms);
	write_node_state(a, a->topo ? topology_find_any(a->topo, a->cfg.node_name) : NULL);
}

int agent_run(struct agent *a)
{
	char dir[PATH_MAX], basebuf[PATH_MAX], *base;
	int sfd = -1, ifd = -1, tresync = -1, tdebounce = -1, thealth = -1, ret = 0;
	struct sigaction sa = { 0 };
	bool running = true;

	snprintf(dir, sizeof(dir), "%s", a->kube ? "" : a->cfg.topology_path);
	snprintf(basebuf, sizeof(basebuf), "%s", dir);
	base = basename(basebuf);

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&a->blocked);
	sigaddset(&a->blocked, SIGTERM);
	sigaddset(&a->blocked, SIGINT);
	sigaddset(&a->blocked, SIGHUP);
	sigprocmask(SIG_BLOCK, &a->blocked, &a->saved_mask);
	a->signals_blocked = true;

	sfd = signalfd(-1, &a->blocked, SFD_CLOEXEC | SFD_NONBLOCK);
	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	tresync = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	tdebounce = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	thealth = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (sfd < 0 || ifd < 0 || tresync < 0 || tdebounce < 0 || thealth < 0) {
		ret = -errno;
		log_err("agent: cannot set up the event loop: %s", strerror(errno));
		goto cleanup;
	}
	/* the watch thread inherits the blocked mask: signals stay with the signalfd */
	if (a->kube) {
		ret = start_watch(a);
		if (ret < 0)
			goto cleanup;
	} else if (inotify_add_watch(ifd, dirname(dir), IN_CLOSE_WRITE | IN_MOVED_TO |
				     IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
				     IN_MOVE_SELF) < 0) {
		ret = -errno;
		log_err("agent: cannot watch folder '%s' of topology '%s': %s", dir,
			a->cfg.topology_path, strerror(errno));
		goto cleanup;
	}
	if (a->cfg.resync_sec)
		arm_timer(tresync, a->cfg.resync_sec * 1000, a->cfg.resync_sec * 1000);
	arm_timer(thealth, HEALTH_MS, HEALTH_MS);
	if (a->cfg.metrics_addr) {
		ret = metrics_open(a->cfg.metrics_addr, &a->metrics);
		if (ret < 0)
			goto cleanup;
	}

	agent_reconcile(a, NULL);
	while (running) {
		struct pollfd pfd[7] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = ifd, .events = POLLIN },
			{ .fd = tresync, .events = POLLIN },
			{ .fd = tdebounce, .events = POLLIN },
			{ .fd = a->metrics ? metrics_fd(a->metrics) : -1, .events = POLLIN },
			{ .fd = a->watch ? kube_watch_fd(a->watch) : -1, .events = POLLIN },
			{ .fd = thealth, .events = POLLIN },
		};
		bool again = false, resync = false;
		uint64_t ticks;

		if (poll(pfd, 7, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					log_info("agent: SIGHUP: reconciling");
					again = true;
				} else {
					running = false;
				}
			}
		}
		if (pfd[1].revents & POLLIN) {
			char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
			ssize_t n;

			while ((n = read(ifd, evbuf, sizeof(evbuf))) > 0) {
				for (char *p = evbuf; p < evbuf + n;) {
					const struct inotify_event *ev = (const struct inotify_event *)p;

					if (event_is_ours(ev, base))
						arm_timer(tdebounce, DEBOUNCE_MS, 0);
					if (ev->mask & IN_IGNORED)
						log_warn("agent: the topology folder is gone; resync only");
					p += sizeof(*ev) + ev->len;
				}
			}
		}
		if ((pfd[2].revents & POLLIN) && read(tresync, &ticks, sizeof(ticks)) > 0) {
			log_debug("agent: periodic resync");
			resync = true;
		}
		if ((pfd[3].revents & POLLIN) && read(tdebounce, &ticks, sizeof(ticks)) > 0) {
			log_info("agent: topology '%s' changed: reconciling", source_name(a));
			again = true;
		}
		if (pfd[4].revents & POLLIN)
			metrics_serve(a->metrics, render_metrics, a);
		if ((pfd[5].revents & POLLIN) && take_kube_doc(a)) {
			log_debug("agent: new node list from the API server");
			again = true;
		}
		if ((pfd[6].revents & POLLIN) && read(thealth, &ticks, sizeof(ticks)) > 0 &&
		    !again && device_lost(a)) {
			double t0 = now_ms();

			if (reconcile(a, NULL, true) == 0)
				device_recovered(a, now_ms() - t0);
		}
		if (pending_hup) {
			pending_hup = 0;
			again = true;
		}
		if (pending_term)
			running = false;
		if (running && (again || resync))
			reconcile(a, NULL, !again);
	}
	log_info("agent: exiting; the WireGuard device, routes and BPF programs stay in place");
cleanup:
	if (sfd >= 0)
		close(sfd);
	if (ifd >= 0)
		close(ifd);
	if (tresync >= 0)
		close(tresync);
	if (tdebounce >= 0)
		close(tdebounce);
	if (thealth >= 0)
		close(thealth);
	sigprocmask(SIG_SETMASK, &a->saved_mask, NULL);
	a->signals_blocked = false;
	return ret;
}

int agent_cleanup(const struct agent_config *cfg)
{
	struct nl_link_info *links = NULL;
	struct wgctl *wg = NULL;
	size_t n_links = 0;
	int ret, first = 0;

	ret = wgctl_open(cfg->wg_device, cfg->backend, &wg);
	if (ret == 0 && wgctl_device_exists(wg)) {
		ret = wgctl_delete_device(wg);
		if (ret < 0 && ret != -ENODEV) {
			log_err("cleanup: cannot delete WireGuard device '%s': %s", cfg->wg_device,
				strerror(-ret));
			first = first ? first : ret;
		} else {
			log_info("cleanup: deleted WireGuard device '%s' and its routes", cfg->wg_device);
		}
	}
	wgctl_close(wg);
	/* The underlay guard is ours; the pods' programs belong to the CNI plugin. */
	if (nl_link_list(&links, &n_links) == 0) {
		for (size_t i = 0; i < n_links; i++) {
			if (prog_attached(links[i].ifindex, true, TWILL_PROG_GUARD)) {
				ret = datapath_detach(links[i].ifindex, true);
				if (ret < 0)
					first = first ? first : ret;
				else
					log_info("cleanup: detached %s from '%s'", TWILL_PROG_GUARD,
						 links[i].name);
			}
		}
		free(links);
	}
	ret = datapath_unpin(cfg->bpf_pin_dir);
	if (ret < 0 && ret != -ENOENT) {
		log_err("cleanup: cannot remove BPF pins in '%s': %s", cfg->bpf_pin_dir, strerror(-ret));
		first = first ? first : ret;
	}
	ret = conflist_remove(cfg->cni_conf_dir);
	if (ret < 0 && ret != -ENOENT)
		first = first ? first : ret;
	ret = nodestate_remove(cfg->state_dir);
	if (ret < 0)
		first = first ? first : ret;
	ret = peerstate_remove(cfg->state_dir);
	if (ret < 0)
		first = first ? first : ret;
	log_info("cleanup: done (the private key in '%s' is kept)", cfg->state_dir);
	return first;
}
