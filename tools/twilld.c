// SPDX-License-Identifier: Apache-2.0
/* twilld: the Twill node agent. Parses flags, then hands over to lib/agent. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "cidr.h"
#include "log.h"
#include "strutil.h"
#include "netlink.h"
#include "twill-config.h"

#define DEFAULT_CLUSTER_CIDR "10.244.0.0/16"
#define DEFAULT_RESYNC_SEC 60
/*
 * Every peer handshakes at least every two minutes, so `twillctl peers` can tell a dead
 * peer from an idle one, and NAT or firewall state on public paths stays open.
 */
#define DEFAULT_KEEPALIVE_SEC 25

static void usage(FILE *f)
{
	fprintf(f,
"usage: twilld --topology FILE | --kube | --kubeconfig FILE [options]   run the node agent\n"
"       twilld --show-public-key [--state-dir DIR]\n"
"       twilld --show-node-name [--node NAME]   the node name the agent would use\n"
"       twilld cleanup [options]               remove what the agent made (not the key)\n"
"\n"
"  --topology FILE         NodeList or Node JSON (kubectl get nodes -o json), watched\n"
"  --kube                  watch Nodes on the API server (in-cluster service account)\n"
"  --kubeconfig FILE       watch Nodes on the API server named by a kubeconfig\n"
"                          (both publish this node's twill.dev/public-key)\n"
"  --node NAME             this node (default: $NODE_NAME, else the hostname lowercased\n"
"                          and trimmed, as kubelet names its Node)\n"
"  --state-dir DIR         key, node state, IPAM (default " TWILL_DEFAULT_STATE_DIR ")\n"
"  --cni-conf-dir DIR      where 10-twill.conflist goes (default " TWILL_DEFAULT_CNI_CONF_DIR ")\n"
"  --bpf-pin-dir DIR       BPF pins (default " TWILL_DEFAULT_BPF_PIN_DIR ")\n"
"  --wg-device NAME        WireGuard device (default twill0)\n"
"  --wg-backend B          auto, kernel or userspace (default auto)\n"
"  --listen-port PORT      instead of the node's twill.dev/wireguard-port\n"
"  --keepalive SECONDS     persistent keepalive for every peer (default 25, 0 = off)\n"
"  --cluster-cidr CIDR     the cluster pod range (default " DEFAULT_CLUSTER_CIDR ")\n"
"  --no-bpf                kernel routes only, no BPF dataplane (an earlier run's\n"
"                          programs and pins are removed)\n"
"  --strict, --no-strict   drop cluster traffic with no route (default strict)\n"
"  --metrics ADDR:PORT     Prometheus text endpoint\n"
"  --resync SECONDS        periodic reconcile, 0 = off (default %d)\n"
"  --once                  reconcile once, print a summary, exit\n"
"  --log-level LEVEL       error, warn, info, debug (default info)\n"
"  --log-file FILE         also log to FILE (handed to the CNI plugin too)\n"
"  --show-public-key       print the public key (creating the private key) and exit\n"
"  --version\n", DEFAULT_RESYNC_SEC);
}

/*
 * The CNI plugin runs from the runtime's working folder and the conflist must name
 * absolute paths: anchor relative ones at ours. Returns a malloc'ed path (leaked on
 * purpose: it lives as long as the process).
 */
static const char *absolute(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (!path || path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return path;
	if (asprintf(&out, "%s/%s", cwd, path) < 0)
		return path;
	return out;
}

/*
 * --node, else $NODE_NAME (the downward API's spec.nodeName, taken as is), else the
 * hostname as kubelet turns it into the Node's name without --hostname-override:
 * white space trimmed, lowercased, the domain kept.
 */
static int node_name(const char *node, char *out, size_t size)
{
	char host[HOST_NAME_MAX + 1] = "";
	size_t start = 0, end;

	if (!node || !*node)
		node = getenv("NODE_NAME");
	if (node && *node) {
		if (strlen(node) >= size) {
			fprintf(stderr, "twilld: node name '%.32s...' is too long\n", node);
			return -ENAMETOOLONG;
		}
		strcpy(out, node);
		return 0;
	}
	if (gethostname(host, sizeof(host) - 1) < 0) {
		int err = errno;

		fprintf(stderr, "twilld: no --node, no NODE_NAME and no hostname: %s\n", strerror(err));
		return -err;
	}
	end = strlen(host);
	while (start < end && isspace((unsigned char)host[start]))
		start++;
	while (end > start && isspace((unsigned char)host[end - 1]))
		end--;
	if (end == start || end - start >= size) {
		fprintf(stderr, "twilld: hostname '%s' is empty or too long for a node name: "
			"give --node or NODE_NAME\n", host);
		return -EINVAL;
	}
	for (size_t i = start; i < end; i++)
		out[i - start] = (char)tolower((unsigned char)host[i]);
	out[end - start] = '\0';
	return 0;
}

enum {
	OPT_TOPOLOGY = 256, OPT_NODE, OPT_STATE_DIR, OPT_CNI_CONF_DIR, OPT_BPF_PIN_DIR,
	OPT_WG_DEVICE, OPT_WG_BACKEND, OPT_LISTEN_PORT, OPT_KEEPALIVE, OPT_CLUSTER_CIDR,
	OPT_NO_BPF, OPT_STRICT, OPT_NO_STRICT, OPT_METRICS, OPT_RESYNC, OPT_ONCE, OPT_LOG_LEVEL,
	OPT_LOG_FILE, OPT_SHOW_KEY, OPT_VERSION, OPT_KUBE, OPT_KUBECONFIG, OPT_SHOW_NODE,
};

static const struct option options[] = {
	{ "topology", required_argument, NULL, OPT_TOPOLOGY },
	{ "kube", no_argument, NULL, OPT_KUBE },
	{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
	{ "node", required_argument, NULL, OPT_NODE },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "cni-conf-dir", required_argument, NULL, OPT_CNI_CONF_DIR },
	{ "bpf-pin-dir", required_argument, NULL, OPT_BPF_PIN_DIR },
	{ "wg-device", required_argument, NULL, OPT_WG_DEVICE },
	{ "wg-backend", required_argument, NULL, OPT_WG_BACKEND },
	{ "listen-port", required_argument, NULL, OPT_LISTEN_PORT },
	{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
	{ "cluster-cidr", required_argument, NULL, OPT_CLUSTER_CIDR },
	{ "no-bpf", no_argument, NULL, OPT_NO_BPF },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "no-strict", no_argument, NULL, OPT_NO_STRICT },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "resync", required_argument, NULL, OPT_RESYNC },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-file", required_argument, NULL, OPT_LOG_FILE },
	{ "show-public-key", no_argument, NULL, OPT_SHOW_KEY },
	{ "show-node-name", no_argument, NULL, OPT_SHOW_NODE },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct agent_config cfg = {
		.state_dir = TWILL_DEFAULT_STATE_DIR,
		.cni_conf_dir = TWILL_DEFAULT_CNI_CONF_DIR,
		.bpf_pin_dir = TWILL_DEFAULT_BPF_PIN_DIR,
		.wg_device = "twill0",
		.backend = WG_BACKEND_AUTO,
		.listen_port = -1,
		.strict = true,
		.resync_sec = DEFAULT_RESYNC_SEC,
		.keepalive = DEFAULT_KEEPALIVE_SEC,
	};
	const char *node = NULL, *cluster = NULL, *log_file = NULL;
	bool once = false, show_key = false, show_node = false, cleanup = false;
	enum log_level level = TWILL_LOG_INFO;
	struct agent_stats st;
	struct agent *a = NULL;
	unsigned long v;
	int c, ret;

	log_set_ident("twilld");
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_TOPOLOGY: cfg.topology_path = optarg; break;
		case OPT_KUBE: cfg.kube_in_cluster = true; break;
		case OPT_KUBECONFIG: cfg.kubeconfig = optarg; break;
		case OPT_NODE: node = optarg; break;
		case OPT_STATE_DIR: cfg.state_dir = optarg; break;
		case OPT_CNI_CONF_DIR: cfg.cni_conf_dir = optarg; break;
		case OPT_BPF_PIN_DIR: cfg.bpf_pin_dir = optarg; break;
		case OPT_WG_DEVICE:
			if (!nl_ifname_valid(optarg)) {
				fprintf(stderr, "twilld: --wg-device '%s' must be 1 to %d characters, "
					"not '.' or '..', without '/', ':' or white space\n",
					optarg, IF_NAMESIZE - 1);
				return 2;
			}
			cfg.wg_device = optarg;
			break;
		case OPT_WG_BACKEND:
			if (strcmp(optarg, "auto") == 0)
				cfg.backend = WG_BACKEND_AUTO;
			else if (strcmp(optarg, "kernel") == 0)
				cfg.backend = WG_BACKEND_KERNEL;
			else if (strcmp(optarg, "userspace") == 0)
				cfg.backend = WG_BACKEND_USERSPACE;
			else {
				fprintf(stderr, "twilld: --wg-backend '%s' is not auto, kernel or userspace\n", optarg);
				return 2;
			}
			break;
		case OPT_LISTEN_PORT:
			if (parse_uint(optarg, 65535, &v) < 0 || v == 0) {
				fprintf(stderr, "twilld: --listen-port '%s' is not a port\n", optarg);
				return 2;
			}
			cfg.listen_port = (int)v;
			break;
		case OPT_KEEPALIVE:
			if (parse_uint(optarg, 65535, &v) < 0) {
				fprintf(stderr, "twilld: --keepalive '%s' is not 0 to 65535 seconds\n", optarg);
				return 2;
			}
			cfg.keepalive = (uint16_t)v;
			break;
		case OPT_CLUSTER_CIDR: cluster = optarg; break;
		case OPT_NO_BPF: cfg.no_bpf = true; break;
		case OPT_STRICT: cfg.strict = true; break;
		case OPT_NO_STRICT: cfg.strict = false; break;
		case OPT_METRICS: cfg.metrics_addr = optarg; break;
		case OPT_RESYNC:
			if (parse_uint(optarg, 86400, &v) < 0) {
				fprintf(stderr, "twilld: --resync '%s' is not 0 to 86400 seconds\n", optarg);
				return 2;
			}
			cfg.resync_sec = (unsigned int)v;
			break;
		case OPT_ONCE: once = true; break;
		case OPT_LOG_LEVEL:
			if (log_level_parse(optarg, &level) < 0) {
				fprintf(stderr, "twilld: --log-level '%s' is not error, warn, info or debug\n", optarg);
				return 2;
			}
			break;
		case OPT_LOG_FILE: log_file = optarg; break;
		case OPT_SHOW_KEY: show_key = true; break;
		case OPT_SHOW_NODE: show_node = true; break;
		case OPT_VERSION: printf("twilld %s\n", TWILL_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc && strcmp(argv[optind], "cleanup") == 0) {
		cleanup = true;
		optind++;
	}
	if (optind < argc) {
		fprintf(stderr, "twilld: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	log_set_level(level);
	cfg.topology_path = absolute(cfg.topology_path);
	cfg.kubeconfig = absolute(cfg.kubeconfig);
	cfg.state_dir = absolute(cfg.state_dir);
	cfg.cni_conf_dir = absolute(cfg.cni_conf_dir);
	cfg.bpf_pin_dir = absolute(cfg.bpf_pin_dir);
	log_file = absolute(log_file);
	if (log_file) {
		ret = log_open_file(log_file);
		if (ret < 0) {
			fprintf(stderr, "twilld: cannot open log file '%s': %s\n", log_file, strerror(-ret));
			return 1;
		}
		cfg.log_file = log_file;
	}

	if (show_key) {
		char b64[WG_KEY_B64_LEN];

		ret = agent_public_key(cfg.state_dir, b64);
		if (ret < 0) {
			fprintf(stderr, "twilld: cannot read or create the key in '%s': %s\n",
				cfg.state_dir, strerror(-ret));
			return 1;
		}
		printf("%s\n", b64);
		return 0;
	}
	if (cleanup)
		return agent_cleanup(&cfg) < 0 ? 1 : 0;
	if (node_name(node, cfg.node_name, sizeof(cfg.node_name)) < 0)
		return 2;
	if (show_node) {
		printf("%s\n", cfg.node_name);
		return 0;
	}

	if (!!cfg.topology_path + cfg.kube_in_cluster + !!cfg.kubeconfig != 1) {
		fprintf(stderr, "twilld: give exactly one of --topology FILE, --kube, --kubeconfig FILE\n");
		usage(stderr);
		return 2;
	}
	if (!cluster) {
		cluster = DEFAULT_CLUSTER_CIDR;
		log_info("no --cluster-cidr: assuming the cluster pod range is %s", cluster);
	}
	if (cidr_parse(cluster, &cfg.cluster_net, &cfg.cluster_prefixlen) < 0) {
		fprintf(stderr, "twilld: --cluster-cidr '%s' is not an IPv4 CIDR\n", cluster);
		return 2;
	}
	cfg.cluster_net = cidr_mask(cfg.cluster_net, cfg.cluster_prefixlen);

	ret = agent_new(&cfg, &a);
	if (ret < 0)
		return 1;
	if (once) {
		memset(&st, 0, sizeof(st));
		ret = agent_wait_topology(a, 30000);
		if (ret == 0)
			ret = agent_reconcile(a, &st);
		printf("reconcile %s nodes=%zu peers=%zu added=%zu removed=%zu updated=%zu "
		       "unchanged=%zu routes_changed=%zu routes_removed=%zu bpf_changed=%zu "
		       "bpf_removed=%zu mtu=%u dataplane=%s parse_ms=%.2f diff_ms=%.2f "
		       "apply_ms=%.2f total_ms=%.2f device_ms=%.2f peers_ms=%.2f mtu_ms=%.2f "
		       "routes_ms=%.2f bpf_ms=%.2f\n",
		       ret < 0 ? "failed" : "ok", st.nodes, st.peers, st.peers_added,
		       st.peers_removed, st.peers_updated, st.peers_unchanged, st.routes_changed,
		       st.routes_removed, st.bpf_changed, st.bpf_removed, st.mtu,
		       st.dataplane_loaded ? "bpf" : "routes", st.parse_ms, st.diff_ms, st.apply_ms,
		       st.total_ms, st.device_ms, st.peers_ms, st.mtu_ms, st.routes_ms, st.bpf_ms);
	} else {
		ret = agent_run(a);
	}
	agent_free(a);
	log_close_file();
	return ret < 0 ? 1 : 0;
}
