// SPDX-License-Identifier: Apache-2.0
/*
 * <state_dir>/peers.json: what the agent last asked WireGuard for, per peer. Written
 * atomically after each change of peers; read at start as untrusted input (a file that
 * is not ours is ignored: the agent then compares with the device instead).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "log.h"
#include "peerstate.h"
#include "statefile.h"
#include "wgkey.h"

#define PEERS_FILE "peers.json"
/* about 150 bytes a peer: room for far more nodes than a cluster has */
#define PEERS_FILE_MAX (32 * 1024 * 1024)

static json_t *endpoint_json(const union wg_endpoint *ep)
{
	char addr[INET6_ADDRSTRLEN] = "";
	int port = 0;

	if (ep->addr.sa_family == AF_INET) {
		inet_ntop(AF_INET, &ep->addr4.sin_addr, addr, sizeof(addr));
		port = ntohs(ep->addr4.sin_port);
	} else if (ep->addr.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->addr6.sin6_addr, addr, sizeof(addr));
		port = ntohs(ep->addr6.sin6_port);
	}
	return json_pack("{s:s, s:i}", "address", addr, "port", port);
}

int peerstate_write(const char *state_dir, const struct rc_peer *peers, size_t n)
{
	char path[PATH_MAX], key[WG_KEY_B64_LEN];
	json_t *root = NULL, *list = json_array();
	char *text = NULL;
	int ret;

	ret = statefile_path(state_dir, PEERS_FILE, path);
	if (ret < 0)
		goto cleanup;
	ret = -ENOMEM;
	if (!list)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		json_t *ep = endpoint_json(&peers[i].endpoint), *p;

		wgkey_to_base64(peers[i].public_key, key);
		p = ep ? json_pack("{s:s, s:s, s:o}", "name", peers[i].name, "publicKey", key,
				   "endpoint", ep) : NULL;
		if (!p || json_array_append_new(list, p) < 0)
			goto cleanup;
	}
	root = json_pack("{s:o}", "peers", list);
	list = NULL;
	if (!root)
		goto cleanup;
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text)
		goto cleanup;
	ret = atomic_write_file(path, text, strlen(text), 0644);
	if (ret < 0)
		log_err("peer state: cannot write '%s': %s", path, strerror(-ret));
cleanup:
	json_decref(list);
	json_decref(root);
	free(text);
	return ret;
}

static int parse_peer(json_t *v, size_t i, struct rc_peer *p, const char *path)
{
	json_t *ep = json_object_get(v, "endpoint");
	const char *name, *key, *addr;
	json_int_t port;

	if (json_unpack(v, "{s:s, s:s}", "name", &name, "publicKey", &key) < 0 ||
	    json_unpack(ep, "{s:s, s:I}", "address", &addr, "port", &port) < 0) {
		log_err("peer state '%s': peers[%zu] lacks name, publicKey or endpoint "
			"{address, port}", path, i);
		return -EINVAL;
	}
	memset(p, 0, sizeof(*p));
	if (strlen(name) >= sizeof(p->name) || wgkey_from_base64(key, p->public_key) < 0 ||
	    port < 0 || port > 65535) {
		log_err("peer state '%s': peers[%zu] has a bad name, key or port", path, i);
		return -EINVAL;
	}
	strcpy(p->name, name);
	if (!*addr)
		return 0;
	if (inet_pton(AF_INET, addr, &p->endpoint.addr4.sin_addr) == 1) {
		p->endpoint.addr4.sin_family = AF_INET;
		p->endpoint.addr4.sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, addr, &p->endpoint.addr6.sin6_addr) == 1) {
		p->endpoint.addr6.sin6_family = AF_INET6;
		p->endpoint.addr6.sin6_port = htons((uint16_t)port);
	} else {
		log_err("peer state '%s': peers[%zu] endpoint address '%.64s' is not an IP address",
			path, i, addr);
		return -EINVAL;
	}
	return 0;
}

static int cmp_peer_key(const void *a, const void *b)
{
	return memcmp(((const struct rc_peer *)a)->public_key,
		      ((const struct rc_peer *)b)->public_key, WG_KEY_LEN);
}

int peerstate_read(const char *state_dir, struct rc_peer **out, size_t *n)
{
	struct rc_peer *peers = NULL;
	char path[PATH_MAX];
	json_t *root, *list;
	size_t count;
	int ret;

	ret = statefile_path(state_dir, PEERS_FILE, path);
	if (ret < 0)
		return ret;
	ret = statefile_read_json(path, PEERS_FILE_MAX, "peer state", &root);
	if (ret < 0)
		return ret;
	ret = -EINVAL;
	list = json_object_get(root, "peers");
	if (!json_is_array(list)) {
		log_err("peer state '%s': no \"peers\" array", path);
		goto cleanup;
	}
	count = json_array_size(list);
	peers = calloc(count ? count : 1, sizeof(*peers));
	if (!peers) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < count; i++)
		if (parse_peer(json_array_get(list, i), i, &peers[i], path) < 0)
			goto cleanup;
	qsort(peers, count, sizeof(*peers), cmp_peer_key);
	for (size_t i = 1; i < count; i++) {
		if (cmp_peer_key(&peers[i - 1], &peers[i]) == 0) {
			log_err("peer state '%s': two peers share a public key", path);
			goto cleanup;
		}
	}
	*out = peers;
	*n = count;
	peers = NULL;
	ret = 0;
cleanup:
	free(peers);
	json_decref(root);
	return ret;
}

int peerstate_remove(const char *state_dir)
{
	return statefile_remove(state_dir, PEERS_FILE);
}
