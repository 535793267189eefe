// SPDX-License-Identifier: Apache-2.0
/*
 * twillctl: the SRE's view of one node. Reads pinned maps, the WireGuard device,
 * rtnetlink and the agent's state files directly, so it answers while the agent is
 * down. Tables for people, --json for scripts; exit 1 when what it shows is unhealthy,
 * 2 on a usage error, 3 when it cannot run at all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "inspect.h"
#include "log.h"
#include "strutil.h"
#include "netlink.h"
#include "twill-config.h"
#include "wgkey.h"

#define EXIT_HEALTHY 0
#define EXIT_UNHEALTHY 1
#define EXIT_USAGE 2
#define EXIT_FAILURE_RUN 3

struct ctl {
	struct inspect_options opt;
	bool json;
	bool watch;
	unsigned int watch_secs;
	long count;   /* --watch iterations, -1 forever */
};

/* ---- help ---------------------------------------------------------------- */

static const char usage_global[] =
	"usage: twillctl [OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"The node's view of Twill: what the dataplane, WireGuard and the kernel will do.\n"
	"Works while the agent is down: reads pinned maps, the WireGuard device, netlink\n"
	"and the state files directly.\n"
	"\n"
	"Commands:\n"
	"  status              node, device, programs, peers, pods, one health verdict\n"
	"  peers               WireGuard peers: node, pod CIDR, endpoint, path, handshake\n"
	"  routes              BPF route map, kernel routes, WireGuard allowed IPs side by side\n"
	"  pods                local pods: allocation, endpoint entry, host veth, program\n"
	"  trace SRC DST       what happens to a packet from SRC to DST (nothing is sent)\n"
	"  counters            per-reason packets and bytes; --watch [SECS] prints rates\n"
	"  key                 this node's public key (never the private key)\n"
	"\n"
	"Options (before or after the command):\n"
	"  --state-dir DIR     agent state (node.json, ipam/, private.key) [" TWILL_DEFAULT_STATE_DIR "]\n"
	"  --bpf-pin-dir DIR   pinned maps [from node.json, else " TWILL_DEFAULT_BPF_PIN_DIR "]\n"
	"  --wg-device NAME    WireGuard device [from node.json, else twill0]\n"
	"  --topology FILE     NodeList JSON: names peers' nodes and private networks\n"
	"  --network NAME      IPAM network name [twill]\n"
	"  --json              machine-readable output with the same facts\n"
	"  -v, --verbose       log what could not be read\n"
	"  -h, --help          this text; COMMAND --help explains every column\n"
	"\n"
	"Exit status: 0 healthy, 1 what is shown is unhealthy (or the packet is dropped),\n"
	"2 usage error, 3 cannot run: the state folder is missing, not a folder or not\n"
	"readable, or pinned maps exist but may not be opened (not root), or out of memory.\n";

static const char help_status[] =
	"usage: twillctl status\n"
	"\n"
	"One block about this node, then one health verdict line.\n"
	"  node            node name (from node.json)\n"
	"  pod CIDR        this node's pod range, and the cluster range\n"
	"  wireguard       device name, back end (kernel or userspace), listen port, MTU\n"
	"  public key      the node's WireGuard public key\n"
	"  pod MTU         MTU the CNI plugin gives pods\n"
	"  strict mode     on: cluster traffic with no route is dropped, not passed to the stack\n"
	"  dataplane       loaded (pinned maps open) or not, and the pin folder\n"
	"  services        (with a dataplane) on: the programs look connections up in conntrack\n"
	"                  and hand NATed ones (Kubernetes Services) to the stack; off: the\n"
	"                  kernel had no conntrack kfuncs at load, Services between pods break\n"
	"  programs        which twill TC program is attached where (device and hook)\n"
	"  peers           peers with a handshake in the last 180 s / all peers, and how many\n"
	"                  are pending (configured under 180 s ago, no handshake yet: healthy)\n"
	"  pods            allocations in the IPAM store\n"
	"  last reconcile  when the agent last reconciled successfully ('never': not yet)\n"
	"  last error      the error of the agent's last reconcile, 'none' when it succeeded\n"
	"  last recovery   (only when there was one) how long ago and what the agent last\n"
	"                  repaired by itself, e.g. a WireGuard device or program put back\n"
	"  health          healthy, or UNHEALTHY followed by one line per problem ('-');\n"
	"                  warnings ('~') do not make it unhealthy: a pod whose packets take\n"
	"                  the kernel's route because its endpoint entry or program is missing\n"
	"Exit 1 when unhealthy: a stale peer, a route disagreement, a pod mismatch, a failed\n"
	"reconcile, or a dataplane that should be loaded and is not.\n";

static const char help_peers[] =
	"usage: twillctl peers\n"
	"\n"
	"One line per WireGuard peer.\n"
	"  NODE        node name (from --topology by public key or pod CIDR), '-' unknown\n"
	"  POD CIDR    the peer's allowed IPs\n"
	"  ENDPOINT    address:port WireGuard sends to\n"
	"  PATH        the private network's name when the peer is reached over it, else\n"
	"              'public' ('private' when the network's name is unknown)\n"
	"  HANDSHAKE   time since the last handshake, 'never' when none\n"
	"  RX, TX      bytes received from and sent to the peer\n"
	"  KEEPALIVE   persistent keepalive interval, 'off' when none\n"
	"  STATUS      ok; pending: no handshake yet, configured under 180 s ago (WireGuard\n"
	"              shakes hands on the first packet, so an idle new peer has none); STALE:\n"
	"              no handshake for over 180 s, or none since it was configured over 180 s\n"
	"              ago (configured: when the agent first routed its pod CIDR, else the\n"
	"              agent's start)\n"
	"  PUBLIC KEY  the peer's public key\n"
	"Exit 1 when a peer is stale or the device cannot be read.\n";

static const char help_routes[] =
	"usage: twillctl routes\n"
	"\n"
	"One line per remote pod CIDR found in any of the three sources.\n"
	"  CIDR        the remote node's pod CIDR\n"
	"  NODE        its node (from --topology), '-' unknown\n"
	"  BPF         the route map entry: device, endpoint address, private flag; '-' none\n"
	"  KERNEL      the most specific main-table route covering the CIDR and its device\n"
	"  WIREGUARD   the peer whose allowed IPs hold exactly this CIDR (key prefix); '-' none\n"
	"  STATUS      ok when all three agree (BPF and kernel point at the WireGuard device,\n"
	"              a peer allows the CIDR, the BPF endpoint is the peer's), else what differs\n"
	"Exit 1 on any disagreement.\n";

static const char help_pods[] =
	"usage: twillctl pods\n"
	"\n"
	"One line per local pod, joining the IPAM store, the endpoint map and host veths.\n"
	"  CONTAINER   container id (first 12 characters; --json has all of it)\n"
	"  IFNAME      interface name inside the pod\n"
	"  POD IP      the pod's address\n"
	"  HOST VETH   host end of the pod's veth ('tw' + 13 hex digits), '-' none\n"
	"  MAC         the pod interface's MAC, from the endpoint map\n"
	"  PROGRAM     twill program attached at the host veth's TC ingress, '-' none\n"
	"  STATUS      ok, or the mismatch: allocation without veth, veth without allocation,\n"
	"              endpoint entry without allocation or veth; 'ok, kernel path: ...' when\n"
	"              the pod works through the kernel's route because it has no endpoint map\n"
	"              entry or no program attached (a warning, not a mismatch); just 'ok' for\n"
	"              a pod the CNI plugin left to the kernel path for its bandwidth limits\n"
	"Exit 1 on any mismatch.\n";

static const char help_trace[] =
	"usage: twillctl trace SRC DST\n"
	"\n"
	"Explains, without sending anything, what happens to an IPv4 packet from SRC to DST,\n"
	"following the same lookups as the BPF programs over the live maps.\n"
	"  source, destination  each address and what it is (local pod, remote pod, ...)\n"
	"  program     twill program that sees the packet and where (device, hook)\n"
	"  match       the map entry that matches: endpoint /32 or route with its prefix\n"
	"  verdict     redirect to a veth or the WireGuard device, drop, or kernel stack,\n"
	"              with the reason code (enum twill_reason) the program counts; 'drop:\n"
	"              WireGuard has no peer for DST' when the packet reaches the device but\n"
	"              no peer's allowed IPs hold DST\n"
	"  peer        WireGuard peer (node, public key) chosen by its allowed IPs\n"
	"  endpoint    the address:port WireGuard encrypts to\n"
	"  path        private network's name, or public\n"
	"  MTU         MTU of the device the packet leaves by, and the pod MTU\n"
	"  steps       the same, as sentences in order\n"
	"Exit 1 when the packet is dropped.\n";

static const char help_counters[] =
	"usage: twillctl counters [--watch [SECS]] [--count N]\n"
	"\n"
	"Per-reason packets and bytes summed over CPUs, from the dataplane's counters.\n"
	"  REASON       the reason code (enum twill_reason) without its TWILL_R_ prefix\n"
	"  PACKETS      packets counted since the dataplane was loaded\n"
	"  BYTES        bytes counted since the dataplane was loaded\n"
	"  DESCRIPTION  what the reason means\n"
	"With --watch, every SECS seconds (default 1): PKT/S and BYTES/S over the interval;\n"
	"--count N stops after N intervals. With --json, one JSON object per interval.\n"
	"A counter lower than at the last read was reset (the dataplane was reloaded): its\n"
	"rate shows 0 for that interval, and the interval says 'counters reset'.\n"
	"Exit 1 when no dataplane is loaded.\n";

static const char help_key[] =
	"usage: twillctl key\n"
	"\n"
	"Prints this node's WireGuard public key (base64), derived from <state-dir>/private.key\n"
	"or read from the device. The private key is never printed.\n";

/* ---- small formatting helpers -------------------------------------------- */

/* cidr_format() usable inside printf argument lists */
static const char *cidr_str(struct in_addr net, unsigned int len, char buf[CIDR_STR_LEN])
{
	cidr_format(net, (uint8_t)len, buf);
	return buf;
}

static const char *ip_str(struct in_addr addr, char *buf, size_t size)
{
	return inet_ntop(AF_INET, &addr, buf, (socklen_t)size);
}

static const char *key_str(const uint8_t key[WG_KEY_LEN], char buf[WG_KEY_B64_LEN])
{
	wgkey_to_base64(key, buf);
	return buf;
}

static const char *bytes_str(uint64_t v, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%" PRIu64 " B", v);
	else
		snprintf(buf, size, "%.2f %s", d, units[u]);
	return buf;
}

static const char *age_str(int64_t secs, char *buf, size_t size)
{
	if (secs < 0)
		snprintf(buf, size, "never");
	else if (secs < 60)
		snprintf(buf, size, "%llds ago", (long long)secs);
	else if (secs < 3600)
		snprintf(buf, size, "%lldm%llds ago", (long long)secs / 60, (long long)secs % 60);
	else
		snprintf(buf, size, "%lldh%lldm ago", (long long)secs / 3600,
			 (long long)(secs % 3600) / 60);
	return buf;
}

static const char *mac_str(const uint8_t mac[6], char *buf, size_t size)
{
	snprintf(buf, size, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
	return buf;
}

/* ---- aligned tables ------------------------------------------------------ */

#define TABLE_MAX_COLS 10

struct table {
	size_t ncols, nrows, cap;
	char **cells;   /* nrows * ncols, row 0 is the header */
};

/* A table too big for memory leaves nothing worth printing: give up at once. */
static void *table_oom_check(void *p)
{
	if (!p) {
		fprintf(stderr, "twillctl: out of memory\n");
		exit(EXIT_FAILURE_RUN);
	}
	return p;
}

static void table_row(struct table *t, ...)
{
	va_list ap;

	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;

		t->cells = table_oom_check(realloc(t->cells, ncap * t->ncols * sizeof(char *)));
		t->cap = ncap;
	}
	va_start(ap, t);
	for (size_t c = 0; c < t->ncols; c++) {
		const char *v = va_arg(ap, const char *);

		t->cells[t->nrows * t->ncols + c] = table_oom_check(strdup(v && *v ? v : "-"));
	}
	va_end(ap);
	t->nrows++;
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

static void table_print(struct table *t)
{
	size_t width[TABLE_MAX_COLS] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = strlen(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = t->cells[r * t->ncols + c];

			if (c + 1 == t->ncols)
				printf("%s\n", v);
			else
				printf("%-*s  ", (int)width[c], v);
		}
	}
	table_free(t);
}

static void json_print(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	fflush(stdout);
	json_decref(j);
}

static json_t *json_str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* ---- status -------------------------------------------------------------- */

static bool public_key_of(const struct ctl *ctl, const struct inspect_snapshot *s,
			  uint8_t pub[WG_KEY_LEN])
{
	if (s->wg) {
		memcpy(pub, s->wg->public_key, WG_KEY_LEN);
		return true;
	}
	return inspect_public_key(&ctl->opt, pub) == 0;
}

static int cmd_status(struct ctl *ctl, const struct inspect_snapshot *s)
{
	struct inspect_health h;
	const struct inspect_link *wl = inspect_link_by_name(s, s->wg_ifname);
	char b1[64], b2[64], b3[64], key[WG_KEY_B64_LEN] = "";
	uint8_t pub[WG_KEY_LEN];
	size_t veths = 0, veths_attached = 0;
	json_t *progs = json_array();

	if (inspect_health(s, &h) < 0) {
		fprintf(stderr, "twillctl: out of memory\n");
		return EXIT_FAILURE_RUN;
	}
	if (public_key_of(ctl, s, pub))
		key_str(pub, key);
	for (size_t i = 0; i < s->n_links; i++) {
		const struct inspect_link *l = &s->links[i];
		bool veth = !strncmp(l->info.name, INSPECT_VETH_PREFIX, 2) &&
			    !strcmp(l->info.kind, "veth");

		if (veth) {
			veths++;
			veths_attached += l->prog_ingress[0] != 0;
		}
		if (l->prog_ingress[0])
			json_array_append_new(progs, json_pack("{s:s,s:s,s:s}", "ifname", l->info.name,
							       "hook", "ingress", "program",
							       l->prog_ingress));
		if (l->prog_egress[0])
			json_array_append_new(progs, json_pack("{s:s,s:s,s:s}", "ifname", l->info.name,
							       "hook", "egress", "program",
							       l->prog_egress));
	}

	if (ctl->json) {
		json_t *j = json_object(), *problems = json_array();

		json_object_set_new(j, "node", json_str_or_null(s->have_state ? s->state.node_name : ""));
		json_object_set_new(j, "pod_cidr", s->have_state && s->state.pod_prefixlen ?
			json_string(cidr_str(s->state.pod_net, s->state.pod_prefixlen, b1)) :
			json_null());
		json_object_set_new(j, "cluster_cidr", s->have_state && s->state.cluster_prefixlen ?
			json_string(cidr_str(s->state.cluster_net, s->state.cluster_prefixlen, b2)) :
			json_null());
		json_object_set_new(j, "wg_device", json_string(s->wg_ifname));
		json_object_set_new(j, "wg_device_present", json_boolean(s->wg != NULL));
		json_object_set_new(j, "backend", json_str_or_null(s->wg ? s->wg_backend :
			(s->have_state ? s->state.backend : "")));
		json_object_set_new(j, "listen_port", s->wg ? json_integer(s->wg->listen_port) :
			(s->have_state ? json_integer(s->state.listen_port) : json_null()));
		json_object_set_new(j, "public_key", json_str_or_null(key));
		json_object_set_new(j, "wg_mtu", wl ? json_integer(wl->info.mtu) : json_null());
		json_object_set_new(j, "pod_mtu", s->have_state ? json_integer(s->state.mtu) : json_null());
		json_object_set_new(j, "strict", json_boolean(s->have_config ? s->config.strict :
			(s->have_state && s->state.strict)));
		json_object_set_new(j, "dataplane_loaded", json_boolean(s->dp_loaded));
		json_object_set_new(j, "services_nat", s->dp_loaded && s->dp_services >= 0 ?
			json_boolean(s->dp_services) : json_null());
		json_object_set_new(j, "bpf_pin_dir", json_string(s->pin_dir));
		json_object_set_new(j, "programs", progs);
		json_object_set_new(j, "pod_veths", json_integer((json_int_t)veths));
		json_object_set_new(j, "pod_veths_attached", json_integer((json_int_t)veths_attached));
		json_object_set_new(j, "peers_up", json_integer((json_int_t)h.peers_up));
		json_object_set_new(j, "peers_total", json_integer((json_int_t)h.peers_total));
		json_object_set_new(j, "peers_pending", json_integer((json_int_t)h.peers_pending));
		json_object_set_new(j, "pods", json_integer((json_int_t)h.pods));
		json_object_set_new(j, "last_reconcile_unix", s->have_state && s->state.last_reconcile_unix ?
			json_integer(s->state.last_reconcile_unix) : json_null());
		json_object_set_new(j, "last_error", json_str_or_null(s->have_state ? s->state.last_error : ""));
		json_object_set_new(j, "last_recovery", json_str_or_null(s->have_state ? s->state.last_recovery : ""));
		json_object_set_new(j, "last_recovery_unix", s->have_state && s->state.last_recovery_unix ?
			json_integer(s->state.last_recovery_unix) : json_null());
		json_object_set_new(j, "healthy", json_boolean(h.healthy));
		for (size_t i = 0; i < h.n_problems; i++)
			json_array_append_new(problems, json_string(h.problems[i]));
		json_object_set_new(j, "problems", problems);
		problems = json_array();
		for (size_t i = 0; i < h.n_warnings; i++)
			json_array_append_new(problems, json_string(h.warnings[i]));
		json_object_set_new(j, "warnings", problems);
		json_print(j);
		return h.healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
	}

	printf("node:            %s\n", s->have_state ? s->state.node_name : "(no node.json)");
	if (s->have_state)
		printf("pod CIDR:        %s (cluster %s)\n",
		       cidr_str(s->state.pod_net, s->state.pod_prefixlen, b1),
		       cidr_str(s->state.cluster_net, s->state.cluster_prefixlen, b2));
	if (s->wg)
		printf("wireguard:       %s, %s back end, port %u, MTU %s\n", s->wg_ifname,
		       s->wg_backend, s->wg->listen_port,
		       wl ? (snprintf(b3, sizeof(b3), "%u", wl->info.mtu), b3) : "?");
	else
		printf("wireguard:       %s: not found or not readable\n", s->wg_ifname);
	printf("public key:      %s\n", key[0] ? key : "(unknown)");
	if (s->have_state)
		printf("pod MTU:         %u\n", s->state.mtu);
	printf("strict mode:     %s\n", (s->have_config ? s->config.strict :
					  (s->have_state && s->state.strict)) ? "on" : "off");
	printf("dataplane:       %s (%s)\n", s->dp_loaded ? "loaded" : "not loaded", s->pin_dir);
	if (s->dp_loaded)
		printf("services:        %s\n", s->dp_services > 0 ? "on (NATed connections take the stack)" :
		       s->dp_services == 0 ? "off (no conntrack kfuncs: Services between pods break)" :
		       "unknown");
	printf("programs:       ");
	{
		bool any = false;

		for (size_t i = 0; i < s->n_links; i++) {
			const struct inspect_link *l = &s->links[i];
			bool veth = !strncmp(l->info.name, INSPECT_VETH_PREFIX, 2) &&
				    !strcmp(l->info.kind, "veth");

			if (veth)
				continue;
			if (l->prog_ingress[0]) {
				printf("%s %s on %s ingress", any ? ";" : "", l->prog_ingress, l->info.name);
				any = true;
			}
			if (l->prog_egress[0]) {
				printf("%s %s on %s egress", any ? ";" : "", l->prog_egress, l->info.name);
				any = true;
			}
		}
		if (veths)
			printf("%s %s on %zu of %zu pod veths", any ? ";" : "", TWILL_PROG_POD,
			       veths_attached, veths);
		else if (!any)
			printf(" none");
		putchar('\n');
	}
	json_decref(progs);
	if (h.peers_pending)
		printf("peers:           %zu up / %zu total (%zu pending: configured under %d s "
		       "ago, no handshake yet)\n", h.peers_up, h.peers_total, h.peers_pending,
		       INSPECT_STALE_HANDSHAKE_SEC);
	else
		printf("peers:           %zu up / %zu total\n", h.peers_up, h.peers_total);
	printf("pods:            %zu\n", h.pods);
	if (s->have_state) {
		if (s->state.last_reconcile_unix)
			printf("last reconcile:  %s\n",
			       age_str(s->now - s->state.last_reconcile_unix, b1, sizeof(b1)));
		else
			printf("last reconcile:  never\n");
		printf("last error:      %s\n", s->state.last_error[0] ? s->state.last_error : "none");
		if (s->state.last_recovery[0])
			printf("last recovery:   %s: %s\n",
			       age_str(s->now - s->state.last_recovery_unix, b1, sizeof(b1)),
			       s->state.last_recovery);
	}
	if (h.healthy)
		printf("health:          healthy%s\n", h.n_warnings ? ", with warnings" : "");
	else
		printf("health:          UNHEALTHY (%zu problem%s)\n", h.n_problems,
		       h.n_problems == 1 ? "" : "s");
	for (size_t i = 0; i < h.n_problems; i++)
		printf("  - %s\n", h.problems[i]);
	for (size_t i = 0; i < h.n_warnings; i++)
		printf("  ~ warning: %s\n", h.warnings[i]);
	return h.healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
}

/* ---- peers --------------------------------------------------------------- */

static void peer_cidrs(const struct wg_peer *p, char *buf, size_t size, json_t *arr)
{
	char c[32];

	buf[0] = '\0';
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		const struct wg_allowed_ip *a = &p->allowed_ips[i];
		char ip[INET6_ADDRSTRLEN];
		size_t used = strlen(buf);

		if (a->family == AF_INET)
			cidr_str(a->ip4, a->cidr, c);
		else {
			inet_ntop(AF_INET6, &a->ip6, ip, sizeof(ip));
			snprintf(c, sizeof(c), "%.24s/%u", ip, a->cidr);
		}
		snprintf(buf + used, size - used, "%s%s", used ? "," : "", c);
		if (arr)
			json_array_append_new(arr, json_string(c));
	}
}

static int cmd_peers(struct ctl *ctl, const struct inspect_snapshot *s)
{
	struct inspect_peer_row *rows;
	struct table t = { .ncols = 10 };
	size_t n;
	bool healthy = s->wg != NULL;
	json_t *arr = json_array();

	if (inspect_peers(s, &rows, &n) < 0) {
		fprintf(stderr, "twillctl: out of memory\n");
		return EXIT_FAILURE_RUN;
	}
	if (!s->wg)
		fprintf(stderr, "twillctl: WireGuard device '%s' not found or not readable\n",
			s->wg_ifname);
	table_row(&t, "NODE", "POD CIDR", "ENDPOINT", "PATH", "HANDSHAKE", "RX", "TX", "KEEPALIVE",
		  "STATUS", "PUBLIC KEY");
	for (size_t i = 0; i < n; i++) {
		const struct inspect_peer_row *r = &rows[i];
		const struct wg_peer *p = r->peer;
		char cidrs[256], ep[64], hs[32], rx[32], tx[32], ka[16], key[WG_KEY_B64_LEN];
		json_t *jc = json_array();

		peer_cidrs(p, cidrs, sizeof(cidrs), jc);
		inspect_endpoint_str(&p->endpoint, ep, sizeof(ep));
		key_str(p->public_key, key);
		if (p->keepalive_interval)
			snprintf(ka, sizeof(ka), "%us", p->keepalive_interval);
		else
			snprintf(ka, sizeof(ka), "off");
		healthy &= !r->stale;
		table_row(&t, r->node, cidrs, ep, r->path, age_str(r->handshake_age, hs, sizeof(hs)),
			  bytes_str(p->rx_bytes, rx, sizeof(rx)), bytes_str(p->tx_bytes, tx, sizeof(tx)),
			  ka, r->stale ? "STALE" : r->pending ? "pending" : "ok", key);
		json_array_append_new(arr, json_pack("{s:o,s:s,s:o,s:o,s:s,s:b,s:o,s:o,s:o,s:I,s:I,s:i,s:b,s:b}",
			"node", json_str_or_null(r->node),
			"public_key", key,
			"pod_cidrs", jc,
			"endpoint", p->endpoint.addr.sa_family ? json_string(ep) : json_null(),
			"path", r->path,
			"private", r->is_private,
			"last_handshake_unix", p->last_handshake_sec > 0 ?
				json_integer(p->last_handshake_sec) : json_null(),
			"handshake_age", r->handshake_age >= 0 ? json_integer(r->handshake_age) :
				json_null(),
			"configured_age", r->configured_age >= 0 ? json_integer(r->configured_age) :
				json_null(),
			"rx_bytes", (json_int_t)p->rx_bytes,
			"tx_bytes", (json_int_t)p->tx_bytes,
			"keepalive", (int)p->keepalive_interval,
			"stale", r->stale,
			"pending", r->pending));
	}
	free(rows);
	if (ctl->json) {
		table_free(&t);
		json_print(json_pack("{s:s,s:O,s:o,s:b}", "wg_device", s->wg_ifname,
				     "wg_device_present", s->wg ? json_true() : json_false(),
				     "peers", arr, "healthy", healthy));
		return healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
	}
	json_decref(arr);
	table_print(&t);
	return healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
}

/* ---- routes -------------------------------------------------------------- */

static int cmd_routes(struct ctl *ctl, const struct inspect_snapshot *s)
{
	struct inspect_route_row *rows;
	struct table t = { .ncols = 6 };
	size_t n;
	bool healthy = true;
	json_t *arr = json_array();

	if (inspect_routes(s, &rows, &n) < 0) {
		fprintf(stderr, "twillctl: out of memory\n");
		return EXIT_FAILURE_RUN;
	}
	table_row(&t, "CIDR", "NODE", "BPF", "KERNEL", "WIREGUARD", "STATUS");
	for (size_t i = 0; i < n; i++) {
		const struct inspect_route_row *r = &rows[i];
		char cidr[32], bpf[96] = "", kern[96] = "", wg[96] = "", a[INET_ADDRSTRLEN],
		     ifb[32], ifb2[32], kc[32], key[WG_KEY_B64_LEN], ep[64];
		json_t *jr = json_object();

		cidr_str(r->net, r->prefixlen, cidr);
		json_object_set_new(jr, "cidr", json_string(cidr));
		json_object_set_new(jr, "node", json_str_or_null(r->node));
		if (r->in_bpf) {
			struct in_addr na = { .s_addr = r->bpf.node_addr };

			snprintf(bpf, sizeof(bpf), "%s -> %s%s",
				 inspect_link_name(s, (int)r->bpf.ifindex, ifb, sizeof(ifb)),
				 ip_str(na, a, sizeof(a)),
				 r->bpf.flags & TWILL_ROUTE_F_PRIVATE ? " private" : "");
			json_object_set_new(jr, "bpf", json_pack("{s:s,s:i,s:s,s:b}",
				"dev", inspect_link_name(s, (int)r->bpf.ifindex, ifb, sizeof(ifb)),
				"ifindex", (int)r->bpf.ifindex, "endpoint", a,
				"private", (r->bpf.flags & TWILL_ROUTE_F_PRIVATE) != 0));
		} else {
			json_object_set_new(jr, "bpf", json_null());
		}
		if (r->in_kernel) {
			cidr_str(r->kernel.dst, r->kernel.dst_len, kc);
			if (r->kernel.gateway.s_addr)
				snprintf(kern, sizeof(kern), "%s via %s dev %s", kc,
					 ip_str(r->kernel.gateway, a, sizeof(a)),
					 inspect_link_name(s, r->kernel.ifindex, ifb2, sizeof(ifb2)));
			else
				snprintf(kern, sizeof(kern), "%s dev %s", kc,
					 inspect_link_name(s, r->kernel.ifindex, ifb2, sizeof(ifb2)));
			json_object_set_new(jr, "kernel", json_pack("{s:s,s:s,s:o}", "cidr", kc,
				"dev", inspect_link_name(s, r->kernel.ifindex, ifb2, sizeof(ifb2)),
				"gateway", r->kernel.gateway.s_addr ?
					json_string(ip_str(r->kernel.gateway, a, sizeof(a))) :
					json_null()));
		} else {
			json_object_set_new(jr, "kernel", json_null());
		}
		if (r->peer) {
			key_str(r->peer->public_key, key);
			inspect_endpoint_str(&r->peer->endpoint, ep, sizeof(ep));
			snprintf(wg, sizeof(wg), "%.8s... %s", key, ep);
			json_object_set_new(jr, "wireguard", json_pack("{s:s,s:o}", "public_key", key,
				"endpoint", r->peer->endpoint.addr.sa_family ? json_string(ep) :
					json_null()));
		} else {
			json_object_set_new(jr, "wireguard", json_null());
		}
		json_object_set_new(jr, "ok", json_boolean(!r->problem[0]));
		json_object_set_new(jr, "problem", json_str_or_null(r->problem));
		json_array_append_new(arr, jr);
		healthy &= !r->problem[0];
		table_row(&t, cidr, r->node, bpf, kern, wg, r->problem[0] ? r->problem : "ok");
	}
	free(rows);
	if (ctl->json) {
		table_free(&t);
		json_print(json_pack("{s:o,s:b}", "routes", arr, "healthy", healthy));
		return healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
	}
	json_decref(arr);
	table_print(&t);
	return healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
}

/* ---- pods ---------------------------------------------------------------- */

static int cmd_pods(struct ctl *ctl, const struct inspect_snapshot *s)
{
	struct inspect_pod_row *rows;
	struct table t = { .ncols = 7 };
	size_t n;
	bool healthy = true;
	json_t *arr = json_array();

	if (inspect_pods(s, &rows, &n) < 0) {
		fprintf(stderr, "twillctl: out of memory\n");
		return EXIT_FAILURE_RUN;
	}
	table_row(&t, "CONTAINER", "IFNAME", "POD IP", "HOST VETH", "MAC", "PROGRAM", "STATUS");
	for (size_t i = 0; i < n; i++) {
		const struct inspect_pod_row *r = &rows[i];
		char cid[16] = "", ipb[INET_ADDRSTRLEN] = "", mac[24] = "",
		     st[2 * INSPECT_TEXT_MAX + 32];
		bool has_addr = r->alloc || r->in_endpoints;

		if (r->alloc)
			snprintf(cid, sizeof(cid), "%.12s", r->alloc->container_id);
		if (has_addr)
			ip_str(r->addr, ipb, sizeof(ipb));
		if (r->in_endpoints)
			mac_str(r->endpoint.pod_mac, mac, sizeof(mac));
		healthy &= !r->problem[0];
		if (r->problem[0])
			snprintf(st, sizeof(st), "%s%s%s", r->problem, r->warning[0] ? "; " : "",
				 r->warning);
		else if (r->warning[0])
			snprintf(st, sizeof(st), "ok, kernel path: %s", r->warning);
		else
			snprintf(st, sizeof(st), "ok");
		table_row(&t, cid, r->alloc ? r->alloc->ifname : "", ipb,
			  r->veth ? r->veth->info.name : "", mac,
			  r->veth ? r->veth->prog_ingress : "", st);
		json_array_append_new(arr, json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:b,s:o,s:o}",
			"container_id", json_str_or_null(r->alloc ? r->alloc->container_id : ""),
			"ifname", json_str_or_null(r->alloc ? r->alloc->ifname : ""),
			"pod_ip", json_str_or_null(ipb),
			"host_veth", json_str_or_null(r->veth ? r->veth->info.name : ""),
			"host_ifindex", r->veth ? json_integer(r->veth->info.ifindex) :
				(r->in_endpoints ? json_integer(r->endpoint.host_ifindex) : json_null()),
			"mac", json_str_or_null(mac),
			"program", json_str_or_null(r->veth ? r->veth->prog_ingress : ""),
			"in_endpoint_map", r->in_endpoints,
			"ok", !r->problem[0],
			"problem", json_str_or_null(r->problem),
			"warning", json_str_or_null(r->warning)));
	}
	free(rows);
	if (ctl->json) {
		json_t *j = json_pack("{s:s,s:o,s:b}", "network", s->network, "pods", arr,
				      "healthy", healthy);

		table_free(&t);
		json_print(j);
		return healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
	}
	json_decref(arr);
	table_print(&t);
	return healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
}

/* ---- trace --------------------------------------------------------------- */

/* The addresses were checked by main, before anything was read. */
static int cmd_trace(struct ctl *ctl, const struct inspect_snapshot *s, struct in_addr a,
		     struct in_addr b)
{
	struct inspect_trace t;
	char m[32], ep[64], key[WG_KEY_B64_LEN] = "", verdict[160];
	char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];
	bool dropped;

	ip_str(a, src, sizeof(src));
	ip_str(b, dst, sizeof(dst));
	inspect_trace(s, a, b, &t);
	dropped = !strcmp(t.verdict, "drop");
	if (t.has_peer)
		key_str(t.peer_key, key);
	inspect_endpoint_str(&t.peer_endpoint, ep, sizeof(ep));
	if (!strcmp(t.match, "none"))
		snprintf(m, sizeof(m), "none");
	else
		cidr_str(t.match_net, t.match_prefixlen, m);
	if (dropped && t.wg_drop)
		snprintf(verdict, sizeof(verdict), "drop: WireGuard has no peer for %s", dst);
	else if (dropped)
		snprintf(verdict, sizeof(verdict), "drop: %s (%s)", inspect_reason_enum_name(t.reason),
			 inspect_reason_description(t.reason));
	else if (!strcmp(t.verdict, "redirect"))
		snprintf(verdict, sizeof(verdict), "redirect to %s (%s)", t.out_ifname,
			 inspect_reason_enum_name(t.reason));
	else if (t.reason >= 0)
		snprintf(verdict, sizeof(verdict), "kernel stack (%s)%s%s",
			 inspect_reason_enum_name(t.reason), t.out_ifname[0] ? ", out via " : "",
			 t.out_ifname);
	else
		snprintf(verdict, sizeof(verdict), "kernel stack%s%s",
			 t.out_ifname[0] ? ", out via " : "", t.out_ifname);

	if (ctl->json) {
		json_t *j = json_object(), *steps = json_array();

		json_object_set_new(j, "src", json_string(src));
		json_object_set_new(j, "dst", json_string(dst));
		json_object_set_new(j, "src_kind", json_string(inspect_addr_kind_name(t.src_kind)));
		json_object_set_new(j, "dst_kind", json_string(inspect_addr_kind_name(t.dst_kind)));
		json_object_set_new(j, "program", json_str_or_null(t.program));
		json_object_set_new(j, "program_ifname", json_str_or_null(t.program_ifname));
		json_object_set_new(j, "match", json_string(t.match));
		json_object_set_new(j, "match_cidr", strcmp(t.match, "none") ? json_string(m) : json_null());
		json_object_set_new(j, "verdict", json_string(t.verdict));
		json_object_set_new(j, "dropped_by", !dropped ? json_null() :
			json_string(t.wg_drop ? "wireguard" : "twill"));
		json_object_set_new(j, "reason", t.reason >= 0 ?
			json_string(inspect_reason_enum_name(t.reason)) : json_null());
		json_object_set_new(j, "out_ifname", json_str_or_null(t.out_ifname));
		json_object_set_new(j, "peer", t.has_peer || t.peer_endpoint.addr.sa_family ?
			json_pack("{s:o,s:o,s:o}", "node", json_str_or_null(t.peer_node),
				  "public_key", json_str_or_null(key),
				  "endpoint", t.peer_endpoint.addr.sa_family ? json_string(ep) :
					json_null()) : json_null());
		json_object_set_new(j, "private", json_boolean(t.is_private));
		json_object_set_new(j, "path", json_str_or_null(t.path));
		json_object_set_new(j, "mtu", t.mtu ? json_integer(t.mtu) : json_null());
		json_object_set_new(j, "pod_mtu", t.pod_mtu ? json_integer(t.pod_mtu) : json_null());
		for (size_t i = 0; i < t.n_steps; i++)
			json_array_append_new(steps, json_string(t.steps[i]));
		json_object_set_new(j, "steps", steps);
		json_print(j);
		return dropped ? EXIT_UNHEALTHY : EXIT_HEALTHY;
	}

	printf("trace %s -> %s\n", src, dst);
	printf("  source:       %s (%s)\n", src, inspect_addr_kind_name(t.src_kind));
	printf("  destination:  %s (%s)\n", dst, inspect_addr_kind_name(t.dst_kind));
	if (t.program[0])
		printf("  program:      %s on %s ingress\n", t.program, t.program_ifname);
	else
		printf("  program:      none (no twill program on this path)\n");
	if (strcmp(t.match, "none"))
		printf("  match:        %s map entry %s\n", t.match, m);
	else if (t.program[0])
		printf("  match:        none\n");
	printf("  verdict:      %s\n", verdict);
	if (t.has_peer || t.peer_endpoint.addr.sa_family) {
		printf("  peer:         %s%s%s\n", t.peer_node[0] ? t.peer_node : "(node unknown)",
		       key[0] ? " " : "", key);
		printf("  endpoint:     %s\n", ep);
		printf("  path:         %s\n", t.is_private ? t.path : "public");
	}
	if (t.mtu)
		printf("  MTU:          %u (%s), pod MTU %u\n", t.mtu, t.out_ifname, t.pod_mtu);
	else if (t.pod_mtu)
		printf("  MTU:          pod MTU %u\n", t.pod_mtu);
	printf("  steps:\n");
	for (size_t i = 0; i < t.n_steps; i++)
		printf("    %zu. %s\n", i + 1, t.steps[i]);
	return dropped ? EXIT_UNHEALTHY : EXIT_HEALTHY;
}

/* ---- counters ------------------------------------------------------------ */

/*
 * SIGINT and SIGTERM stay blocked and are taken here, so one that arrives while the
 * counters are read ends the watch at this pause: a handler's flag, tested before a
 * sleep(), would miss it and sleep the whole interval. True when asked to stop.
 */
static bool watch_pause(const sigset_t *stop, unsigned int secs)
{
	struct timespec now, end, left;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += secs;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0)
			return false;
		if (sigtimedwait(stop, NULL, &left) > 0)
			return true;
		if (errno != EINTR)
			return false;   /* EAGAIN: the interval is over */
	}
}

static int cmd_counters(struct ctl *ctl, const struct inspect_snapshot *s)
{
	struct twill_counter prev[TWILL_R_MAX], cur[TWILL_R_MAX];
	struct timespec t0, t1;
	sigset_t stop;
	long done = 0;
	bool reset;

	if (!s->dp_loaded || !s->have_counters) {
		fprintf(stderr, "twillctl: no dataplane loaded in '%s': no counters\n", s->pin_dir);
		if (ctl->json)
			json_print(json_pack("{s:s,s:n}", "bpf_pin_dir", s->pin_dir, "counters"));
		return EXIT_UNHEALTHY;
	}
	if (!ctl->watch) {
		struct table t = { .ncols = 4 };
		json_t *arr = json_array();

		table_row(&t, "REASON", "PACKETS", "BYTES", "DESCRIPTION");
		for (int r = 0; r < TWILL_R_MAX; r++) {
			char p[32], b[32];

			snprintf(p, sizeof(p), "%llu", (unsigned long long)s->counters[r].packets);
			snprintf(b, sizeof(b), "%llu", (unsigned long long)s->counters[r].bytes);
			table_row(&t, inspect_reason_name(r), p, b, inspect_reason_description(r));
			json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I}",
				"reason", inspect_reason_enum_name(r), "name", inspect_reason_name(r),
				"packets", (json_int_t)s->counters[r].packets,
				"bytes", (json_int_t)s->counters[r].bytes));
		}
		if (ctl->json) {
			table_free(&t);
			json_print(json_pack("{s:o}", "counters", arr));
		} else {
			json_decref(arr);
			table_print(&t);
		}
		return EXIT_HEALTHY;
	}

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	memcpy(prev, s->counters, sizeof(prev));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ctl->count < 0 || done < ctl->count) {
		struct table t = { .ncols = 5 };
		json_t *arr;
		double dt;
		int ret;

		if (watch_pause(&stop, ctl->watch_secs))
			break;
		ret = inspect_read_counters(s->pin_dir, cur);
		if (ret < 0) {
			fprintf(stderr, "twillctl: cannot read counters in '%s': %s\n", s->pin_dir,
				strerror(-ret));
			return EXIT_UNHEALTHY;
		}
		arr = json_array();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (dt <= 0)
			dt = 1;
		table_row(&t, "REASON", "PKT/S", "BYTES/S", "PACKETS", "BYTES");
		reset = false;
		for (int r = 0; r < TWILL_R_MAX; r++) {
			double pr = inspect_rate(prev[r].packets, cur[r].packets, dt);
			double br = inspect_rate(prev[r].bytes, cur[r].bytes, dt);
			char a[32], b[32], c[32], d[32];

			reset |= cur[r].packets < prev[r].packets || cur[r].bytes < prev[r].bytes;

			snprintf(a, sizeof(a), "%.1f", pr);
			snprintf(b, sizeof(b), "%.1f", br);
			snprintf(c, sizeof(c), "%llu", (unsigned long long)cur[r].packets);
			snprintf(d, sizeof(d), "%llu", (unsigned long long)cur[r].bytes);
			table_row(&t, inspect_reason_name(r), a, b, c, d);
			json_array_append_new(arr, json_pack("{s:s,s:f,s:f,s:I,s:I}",
				"reason", inspect_reason_enum_name(r), "packets_per_sec", pr,
				"bytes_per_sec", br, "packets", (json_int_t)cur[r].packets,
				"bytes", (json_int_t)cur[r].bytes));
		}
		if (ctl->json) {
			json_t *j = json_pack("{s:f,s:b,s:o}", "interval", dt, "reset", reset,
					      "rates", arr);

			table_free(&t);
			json_dumpf(j, stdout, JSON_COMPACT);
			putchar('\n');
			fflush(stdout);
			json_decref(j);
		} else {
			json_decref(arr);
			printf("--- every %us (%.2fs measured)%s\n", ctl->watch_secs, dt,
			       reset ? ", counters reset (the dataplane was reloaded)" : "");
			table_print(&t);
			fflush(stdout);
		}
		memcpy(prev, cur, sizeof(prev));
		t0 = t1;
		done++;
	}
	return EXIT_HEALTHY;
}

/* ---- key ----------------------------------------------------------------- */

/* Exit 3: says what could not be read and what to do about it. */
static int cannot_run(const struct inspect_options *opt, int err)
{
	const char *dir = opt->state_dir ? opt->state_dir : TWILL_DEFAULT_STATE_DIR;

	if (err == -ENOENT || err == -ENOTDIR)
		fprintf(stderr, "twillctl: no state folder '%s' (%s): is Twill installed here, "
			"or is --state-dir wrong?\n", dir, strerror(-err));
	else if (err == -EACCES || err == -EPERM)
		fprintf(stderr, "twillctl: not allowed to read the node (state folder '%s', pinned "
			"maps): %s; run it as root\n", dir, strerror(-err));
	else
		fprintf(stderr, "twillctl: cannot read the node's state: %s\n", strerror(-err));
	return EXIT_FAILURE_RUN;
}

static int cmd_key(struct ctl *ctl)
{
	uint8_t pub[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN];
	int ret;

	ret = inspect_state_dir_check(&ctl->opt);
	if (ret < 0)
		return cannot_run(&ctl->opt, ret);
	if (inspect_public_key(&ctl->opt, pub) < 0) {
		fprintf(stderr, "twillctl: no public key: no key file in '%s' and no device\n",
			ctl->opt.state_dir ? ctl->opt.state_dir : TWILL_DEFAULT_STATE_DIR);
		return EXIT_UNHEALTHY;
	}
	key_str(pub, b64);
	if (ctl->json)
		json_print(json_pack("{s:s}", "public_key", b64));
	else
		printf("%s\n", b64);
	return EXIT_HEALTHY;
}

/* ---- main ---------------------------------------------------------------- */

static const struct {
	const char *name;
	const char *help;
	int nargs;
} commands[] = {
	{ "status", help_status, 0 },   { "peers", help_peers, 0 },
	{ "routes", help_routes, 0 },   { "pods", help_pods, 0 },
	{ "trace", help_trace, 2 },     { "counters", help_counters, -1 },
	{ "key", help_key, 0 },
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("twillctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(twillctl --help for usage)\n", stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	enum { OPT_STATE = 256, OPT_PIN, OPT_WG, OPT_TOPO, OPT_NET, OPT_JSON, OPT_WATCH, OPT_COUNT };
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "bpf-pin-dir", required_argument, NULL, OPT_PIN },
		{ "wg-device", required_argument, NULL, OPT_WG },
		{ "topology", required_argument, NULL, OPT_TOPO },
		{ "network", required_argument, NULL, OPT_NET },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "watch", optional_argument, NULL, OPT_WATCH },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct ctl ctl = { .watch_secs = 1, .count = -1 };
	struct inspect_snapshot *snap = NULL;
	const char *cmd = NULL, *args[4] = { NULL };
	struct in_addr trace_addr[2] = { 0 };
	size_t nargs = 0, ci;
	bool help = false, watch_secs_given = false;
	unsigned long v;
	int c, ret;

	log_set_ident("twillctl");
	log_set_level(TWILL_LOG_ERROR);
	while ((c = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE:
			ctl.opt.state_dir = optarg;
			break;
		case OPT_PIN:
			ctl.opt.pin_dir = optarg;
			break;
		case OPT_WG:
			if (!nl_ifname_valid(optarg))
				return usage_error("--wg-device '%s' must be 1 to %d characters, "
						   "not '.' or '..', without '/', ':' or white space",
						   optarg, IF_NAMESIZE - 1);
			ctl.opt.wg_device = optarg;
			break;
		case OPT_TOPO:
			ctl.opt.topology_path = optarg;
			break;
		case OPT_NET:
			if (!*optarg || strlen(optarg) >= 64 || strchr(optarg, '/'))
				return usage_error("--network '%s' is not a network name", optarg);
			ctl.opt.network = optarg;
			break;
		case OPT_JSON:
			ctl.json = true;
			break;
		case OPT_WATCH:
			ctl.watch = true;
			if (optarg) {
				if (parse_uint(optarg, 86400, &v) < 0 || v == 0)
					return usage_error("--watch '%s' is not 1 to 86400 seconds",
							   optarg);
				ctl.watch_secs = (unsigned int)v;
				watch_secs_given = true;
			}
			break;
		case OPT_COUNT:
			if (parse_uint(optarg, 1000000, &v) < 0 || v == 0)
				return usage_error("--count '%s' is not a positive number", optarg);
			ctl.count = (long)v;
			break;
		case 'v':
			log_set_level(TWILL_LOG_DEBUG);
			break;
		case 'h':
			help = true;
			break;
		case 'V':
			printf("twillctl %s\n", TWILL_VERSION);
			return EXIT_HEALTHY;
		default:
			return usage_error("unknown option");
		}
	}
	if (optind < argc)
		cmd = argv[optind++];
	while (optind < argc) {
		if (nargs == sizeof(args) / sizeof(args[0]))
			return usage_error("too many arguments");
		args[nargs++] = argv[optind++];
	}
	if (!cmd) {
		if (help) {
			fputs(usage_global, stdout);
			return EXIT_HEALTHY;
		}
		fputs(usage_global, stderr);
		return EXIT_USAGE;
	}
	for (ci = 0; ci < sizeof(commands) / sizeof(commands[0]); ci++)
		if (!strcmp(commands[ci].name, cmd))
			break;
	if (ci == sizeof(commands) / sizeof(commands[0]))
		return usage_error("unknown command '%s'", cmd);
	if (help) {
		fputs(commands[ci].help, stdout);
		return EXIT_HEALTHY;
	}
	if (!strcmp(cmd, "counters")) {
		/* --watch SECS as two words: the optional argument getopt cannot take. */
		if (nargs == 1 && ctl.watch && !watch_secs_given) {
			if (parse_uint(args[0], 86400, &v) < 0 || v == 0)
				return usage_error("--watch '%s' is not 1 to 86400 seconds", args[0]);
			ctl.watch_secs = (unsigned int)v;
			nargs = 0;
		}
		if (nargs)
			return usage_error("counters takes no argument '%s'", args[0]);
		if (ctl.count > 0 && !ctl.watch)
			return usage_error("--count needs --watch");
	} else if ((int)nargs != commands[ci].nargs) {
		return usage_error("%s takes %d argument%s (twillctl %s --help)", cmd,
				   commands[ci].nargs, commands[ci].nargs == 1 ? "" : "s", cmd);
	} else if (ctl.watch || ctl.count > 0) {
		return usage_error("--watch and --count belong to counters");
	}

	if (!strcmp(cmd, "trace")) {
		for (size_t i = 0; i < 2; i++)
			if (inet_pton(AF_INET, args[i], &trace_addr[i]) != 1)
				return usage_error("trace: '%s' is not an IPv4 address", args[i]);
	}
	if (!strcmp(cmd, "key"))
		return cmd_key(&ctl);

	ret = inspect_collect(&ctl.opt, &snap);
	if (ret < 0)
		return cannot_run(&ctl.opt, ret);
	if (!strcmp(cmd, "status"))
		ret = cmd_status(&ctl, snap);
	else if (!strcmp(cmd, "peers"))
		ret = cmd_peers(&ctl, snap);
	else if (!strcmp(cmd, "routes"))
		ret = cmd_routes(&ctl, snap);
	else if (!strcmp(cmd, "pods"))
		ret = cmd_pods(&ctl, snap);
	else if (!strcmp(cmd, "trace"))
		ret = cmd_trace(&ctl, snap, trace_addr[0], trace_addr[1]);
	else
		ret = cmd_counters(&ctl, snap);
	inspect_snapshot_free(snap);
	return ret;
}
