// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "topology.h"

static void quiet(void)
{
	log_set_stderr(0);
}

static const char *key_b64(int seed)
{
	static char bufs[8][64];
	static int next;
	unsigned char raw[32];
	char *b = bufs[next++ % 8];

	memset(raw, seed, sizeof(raw));
	raw[0] = 0x40;
	EVP_EncodeBlock((unsigned char *)b, raw, sizeof(raw));
	return b;
}

/* One node of a NodeList, the way kubectl prints it (fields we ignore included). */
static char *node_json(const char *name, const char *cidr, const char *key, const char *ext,
		       const char *internal, const char *pnet, const char *pip, const char *port)
{
	char ann[1024] = "", addrs[512] = "", spec[128] = "";
	char *out;

	if (key)
		snprintf(ann + strlen(ann), sizeof(ann) - strlen(ann),
			 "\"twill.dev/public-key\":\"%s\",", key);
	if (pnet)
		snprintf(ann + strlen(ann), sizeof(ann) - strlen(ann),
			 "\"twill.dev/private-network\":\"%s\",", pnet);
	if (pip)
		snprintf(ann + strlen(ann), sizeof(ann) - strlen(ann),
			 "\"twill.dev/private-ip\":\"%s\",", pip);
	if (port)
		snprintf(ann + strlen(ann), sizeof(ann) - strlen(ann),
			 "\"twill.dev/wireguard-port\":\"%s\",", port);
	strcat(ann, "\"node.alpha.kubernetes.io/ttl\":\"0\"");
	strcat(addrs, "{\"type\":\"Hostname\",\"address\":\"host\"}");
	if (internal)
		snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs),
			 ",{\"type\":\"InternalIP\",\"address\":\"%s\"}", internal);
	if (ext)
		snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs),
			 ",{\"type\":\"ExternalIP\",\"address\":\"%s\"}", ext);
	if (cidr)
		snprintf(spec, sizeof(spec), "\"podCIDR\":\"%s\",\"podCIDRs\":[\"%s\"]", cidr, cidr);
	cr_assert(asprintf(&out,
		"{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
		"\"labels\":{\"kubernetes.io/os\":\"linux\"},\"annotations\":{%s}},"
		"\"spec\":{%s},\"status\":{\"addresses\":[%s],\"capacity\":{\"cpu\":\"2\"}}}",
		name, ann, spec, addrs) > 0);
	return out;
}

static char *list_json(char **nodes, size_t n)
{
	size_t len = 128;
	char *out;

	for (size_t i = 0; i < n; i++)
		len += strlen(nodes[i]) + 2;
	out = calloc(1, len);
	strcpy(out, "{\"apiVersion\":\"v1\",\"kind\":\"NodeList\",\"items\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, nodes[i]);
		free(nodes[i]);
	}
	strcat(out, "],\"metadata\":{\"resourceVersion\":\"\"}}");
	return out;
}

static int parse(const char *s, struct topology **t)
{
	return topology_parse(s, strlen(s), t);
}

static const char *ip4(const union wg_endpoint *e, char *buf)
{
	cr_assert_eq(e->addr.sa_family, AF_INET);
	return inet_ntop(AF_INET, &e->addr4.sin_addr, buf, INET_ADDRSTRLEN);
}

Test(topology, parses_a_node_list_sorted_by_name, .init = quiet)
{
	char *n[3] = {
		node_json("n3", "10.244.3.0/24", key_b64(3), "203.0.113.3", "10.0.0.3", NULL, NULL, NULL),
		node_json("n1", "10.244.1.0/24", key_b64(1), "203.0.113.1", "10.0.0.1", "rack-a", "192.168.10.1", "51000"),
		node_json("n2", "10.244.2.0/24", key_b64(2), NULL, "10.0.0.2", "rack-a", "192.168.10.2", NULL),
	};
	char *doc = list_json(n, 3);
	struct topology *t = NULL;
	const struct topo_node *n1, *n2;
	char buf[64];
	uint8_t k1[32];

	cr_assert_eq(parse(doc, &t), 0);
	cr_assert_eq(t->n_nodes, 3);
	cr_assert_str_eq(t->nodes[0].name, "n1");
	cr_assert_str_eq(t->nodes[2].name, "n3");
	n1 = topology_find(t, "n1");
	cr_assert_not_null(n1);
	cr_assert_eq(n1->pod_prefixlen, 24);
	cr_assert_str_eq(inet_ntop(AF_INET, &n1->pod_net, buf, sizeof(buf)), "10.244.1.0");
	cr_assert_str_eq(ip4(&n1->public_addr, buf), "203.0.113.1");
	cr_assert_eq(ntohs(n1->public_addr.addr4.sin_port), 51000);
	cr_assert_eq(n1->wg_port, 51000);
	cr_assert_str_eq(n1->private_network, "rack-a");
	cr_assert_str_eq(ip4(&n1->private_addr, buf), "192.168.10.1");
	cr_assert_eq(ntohs(n1->private_addr.addr4.sin_port), 51000);
	memset(k1, 1, sizeof(k1));
	k1[0] = 0x40;
	cr_assert_arr_eq(n1->public_key, k1, 32);
	n2 = topology_find(t, "n2");
	/* no ExternalIP: InternalIP is the public address, default port */
	cr_assert_str_eq(ip4(&n2->public_addr, buf), "10.0.0.2");
	cr_assert_eq(n2->wg_port, 51820);
	cr_assert_null(topology_find(t, "n4"));
	topology_free(t);
	free(doc);
}

Test(topology, parses_a_single_node, .init = quiet)
{
	char *doc = node_json("solo", "10.244.7.0/24", key_b64(7), "198.51.100.7", NULL, NULL, NULL, NULL);
	struct topology *t = NULL;

	cr_assert_eq(parse(doc, &t), 0);
	cr_assert_eq(t->n_nodes, 1);
	cr_assert_str_eq(t->nodes[0].name, "solo");
	cr_assert_eq(t->nodes[0].private_addr.addr.sa_family, 0);
	cr_assert_str_eq(t->nodes[0].private_network, "");
	topology_free(t);
	free(doc);
}

Test(topology, skips_partial_nodes_with_a_warning, .init = quiet)
{
	char *n[4] = {
		node_json("ok", "10.244.1.0/24", key_b64(1), "203.0.113.1", NULL, NULL, NULL, NULL),
		node_json("nokey", "10.244.2.0/24", NULL, "203.0.113.2", NULL, NULL, NULL, NULL),
		node_json("nocidr", NULL, key_b64(3), "203.0.113.3", NULL, NULL, NULL, NULL),
		node_json("v6cidr", "fd00:10:244:4::/64", key_b64(4), "203.0.113.4", NULL, NULL, NULL, NULL),
	};
	char *doc = list_json(n, 4);
	struct topology *t = NULL;

	cr_assert_eq(parse(doc, &t), 0);
	cr_assert_eq(t->n_nodes, 1);
	cr_assert_str_eq(t->nodes[0].name, "ok");
	cr_assert_null(topology_find(t, "nokey"));
	cr_assert_not_null(topology_find_any(t, "nokey"));
	cr_assert_null(topology_find_any(t, "nocidr"));
	cr_assert_null(topology_find_any(t, "v6cidr"));
	topology_free(t);
	free(doc);
}

Test(topology, node_without_addresses_has_no_endpoint, .init = quiet)
{
	const char *doc = "{\"kind\":\"Node\",\"metadata\":{\"name\":\"bare\",\"annotations\":"
			  "{\"twill.dev/public-key\":\"QAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"}},"
			  "\"spec\":{\"podCIDR\":\"10.244.9.0/24\"}}";
	struct topology *t = NULL;
	union wg_endpoint ep;

	cr_assert_eq(parse(doc, &t), 0);
	cr_assert_eq(t->nodes[0].public_addr.addr.sa_family, 0);
	cr_assert_eq(topology_endpoint(&t->nodes[0], &t->nodes[0], &ep, NULL), -ENOENT);
	topology_free(t);
}

Test(topology, accepts_ipv6_addresses, .init = quiet)
{
	char *n[2] = {
		node_json("a", "10.244.1.0/24", key_b64(1), "2001:db8::1", NULL, "dc", "fd00::1", NULL),
		node_json("b", "10.244.2.0/24", key_b64(2), "2001:db8::2", "192.0.2.2", NULL, NULL, NULL),
	};
	char *doc = list_json(n, 2);
	struct topology *t = NULL;
	const struct topo_node *a, *b;

	cr_assert_eq(parse(doc, &t), 0);
	a = topology_find(t, "a");
	b = topology_find(t, "b");
	cr_assert_eq(a->public_addr.addr.sa_family, AF_INET6);
	cr_assert_eq(ntohs(a->public_addr.addr6.sin6_port), 51820);
	cr_assert_eq(a->private_addr.addr.sa_family, AF_INET6);
	cr_assert_eq(b->public_addr.addr.sa_family, AF_INET6); /* ExternalIP wins over InternalIP */
	topology_free(t);
	free(doc);
}

struct hostile_case {
	const char *what;
	const char *doc;
};

#define KEY1 "QAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY2 "QAICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
#define NODE(name, cidr, ann) \
	"{\"metadata\":{\"name\":" name ",\"annotations\":{" ann "}},\"spec\":{\"podCIDR\":" cidr "}}"
#define LIST(...) "{\"kind\":\"NodeList\",\"items\":[" __VA_ARGS__ "]}"
#define PK(k) "\"twill.dev/public-key\":" k

static const struct hostile_case hostile[] = {
	{ "not JSON", "{\"kind\":\"NodeList\",\"items\":[" },
	{ "empty", "" },
	{ "array root", "[]" },
	{ "items not array", "{\"kind\":\"NodeList\",\"items\":{}}" },
	{ "item not object", LIST("42") },
	{ "kind not string", "{\"kind\":7,\"items\":[]}" },
	{ "wrong kind", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"}}" },
	{ "name number", LIST(NODE("12", "\"10.244.1.0/24\"", PK("\"" KEY1 "\""))) },
	{ "name missing", LIST("{\"metadata\":{},\"spec\":{\"podCIDR\":\"10.244.1.0/24\"}}") },
	{ "podCIDR number", LIST(NODE("\"a\"", "24", PK("\"" KEY1 "\""))) },
	{ "podCIDR garbage", LIST(NODE("\"a\"", "\"banana\"", PK("\"" KEY1 "\""))) },
	{ "podCIDR /16", LIST(NODE("\"a\"", "\"10.244.0.0/16\"", PK("\"" KEY1 "\""))) },
	{ "podCIDR /25", LIST(NODE("\"a\"", "\"10.244.1.0/25\"", PK("\"" KEY1 "\""))) },
	{ "podCIDR host bits", LIST(NODE("\"a\"", "\"10.244.1.7/24\"", PK("\"" KEY1 "\""))) },
	{ "podCIDR no prefix", LIST(NODE("\"a\"", "\"10.244.1.0\"", PK("\"" KEY1 "\""))) },
	{ "podCIDR /24x", LIST(NODE("\"a\"", "\"10.244.1.0/24x\"", PK("\"" KEY1 "\""))) },
	{ "key number", LIST(NODE("\"a\"", "\"10.244.1.0/24\"", PK("5"))) },
	{ "key short", LIST(NODE("\"a\"", "\"10.244.1.0/24\"", PK("\"QAEBAQ==\""))) },
	{ "key no padding", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
				     PK("\"QAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB\""))) },
	{ "key bad chars", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
				    PK("\"QAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBA!E=\""))) },
	/* KEY1 with its two unused trailing bits set: the same key spelled another way */
	{ "key trailing bits", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
					PK("\"QAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQH=\""))) },
	{ "key double pad", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
				     PK("\"QAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ==\""))) },
	{ "annotations array", LIST("{\"metadata\":{\"name\":\"a\",\"annotations\":[]},"
				     "\"spec\":{\"podCIDR\":\"10.244.1.0/24\"}}") },
	{ "port zero", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
				PK("\"" KEY1 "\"") ",\"twill.dev/wireguard-port\":\"0\"")) },
	{ "port big", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
			       PK("\"" KEY1 "\"") ",\"twill.dev/wireguard-port\":\"70000\"")) },
	{ "port words", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
				 PK("\"" KEY1 "\"") ",\"twill.dev/wireguard-port\":\"http\"")) },
	{ "private ip garbage", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
					 PK("\"" KEY1 "\"") ",\"twill.dev/private-ip\":\"10.0.0.300\"")) },
	{ "private network number", LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
					     PK("\"" KEY1 "\"") ",\"twill.dev/private-network\":1")) },
	{ "addresses object", LIST("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"podCIDR\":\"10.244.1.0/24\"},"
				    "\"status\":{\"addresses\":{}}}") },
	{ "address not IP", LIST("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"podCIDR\":\"10.244.1.0/24\"},"
				  "\"status\":{\"addresses\":[{\"type\":\"ExternalIP\",\"address\":\"example.com\"}]}}") },
	{ "address type number", LIST("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"podCIDR\":\"10.244.1.0/24\"},"
				       "\"status\":{\"addresses\":[{\"type\":1,\"address\":\"1.2.3.4\"}]}}") },
	{ "duplicate names", LIST(NODE("\"a\"", "\"10.244.1.0/24\"", PK("\"" KEY1 "\"")) ","
				   NODE("\"a\"", "\"10.244.2.0/24\"", "")) },
	{ "duplicate keyed names", LIST(NODE("\"b\"", "\"10.244.1.0/24\"", PK("\"" KEY1 "\"")) ","
				       NODE("\"a\"", "\"10.244.3.0/24\"", "") ","
				       NODE("\"b\"", "\"10.244.2.0/24\"", PK("\"" KEY2 "\""))) },
	{ "overlapping CIDRs", LIST(NODE("\"a\"", "\"10.244.1.0/24\"", PK("\"" KEY1 "\"")) ","
				     NODE("\"b\"", "\"10.244.1.0/24\"", "")) },
	{ "same key twice", LIST(NODE("\"a\"", "\"10.244.1.0/24\"", PK("\"" KEY1 "\"")) ","
				  NODE("\"b\"", "\"10.244.2.0/24\"", PK("\"" KEY1 "\""))) },
	{ "duplicate JSON keys", "{\"kind\":\"NodeList\",\"kind\":\"NodeList\",\"items\":[]}" },
};

Test(topology, rejects_hostile_documents, .init = quiet)
{
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct topology *t = (struct topology *)0x1;
		int r = topology_parse(hostile[i].doc, strlen(hostile[i].doc), &t);

		cr_expect_lt(r, 0, "case '%s' was accepted", hostile[i].what);
		cr_expect_eq(t, (struct topology *)0x1, "case '%s' set *out", hostile[i].what);
	}
}

Test(topology, rejects_huge_names_and_survives_huge_strings, .init = quiet)
{
	size_t big = 1 << 20;
	char *huge = malloc(big + 1), *doc;
	struct topology *t = NULL;

	memset(huge, 'x', big);
	huge[big] = '\0';
	cr_assert(asprintf(&doc, LIST(NODE("\"%s\"", "\"10.244.1.0/24\"", PK("\"" KEY1 "\""))), huge) > 0);
	cr_assert_lt(parse(doc, &t), 0);
	free(doc);
	cr_assert(asprintf(&doc, LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
		PK("\"" KEY1 "\"") ",\"twill.dev/private-network\":\"%s\"")), huge) > 0);
	cr_assert_lt(parse(doc, &t), 0);
	free(doc);
	/* a huge field we do not read is fine */
	cr_assert(asprintf(&doc, LIST(NODE("\"a\"", "\"10.244.1.0/24\"",
		PK("\"" KEY1 "\"") ",\"other\":\"%s\"")), huge) > 0);
	cr_assert_eq(parse(doc, &t), 0);
	cr_assert_eq(t->n_nodes, 1);
	topology_free(t);
	free(doc);
	free(huge);
}

Test(topology, loads_a_file, .init = quiet)
{
	char path[] = "/tmp/twill-ag-topo-XXXXXX";
	int fd = mkstemp(path);
	char *doc = node_json("f", "10.244.5.0/24", key_b64(5), "203.0.113.5", NULL, NULL, NULL, NULL);
	struct topology *t = NULL;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
	close(fd);
	cr_assert_eq(topology_load_file(path, &t), 0);
	cr_assert_str_eq(t->nodes[0].name, "f");
	topology_free(t);
	unlink(path);
	cr_assert_eq(topology_load_file(path, &t), -ENOENT);
	free(doc);
}

struct ep_case {
	const char *what;
	const char *self_net, *peer_net, *peer_pip;
	const char *want;
	bool want_private;
};

static const struct ep_case ep_cases[] = {
	{ "same private network", "rack-a", "rack-a", "192.168.0.2", "192.168.0.2", true },
	{ "different private networks", "rack-a", "rack-b", "192.168.0.2", "203.0.113.2", false },
	{ "self on none", "", "rack-a", "192.168.0.2", "203.0.113.2", false },
	{ "peer on none", "rack-a", "", NULL, "203.0.113.2", false },
	{ "neither", "", "", NULL, "203.0.113.2", false },
	{ "both empty with IPs", "", "", "192.168.0.2", "203.0.113.2", false },
	{ "same network, peer lacks private IP", "rack-a", "rack-a", NULL, "203.0.113.2", false },
};

Test(topology, endpoint_choice, .init = quiet)
{
	for (size_t i = 0; i < sizeof(ep_cases) / sizeof(ep_cases[0]); i++) {
		const struct ep_case *c = &ep_cases[i];
		char *n[2] = {
			node_json("self", "10.244.1.0/24", key_b64(1), "203.0.113.1", NULL,
				  *c->self_net ? c->self_net : NULL, "192.168.0.1", NULL),
			node_json("peer", "10.244.2.0/24", key_b64(2), "203.0.113.2", NULL,
				  *c->peer_net ? c->peer_net : NULL, c->peer_pip, "51999"),
		};
		char *doc = list_json(n, 2);
		struct topology *t = NULL;
		union wg_endpoint ep;
		bool priv = !c->want_private;
		char buf[64];

		cr_assert_eq(parse(doc, &t), 0, "%s", c->what);
		cr_assert_eq(topology_endpoint(topology_find(t, "self"), topology_find(t, "peer"),
					       &ep, &priv), 0, "%s", c->what);
		cr_expect_str_eq(ip4(&ep, buf), c->want, "%s", c->what);
		cr_expect_eq(ntohs(ep.addr4.sin_port), 51999, "%s", c->what);
		cr_expect_eq(priv, c->want_private, "%s", c->what);
		topology_free(t);
		free(doc);
	}
}
