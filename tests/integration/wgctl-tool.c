// SPDX-License-Identifier: Apache-2.0
/*
 * A test driver for lib/wgctl: `wg set`-like configuration and `wg show DEV dump`-like
 * output, so a shell test can drive Twill's WireGuard code and compare what it reads
 * with what wireguard-tools reads. Not installed; tests only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "wgctl.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: wgctl-tool [--backend auto|kernel|userspace] [--program PATH] CMD DEV ...\n"
		"  create DEV | delete DEV | exists DEV | show DEV | backend DEV\n"
		"  set DEV [private-key FILE] [listen-port N] [replace-peers]\n"
		"      [peer B64 [remove] [update-only] [endpoint IP:PORT] [persistent-keepalive N]\n"
		"                [allowed-ips LIST (replaces)] [add-allowed-ips LIST]]...\n"
		"  bench DEV N   set N peers, get them back, print the times\n");
	return 2;
}

static int parse_endpoint(const char *s, union wg_endpoint *ep)
{
	char buf[128], *port;

	memset(ep, 0, sizeof(*ep));
	snprintf(buf, sizeof(buf), "%s", s);
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close || close[1] != ':')
			return -1;
		*close = '\0';
		port = close + 2;
		if (inet_pton(AF_INET6, buf + 1, &ep->addr6.sin6_addr) != 1)
			return -1;
		ep->addr6.sin6_family = AF_INET6;
		ep->addr6.sin6_port = htons((uint16_t)atoi(port));
		return 0;
	}
	port = strrchr(buf, ':');
	if (!port)
		return -1;
	*port++ = '\0';
	if (inet_pton(AF_INET, buf, &ep->addr4.sin_addr) != 1)
		return -1;
	ep->addr4.sin_family = AF_INET;
	ep->addr4.sin_port = htons((uint16_t)atoi(port));
	return 0;
}

static int add_allowed_ips(struct wg_peer *p, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct wg_allowed_ip *a = wg_peer_add_allowed_ip(p);
		char *slash = strchr(tok, '/');

		while (*tok == ' ')
			tok++;
		if (slash)
			*slash++ = '\0';
		a->family = strchr(tok, ':') ? AF_INET6 : AF_INET;
		if (inet_pton(a->family, tok, a->family == AF_INET ? (void *)&a->ip4 :
			      (void *)&a->ip6) != 1) {
			ret = -1;
			break;
		}
		a->cidr = (uint8_t)(slash ? atoi(slash) : (a->family == AF_INET ? 32 : 128));
	}
	free(copy);
	return ret;
}

static int read_key_file(const char *path, uint8_t key[WG_KEY_LEN])
{
	char buf[128] = { 0 };
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return wgkey_from_base64(buf, key);
}

static int cmd_set(struct wgctl *wg, int argc, char **argv)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));
	struct wg_peer *peer = NULL;
	int ret = 1;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "private-key") && v) {
			if (read_key_file(v, dev->private_key) < 0) {
				fprintf(stderr, "bad private key file %s\n", v);
				goto out;
			}
			dev->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
			i++;
		} else if (!strcmp(a, "listen-port") && v) {
			dev->listen_port = (uint16_t)atoi(v);
			dev->flags |= WG_DEVICE_HAS_LISTEN_PORT;
			i++;
		} else if (!strcmp(a, "replace-peers")) {
			dev->flags |= WG_DEVICE_REPLACE_PEERS;
		} else if (!strcmp(a, "peer") && v) {
			peer = wg_device_add_peer(dev);
			if (wgkey_from_base64(v, peer->public_key) < 0) {
				fprintf(stderr, "bad peer key %s\n", v);
				goto out;
			}
			i++;
		} else if (peer && !strcmp(a, "remove")) {
			peer->flags |= WG_PEER_REMOVE;
		} else if (peer && !strcmp(a, "update-only")) {
			peer->flags |= WG_PEER_UPDATE_ONLY;
		} else if (peer && !strcmp(a, "endpoint") && v) {
			if (parse_endpoint(v, &peer->endpoint) < 0) {
				fprintf(stderr, "bad endpoint %s\n", v);
				goto out;
			}
			peer->flags |= WG_PEER_HAS_ENDPOINT;
			i++;
		} else if (peer && !strcmp(a, "persistent-keepalive") && v) {
			peer->keepalive_interval = (uint16_t)atoi(v);
			peer->flags |= WG_PEER_HAS_KEEPALIVE;
			i++;
		} else if (peer && (!strcmp(a, "allowed-ips") || !strcmp(a, "add-allowed-ips")) && v) {
			if (!strcmp(a, "allowed-ips"))
				peer->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
			if (add_allowed_ips(peer, v) < 0) {
				fprintf(stderr, "bad allowed IPs %s\n", v);
				goto out;
			}
			i++;
		} else {
			fprintf(stderr, "unexpected argument '%s'\n", a);
			goto out;
		}
	}
	ret = wgctl_set(wg, dev) < 0 ? 1 : 0;
out:
	wg_device_free(dev);
	return ret;
}

static void print_endpoint(const union wg_endpoint *ep)
{
	char host[INET6_ADDRSTRLEN];

	if (ep->addr.sa_family == AF_INET) {
		inet_ntop(AF_INET, &ep->addr4.sin_addr, host, sizeof(host));
		printf("%s:%u", host, ntohs(ep->addr4.sin_port));
	} else if (ep->addr.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->addr6.sin6_addr, host, sizeof(host));
		printf("[%s]:%u", host, ntohs(ep->addr6.sin6_port));
	} else {
		printf("(none)");
	}
}

static const uint8_t zero_key[WG_KEY_LEN];

/* The format of `wg show DEV dump`, field for field, plus extra columns after a '#'. */
static int cmd_show(struct wgctl *wg)
{
	struct wg_device *dev = NULL;
	char b64[WG_KEY_B64_LEN];

	if (wgctl_get(wg, &dev) < 0)
		return 1;
	if (memcmp(dev->private_key, zero_key, WG_KEY_LEN)) {
		wgkey_to_base64(dev->private_key, b64);
		printf("%s\t", b64);
		wgkey_to_base64(dev->public_key, b64);
		printf("%s\t", b64);
	} else {
		printf("(none)\t(none)\t");
	}
	printf("%u\t", dev->listen_port);
	if (dev->fwmark)
		printf("0x%x\n", dev->fwmark);
	else
		printf("off\n");
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		wgkey_to_base64(p->public_key, b64);
		printf("%s\t(none)\t", b64);
		print_endpoint(&p->endpoint);
		printf("\t");
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			char ip[INET6_ADDRSTRLEN];

			inet_ntop(p->allowed_ips[j].family, p->allowed_ips[j].family == AF_INET ?
				  (const void *)&p->allowed_ips[j].ip4 :
				  (const void *)&p->allowed_ips[j].ip6, ip, sizeof(ip));
			printf("%s%s/%u", j ? "," : "", ip, p->allowed_ips[j].cidr);
		}
		if (!p->n_allowed_ips)
			printf("(none)");
		printf("\t%lld\t%llu\t%llu\t", (long long)p->last_handshake_sec,
		       (unsigned long long)p->rx_bytes, (unsigned long long)p->tx_bytes);
		if (p->keepalive_interval)
			printf("%u\n", p->keepalive_interval);
		else
			printf("off\n");
	}
	printf("# ifindex %d\n", dev->ifindex);
	wg_device_free(dev);
	return 0;
}

static double elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int cmd_bench(struct wgctl *wg, int n)
{
	struct wg_device *dev = calloc(1, sizeof(*dev)), *got = NULL;
	struct timespec t0, t1, t2;
	int ret = 1;

	dev->flags = WG_DEVICE_REPLACE_PEERS | WG_DEVICE_HAS_PRIVATE_KEY;
	if (wgkey_generate_private(dev->private_key) < 0)
		goto out;
	for (int i = 0; i < n; i++) {
		struct wg_peer *p = wg_device_add_peer(dev);
		struct wg_allowed_ip *a = wg_peer_add_allowed_ip(p);

		/* Distinct keys without paying for n X25519 derivations. */
		memset(p->public_key, 0x5a, WG_KEY_LEN);
		memcpy(p->public_key, &i, sizeof(i));
		p->flags = WG_PEER_HAS_ENDPOINT | WG_PEER_REPLACE_ALLOWEDIPS;
		p->endpoint.addr4.sin_family = AF_INET;
		p->endpoint.addr4.sin_addr.s_addr = htonl(0xc6120000u + (uint32_t)i); /* 198.18/15 */
		p->endpoint.addr4.sin_port = htons(51820);
		a->family = AF_INET;
		a->ip4.s_addr = htonl(0x0a000000u + ((uint32_t)i << 8)); /* 10.x.y.0/24 */
		a->cidr = 24;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (wgctl_set(wg, dev) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (wgctl_get(wg, &got) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t2);
	if (got->n_peers != (size_t)n) {
		fprintf(stderr, "bench: set %d peers, got %zu back\n", n, got->n_peers);
		goto out;
	}
	/* The daemon may list peers in any order: match by the index in the key. */
	for (size_t i = 0; i < got->n_peers; i++) {
		const struct wg_peer *g = &got->peers[i];
		int idx;

		memcpy(&idx, g->public_key, sizeof(idx));
		if (idx < 0 || idx >= n || memcmp(g->public_key, dev->peers[idx].public_key,
						  WG_KEY_LEN) ||
		    g->n_allowed_ips != 1 ||
		    g->allowed_ips[0].ip4.s_addr != dev->peers[idx].allowed_ips[0].ip4.s_addr ||
		    g->endpoint.addr4.sin_addr.s_addr != dev->peers[idx].endpoint.addr4.sin_addr.s_addr) {
			fprintf(stderr, "bench: peer %zu read back differs\n", i);
			goto out;
		}
	}
	printf("bench: %d peers: set %.1f ms, get %.1f ms (%s back end)\n", n,
	       elapsed_ms(&t0, &t1), elapsed_ms(&t1, &t2), wg_backend_name(wgctl_backend(wg)));

	/* What a reconcile does with one changed node: one peer, nothing else touched. */
	{
		struct wg_device one = { 0 };
		struct wg_peer p = dev->peers[n / 2];

		p.flags = WG_PEER_HAS_ENDPOINT | WG_PEER_UPDATE_ONLY;
		p.allowed_ips = NULL;
		p.n_allowed_ips = 0;
		p.endpoint.addr4.sin_port = htons(51821);
		one.peers = &p;
		one.n_peers = 1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (wgctl_set(wg, &one) < 0)
			goto out;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("bench: one peer's endpoint among %d: set %.1f ms\n", n, elapsed_ms(&t0, &t1));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (wgctl_set(wg, dev) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("bench: %d peers again (replace_peers, same config): set %.1f ms\n", n,
	       elapsed_ms(&t0, &t1));
	ret = 0;
out:
	wg_device_free(got);
	wg_device_free(dev);
	return ret;
}

int main(int argc, char **argv)
{
	enum wg_backend backend = WG_BACKEND_AUTO;
	const char *program = NULL, *cmd, *ifname;
	struct wgctl *wg = NULL;
	int i = 1, ret = 1;

	log_set_ident("wgctl-tool");
	if (getenv("WGCTL_TOOL_DEBUG"))
		log_set_level(TWILL_LOG_DEBUG);
	while (i < argc && !strncmp(argv[i], "--", 2)) {
		if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			const char *b = argv[++i];

			backend = !strcmp(b, "kernel") ? WG_BACKEND_KERNEL :
				  !strcmp(b, "userspace") ? WG_BACKEND_USERSPACE : WG_BACKEND_AUTO;
		} else if (!strcmp(argv[i], "--program") && i + 1 < argc) {
			program = argv[++i];
		} else {
			return usage();
		}
		i++;
	}
	if (argc - i < 2)
		return usage();
	cmd = argv[i];
	ifname = argv[i + 1];
	i += 2;
	if (wgctl_open(ifname, backend, &wg) < 0)
		return 1;
	if (program && wgctl_set_userspace_program(wg, program) < 0)
		goto out;
	if (!strcmp(cmd, "create"))
		ret = wgctl_create_device(wg) < 0;
	else if (!strcmp(cmd, "delete"))
		ret = wgctl_delete_device(wg) < 0;
	else if (!strcmp(cmd, "exists"))
		ret = !wgctl_device_exists(wg);
	else if (!strcmp(cmd, "backend"))
		ret = printf("%s\n", wg_backend_name(wgctl_backend(wg))) < 0;
	else if (!strcmp(cmd, "show"))
		ret = cmd_show(wg);
	else if (!strcmp(cmd, "set"))
		ret = cmd_set(wg, argc - i, argv + i);
	else if (!strcmp(cmd, "bench") && i < argc)
		ret = cmd_bench(wg, atoi(argv[i]));
	else
		ret = usage();
out:
	wgctl_close(wg);
	return ret;
}
