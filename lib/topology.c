// SPDX-License-Identifier: Apache-2.0
/*
 * The cluster topology: a NodeList (or one Node) as `kubectl get nodes -o json` prints
 * it. The document is untrusted input: any field of the wrong type or shape fails the
 * whole document with a message naming the node and the field, so the agent keeps the
 * last good state instead of applying half of a broken one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cidr.h"
#include "atomicfile.h"
#include "log.h"
#include "strutil.h"
#include "topology.h"
#include "wgkey.h"

#define TOPO_FILE_MAX (256u << 20)
#define TOPO_DEFAULT_PORT 51820
#define ANN_PUBLIC_KEY "twill.dev/public-key"
#define ANN_PRIVATE_NET "twill.dev/private-network"
#define ANN_PRIVATE_IP "twill.dev/private-ip"
#define ANN_PORT "twill.dev/wireguard-port"

static int parse_ip(const char *s, uint16_t port, union wg_endpoint *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &out->addr4.sin_addr) == 1) {
		out->addr4.sin_family = AF_INET;
		out->addr4.sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &out->addr6.sin6_addr) == 1) {
		out->addr6.sin6_family = AF_INET6;
		out->addr6.sin6_port = htons(port);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -EINVAL;
}

/* "a.b.c.d/24" with no host bits set; -EAFNOSUPPORT for an IPv6 CIDR. */
static int parse_pod_cidr(const char *s, struct in_addr *net, uint8_t *prefixlen)
{
	struct in_addr a;
	uint8_t len;
	int r;

	r = cidr_parse(s, &a, &len);
	if (r < 0)
		return r;
	if (len != 24 || cidr_has_host_bits(a, len))
		return -EINVAL;
	*net = a;
	*prefixlen = len;
	return 0;
}

/* Returns the string at key, NULL when absent; -EINVAL through *err on a non-string. */
static const char *get_string(json_t *obj, const char *key, const char *node,
			      const char *field, int *err)
{
	json_t *v;

	if (!json_is_object(obj))
		return NULL;
	v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		log_err("topology: node '%.253s': %s is not a string", node, field);
		*err = -EINVAL;
		return NULL;
	}
	return json_string_value(v);
}

static int pick_address(json_t *addresses, const char *node, uint16_t port,
			union wg_endpoint *out)
{
	static const char *const types[] = { "ExternalIP", "InternalIP" };
	size_t i;
	json_t *a;

	memset(out, 0, sizeof(*out));
	if (!addresses || json_is_null(addresses))
		return 0;
	if (!json_is_array(addresses)) {
		log_err("topology: node '%.253s': status.addresses is not an array", node);
		return -EINVAL;
	}
	json_array_foreach(addresses, i, a) {
		json_t *t = json_object_get(a, "type"), *v = json_object_get(a, "address");

		if (!json_is_object(a) || !json_is_string(t) || !json_is_string(v)) {
			log_err("topology: node '%.253s': status.addresses[%zu] needs string type and address",
				node, i);
			return -EINVAL;
		}
	}
	/* ExternalIP before InternalIP; within a type, IPv4 before IPv6 (dual stack). */
	for (size_t ti = 0; ti < 2; ti++) {
		union wg_endpoint v6 = { 0 };

		json_array_foreach(addresses, i, a) {
			const char *type = json_string_value(json_object_get(a, "type"));
			const char *addr = json_string_value(json_object_get(a, "address"));
			union wg_endpoint ep;

			if (strcmp(type, types[ti]) != 0)
				continue;
			if (parse_ip(addr, port, &ep) < 0) {
				log_err("topology: node '%.253s': status.addresses %s '%.64s' is not an IP address",
					node, type, addr);
				return -EINVAL;
			}
			if (ep.addr.sa_family == AF_INET) {
				*out = ep;
				return 0;
			}
			if (!v6.addr.sa_family)
				v6 = ep;
		}
		if (v6.addr.sa_family) {
			*out = v6;
			return 0;
		}
	}
	return 0;
}

enum parse_verdict { NODE_OK, NODE_UNKEYED, NODE_SKIP };

static int parse_node(json_t *item, size_t index, struct topo_node *n, enum parse_verdict *verdict)
{
	json_t *meta, *spec, *status, *ann;
	const char *name, *cidr, *key, *pnet, *pip, *port;
	char label[32];
	int err = 0, r;

	memset(n, 0, sizeof(*n));
	*verdict = NODE_SKIP;
	if (!json_is_object(item)) {
		log_err("topology: items[%zu] is not an object", index);
		return -EINVAL;
	}
	meta = json_object_get(item, "metadata");
	snprintf(label, sizeof(label), "items[%zu]", index);
	name = get_string(meta, "name", label, "metadata.name", &err);
	if (err)
		return err;
	if (!name || !*name) {
		log_err("topology: %s has no metadata.name", label);
		return -EINVAL;
	}
	if (strlen(name) >= TOPO_NAME_MAX) {
		log_err("topology: %s: metadata.name '%.64s...' is longer than %d characters",
			label, name, TOPO_NAME_MAX - 1);
		return -EINVAL;
	}
	strcpy(n->name, name);

	spec = json_object_get(item, "spec");
	status = json_object_get(item, "status");
	ann = json_is_object(meta) ? json_object_get(meta, "annotations") : NULL;
	if (ann && !json_is_null(ann) && !json_is_object(ann)) {
		log_err("topology: node '%s': metadata.annotations is not an object", name);
		return -EINVAL;
	}

	port = get_string(ann, ANN_PORT, name, "annotation " ANN_PORT, &err);
	if (err)
		return err;
	n->wg_port = TOPO_DEFAULT_PORT;
	if (port) {
		unsigned long p;

		if (parse_uint(port, 65535, &p) < 0 || p == 0) {
			log_err("topology: node '%s': annotation " ANN_PORT " '%.32s' is not a port",
				name, port);
			return -EINVAL;
		}
		n->wg_port = (uint16_t)p;
	}

	if (pick_address(json_is_object(status) ? json_object_get(status, "addresses") : NULL,
			 name, n->wg_port, &n->public_addr) < 0)
		return -EINVAL;

	pnet = get_string(ann, ANN_PRIVATE_NET, name, "annotation " ANN_PRIVATE_NET, &err);
	pip = get_string(ann, ANN_PRIVATE_IP, name, "annotation " ANN_PRIVATE_IP, &err);
	if (err)
		return err;
	if (pnet) {
		if (strlen(pnet) >= TOPO_NAME_MAX) {
			log_err("topology: node '%s': annotation " ANN_PRIVATE_NET " '%.64s...' is too long",
				name, pnet);
			return -EINVAL;
		}
		strcpy(n->private_network, pnet);
	}
	if (pip && *pip && parse_ip(pip, n->wg_port, &n->private_addr) < 0) {
		log_err("topology: node '%s': annotation " ANN_PRIVATE_IP " '%.64s' is not an IP address",
			name, pip);
		return -EINVAL;
	}

	cidr = get_string(spec, "podCIDR", name, "spec.podCIDR", &err);
	if (err)
		return err;
	if (!cidr || !*cidr) {
		log_warn("topology: node '%s' has no spec.podCIDR yet: skipped", name);
		return 0;
	}
	r = parse_pod_cidr(cidr, &n->pod_net, &n->pod_prefixlen);
	if (r == -EAFNOSUPPORT) {
		log_warn("topology: node '%s': spec.podCIDR '%.64s' is IPv6, not supported yet: skipped",
			 name, cidr);
		return 0;
	}
	if (r < 0) {
		log_err("topology: node '%s': spec.podCIDR '%.64s' is not an IPv4 /24 network",
			name, cidr);
		return -EINVAL;
	}

	key = get_string(ann, ANN_PUBLIC_KEY, name, "annotation " ANN_PUBLIC_KEY, &err);
	if (err)
		return err;
	if (!key || !*key) {
		log_warn("topology: node '%s' has no " ANN_PUBLIC_KEY " annotation yet: not a peer", name);
		*verdict = NODE_UNKEYED;
		return 0;
	}
	if (wgkey_from_base64(key, n->public_key) < 0) {
		log_err("topology: node '%s': annotation " ANN_PUBLIC_KEY " '%.64s' is not a base64 WireGuard key",
			name, key);
		return -EINVAL;
	}
	*verdict = NODE_OK;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct topo_node *)a)->name, ((const struct topo_node *)b)->name);
}

static int cmp_name_ptr(const void *a, const void *b)
{
	return cmp_name(*(const struct topo_node *const *)a, *(const struct topo_node *const *)b);
}

static int cmp_net_ptr(const void *a, const void *b)
{
	const struct topo_node *x = *(const struct topo_node *const *)a;
	const struct topo_node *y = *(const struct topo_node *const *)b;
	uint32_t nx = ntohl(x->pod_net.s_addr), ny = ntohl(y->pod_net.s_addr);

	return nx < ny ? -1 : nx > ny;
}

static int check_unique(struct topology *t)
{
	size_t total = t->n_nodes + t->n_unkeyed, k = 0;
	const struct topo_node **all;
	int ret = 0;

	qsort(t->nodes, t->n_nodes, sizeof(*t->nodes), cmp_name);
	qsort(t->unkeyed, t->n_unkeyed, sizeof(*t->unkeyed), cmp_name);
	if (total == 0)
		return 0;
	all = calloc(total, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_nodes; i++)
		all[k++] = &t->nodes[i];
	for (size_t i = 0; i < t->n_unkeyed; i++)
		all[k++] = &t->unkeyed[i];

	qsort(all, total, sizeof(*all), cmp_name_ptr);
	for (size_t i = 1; i < total; i++) {
		if (strcmp(all[i - 1]->name, all[i]->name) == 0) {
			log_err("topology: node '%s' appears twice", all[i]->name);
			ret = -EINVAL;
			goto cleanup;
		}
	}
	/* Every accepted CIDR is a /24, so two overlap exactly when they are equal. */
	qsort(all, total, sizeof(*all), cmp_net_ptr);
	for (size_t i = 1; i < total; i++) {
		if (all[i - 1]->pod_net.s_addr == all[i]->pod_net.s_addr) {
			char buf[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &all[i]->pod_net, buf, sizeof(buf));
			log_err("topology: nodes '%s' and '%s': spec.podCIDR %s/24 overlaps",
				all[i - 1]->name, all[i]->name, buf);
			ret = -EINVAL;
			goto cleanup;
		}
	}
cleanup:
	free(all);
	return ret;
}

static int cmp_key_ptr(const void *a, const void *b)
{
	const struct topo_node *x = *(const struct topo_node *const *)a;
	const struct topo_node *y = *(const struct topo_node *const *)b;

	return memcmp(x->public_key, y->public_key, WG_KEY_LEN);
}

/* Two nodes with one key would make WireGuard move one /24 to the other's peer. */
static int check_keys(const struct topology *t)
{
	const struct topo_node **all;
	int ret = 0;

	if (t->n_nodes < 2)
		return 0;
	all = calloc(t->n_nodes, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_nodes; i++)
		all[i] = &t->nodes[i];
	qsort(all, t->n_nodes, sizeof(*all), cmp_key_ptr);
	for (size_t i = 1; i < t->n_nodes; i++) {
		if (memcmp(all[i - 1]->public_key, all[i]->public_key, WG_KEY_LEN) == 0) {
			log_err("topology: nodes '%s' and '%s' have the same " ANN_PUBLIC_KEY,
				all[i - 1]->name, all[i]->name);
			ret = -EINVAL;
			break;
		}
	}
	free(all);
	return ret;
}

int topology_parse(const char *json, size_t len, struct topology **out)
{
	struct topology *t = NULL;
	json_error_t jerr;
	json_t *root, *items, *kind;
	size_t n_items;
	int ret = 0;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		log_err("topology: invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
			jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		log_err("topology: document is not a JSON object");
		ret = -EINVAL;
		goto cleanup;
	}
	kind = json_object_get(root, "kind");
	items = json_object_get(root, "items");
	if (kind && !json_is_string(kind)) {
		log_err("topology: kind is not a string");
		ret = -EINVAL;
		goto cleanup;
	}
	if ((kind && strcmp(json_string_value(kind), "NodeList") == 0) || (!kind && items)) {
		if (!json_is_array(items)) {
			log_err("topology: NodeList has no items array");
			ret = -EINVAL;
			goto cleanup;
		}
		n_items = json_array_size(items);
	} else if (!kind || strcmp(json_string_value(kind), "Node") == 0) {
		items = NULL;
		n_items = 1;
	} else {
		log_err("topology: kind '%.64s' is neither NodeList nor Node", json_string_value(kind));
		ret = -EINVAL;
		goto cleanup;
	}

	t = calloc(1, sizeof(*t));
	if (!t) {
		ret = -ENOMEM;
		goto cleanup;
	}
	t->nodes = calloc(n_items ? n_items : 1, sizeof(*t->nodes));
	t->unkeyed = calloc(n_items ? n_items : 1, sizeof(*t->unkeyed));
	if (!t->nodes || !t->unkeyed) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n_items; i++) {
		json_t *item = items ? json_array_get(items, i) : root;
		struct topo_node node;
		enum parse_verdict verdict;

		ret = parse_node(item, i, &node, &verdict);
		if (ret < 0)
			goto cleanup;
		if (verdict == NODE_OK)
			t->nodes[t->n_nodes++] = node;
		else if (verdict == NODE_UNKEYED)
			t->unkeyed[t->n_unkeyed++] = node;
	}
	ret = check_unique(t);
	if (ret == 0)
		ret = check_keys(t);
	if (ret < 0)
		goto cleanup;
	*out = t;
	t = NULL;
cleanup:
	topology_free(t);
	json_decref(root);
	return ret;
}

int topology_load_file(const char *path, struct topology **out)
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	ret = file_read_all(path, TOPO_FILE_MAX, &buf, &len);
	if (ret == -EINVAL || ret == -EFBIG) {
		log_err("topology: '%s' is not a regular file below %u MiB", path, TOPO_FILE_MAX >> 20);
		return -EFBIG;
	}
	if (ret < 0) {
		log_err("topology: cannot read '%s': %s", path, strerror(-ret));
		return ret;
	}
	ret = topology_parse(buf, len, out);
	free(buf);
	return ret;
}

void topology_free(struct topology *topo)
{
	if (!topo)
		return;
	free(topo->nodes);
	free(topo->unkeyed);
	free(topo);
}

static const struct topo_node *find_in(const struct topo_node *nodes, size_t n, const char *name)
{
	struct topo_node key;

	if (!nodes || n == 0 || strlen(name) >= TOPO_NAME_MAX)
		return NULL;
	strcpy(key.name, name);
	return bsearch(&key, nodes, n, sizeof(*nodes), cmp_name);
}

const struct topo_node *topology_find(const struct topology *topo, const char *name)
{
	return topo ? find_in(topo->nodes, topo->n_nodes, name) : NULL;
}

const struct topo_node *topology_find_any(const struct topology *topo, const char *name)
{
	const struct topo_node *n = topology_find(topo, name);

	return n || !topo ? n : find_in(topo->unkeyed, topo->n_unkeyed, name);
}

int topology_endpoint(const struct topo_node *self, const struct topo_node *peer,
		      union wg_endpoint *out, bool *is_private)
{
	bool priv = self->private_network[0] &&
		    strcmp(self->private_network, peer->private_network) == 0 &&
		    peer->private_addr.addr.sa_family != 0;
	const union wg_endpoint *ep = priv ? &peer->private_addr : &peer->public_addr;

	if (!ep->addr.sa_family)
		return -ENOENT;
	*out = *ep;
	if (is_private)
		*is_private = priv;
	return 0;
}
