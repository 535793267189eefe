// SPDX-License-Identifier: Apache-2.0
/* The verbs' input checks and the host veth naming: what runs before any netlink call. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni_plugin.h"
#include "ipam.h"
#include "nodestate.h"
#include "log.h"

static int run(const char *cmd, const char *id, const char *netns, const char *ifname,
	       const char *config, json_t **out, struct cni_error *err)
{
	struct cni_request req = {
		.command = cmd, .container_id = id, .netns = netns, .ifname = ifname,
		.config = config, .config_len = config ? strlen(config) : 0,
	};

	log_set_stderr(0);
	return cni_plugin_run(&req, out, err);
}

Test(cni_plugin, host_veth_name_is_short_deterministic_and_distinct)
{
	char a[IF_NAMESIZE], b[IF_NAMESIZE], c[IF_NAMESIZE];

	cni_host_veth_name("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			   "eth0", a);
	cni_host_veth_name("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			   "eth0", b);
	cr_assert_str_eq(a, b);
	cr_assert_eq(strlen(a), 15);
	cr_assert_eq(strncmp(a, "tw", 2), 0);
	cr_assert_eq(strspn(a + 2, "0123456789abcdef"), 13);
	cni_host_veth_name("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			   "net1", c);
	cr_assert_str_neq(a, c);
	/* the separator keeps the split between id and ifname in the hash */
	cni_host_veth_name("ab", "c", a);
	cni_host_veth_name("a", "bc", b);
	cr_assert_str_neq(a, b);
	/* FNV-1a 64 of "c1\0eth0", low 52 bits: the integration tests compute the same */
	cni_host_veth_name("c1", "eth0", a);
	cr_assert_str_eq(a, "twf02b3bfe94942");
}

Test(cni_plugin, version_lists_every_supported_version)
{
	struct cni_error err;
	json_t *out = NULL;

	cr_assert_eq(run("VERSION", NULL, NULL, NULL, "{\"cniVersion\":\"0.4.0\"}", &out, &err), 0);
	cr_assert_str_eq(json_string_value(json_object_get(out, "cniVersion")), "0.4.0");
	cr_assert_eq(json_array_size(json_object_get(out, "supportedVersions")), 5);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(out, "supportedVersions"), 4)),
			 "1.1.0");
	json_decref(out);
	/* no stdin at all: still an answer, in the latest version */
	cr_assert_eq(run("VERSION", NULL, NULL, NULL, NULL, &out, &err), 0);
	cr_assert_str_eq(json_string_value(json_object_get(out, "cniVersion")), "1.1.0");
	json_decref(out);
}

struct env_case {
	const char *cmd, *id, *netns, *ifname;
	int code;
	const char *needle;
};

#define CONF "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"twill\",\"podCIDR\":\"10.9.9.0/24\"," \
	     "\"mtu\":1440,\"stateDir\":\"/nonexistent/twill-unit\",\"bpfPinDir\":\"/nonexistent/bpf\"}"

static const struct env_case env_cases[] = {
	{ NULL, "c", "/n", "eth0", CNI_ERR_INVALID_ENV, "CNI_COMMAND" },
	{ "", "c", "/n", "eth0", CNI_ERR_INVALID_ENV, "CNI_COMMAND" },
	{ "add", "c", "/n", "eth0", CNI_ERR_INVALID_ENV, "CNI_COMMAND" },
	{ "ADD", NULL, "/n", "eth0", CNI_ERR_INVALID_ENV, "CNI_CONTAINERID" },
	{ "ADD", "-bad", "/n", "eth0", CNI_ERR_INVALID_ENV, "CNI_CONTAINERID" },
	{ "ADD", "a b", "/n", "eth0", CNI_ERR_INVALID_ENV, "CNI_CONTAINERID" },
	{ "ADD", "c", NULL, "eth0", CNI_ERR_INVALID_ENV, "CNI_NETNS" },
	{ "ADD", "c", "relative", "eth0", CNI_ERR_INVALID_ENV, "CNI_NETNS" },
	{ "ADD", "c", "/n", NULL, CNI_ERR_INVALID_ENV, "CNI_IFNAME" },
	{ "ADD", "c", "/n", "0123456789abcdef", CNI_ERR_INVALID_ENV, "CNI_IFNAME" },
	{ "ADD", "c", "/n", "a/b", CNI_ERR_INVALID_ENV, "CNI_IFNAME" },
	{ "ADD", "c", "/n", "..", CNI_ERR_INVALID_ENV, "CNI_IFNAME" },
	{ "ADD", "c", "/n", "e\v0", CNI_ERR_INVALID_ENV, "CNI_IFNAME 'e?0'" },
	{ "ADD", "c", "/n", "e\x7f", CNI_ERR_INVALID_ENV, "CNI_IFNAME" },
	{ "ADD", "c", "/n", "e\xc3\xa9", CNI_ERR_INVALID_ENV, "non-ASCII" },
	{ "ADD", "c", "/nonexistent/netns", "eth0", CNI_ERR_INVALID_ENV, "CNI_NETNS" },
	{ "DEL", NULL, NULL, "eth0", CNI_ERR_INVALID_ENV, "CNI_CONTAINERID" },
	{ "DEL", "c", NULL, "e:0", CNI_ERR_INVALID_ENV, "CNI_IFNAME" },
	{ "CHECK", "c", NULL, "eth0", CNI_ERR_INVALID_ENV, "CNI_NETNS" },
	{ "CHECK", "c", "/n", "eth0", CNI_ERR_INVALID_CONFIG, "prevResult" },
};

Test(cni_plugin, rejects_bad_environment_naming_the_variable)
{
	for (size_t i = 0; i < sizeof(env_cases) / sizeof(env_cases[0]); i++) {
		const struct env_case *c = &env_cases[i];
		struct cni_error err;
		json_t *out = NULL;

		cr_assert_lt(run(c->cmd, c->id, c->netns, c->ifname, CONF, &out, &err), 0,
			     "case %zu passed", i);
		cr_assert_null(out);
		cr_assert_eq(err.code, c->code, "case %zu: code %d (%s), want %d", i, err.code,
			     err.msg, c->code);
		cr_assert(strstr(err.msg, c->needle), "case %zu: '%s' lacks '%s'", i, err.msg,
			  c->needle);
		cr_assert_eq(err.version, c->code == CNI_ERR_INVALID_ENV && i < 3 ?
			     CNI_VERSION_LATEST : CNI_VERSION_1_0_0, "case %zu: version", i);
	}
}

Test(cni_plugin, verbs_need_the_version_that_introduced_them)
{
	static const struct {
		const char *cmd, *version;
		int code;
		const char *needle;
	} cases[] = {
		{ "CHECK", "0.3.1", CNI_ERR_INCOMPATIBLE_VERSION, "CHECK" },
		{ "CHECK", "0.4.0", CNI_ERR_INVALID_CONFIG, "prevResult" },
		{ "GC", "1.0.0", CNI_ERR_INCOMPATIBLE_VERSION, "GC" },
		{ "GC", "1.1.0", CNI_ERR_INVALID_CONFIG, "valid-attachments" },
		{ "STATUS", "1.0.0", CNI_ERR_INCOMPATIBLE_VERSION, "STATUS" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char conf[256];
		struct cni_error err;
		json_t *out = NULL;

		snprintf(conf, sizeof(conf), "{\"cniVersion\":\"%s\",\"name\":\"n\",\"type\":\"twill\","
			 "\"podCIDR\":\"10.9.9.0/24\",\"mtu\":1440,\"stateDir\":\"/nonexistent/x\","
			 "\"bpfPinDir\":\"/nonexistent/bpf\"}",
			 cases[i].version);
		cr_assert_lt(run(cases[i].cmd, "c", "/n", "eth0", conf, &out, &err), 0);
		cr_assert_eq(err.code, cases[i].code, "%s %s: %d %s", cases[i].cmd,
			     cases[i].version, err.code, err.msg);
		cr_assert(strstr(err.msg, cases[i].needle), "%s", err.msg);
	}
}

Test(cni_plugin, status_turns_any_problem_into_code_50)
{
	struct cni_error err;
	json_t *out = NULL;

	cr_assert_lt(run("STATUS", NULL, NULL, NULL, "{\"cniVersion\":\"1.1.0\"", &out, &err), 0);
	cr_assert_eq(err.code, CNI_ERR_UNAVAILABLE);
	cr_assert_lt(run("STATUS", NULL, NULL, NULL,
			 "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"twill\","
			 "\"stateDir\":\"/nonexistent/twill-unit\"}", &out, &err), 0);
	cr_assert_eq(err.code, CNI_ERR_UNAVAILABLE);
	cr_assert(strstr(err.msg, "podCIDR"), "%s", err.msg);
}

/* A state folder per test, removed by .fini even when an assertion fails. */
static char dir[64];

static void dir_make(void)
{
	snprintf(dir, sizeof(dir), "/tmp/twill-unit-cni-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void dir_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd) != 0)
		cr_log_warn("cannot remove %s", dir);
}

Test(cni_plugin, full_cidr_gives_code_100_on_add_and_50_on_status, .init = dir_make,
     .fini = dir_remove)
{
	char conf[512], id[32];
	struct ipam *store = NULL;
	struct in_addr a;
	struct cni_error err;
	json_t *out = NULL;
	int r;

	log_set_stderr(0);
	cr_assert_eq(ipam_open(dir, "full", "10.9.9.0/24", &store), 0);
	for (int i = 0; i < 253; i++) {
		snprintf(id, sizeof(id), "pod%d", i);
		cr_assert_eq(ipam_allocate(store, id, "eth0", &a), 0, "allocation %d", i);
	}
	ipam_close(store);
	snprintf(conf, sizeof(conf), "{\"cniVersion\":\"1.1.0\",\"name\":\"full\",\"type\":\"twill\","
		 "\"podCIDR\":\"10.9.9.0/24\",\"mtu\":1440,\"stateDir\":\"%s\","
		 "\"bpfPinDir\":\"%s/no-bpf\"}", dir, dir);

	/* any namespace file will do: the allocation fails before any wiring */
	r = run("ADD", "one-more", "/proc/self/ns/net", "eth0", conf, &out, &err);
	cr_assert_lt(r, 0);
	cr_assert_eq(err.code, CNI_ERR_ADDRESS_EXHAUSTED, "%d %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "10.9.9.0/24") && strstr(err.msg, "253 of 253"), "%s", err.msg);

	cr_assert_lt(run("STATUS", NULL, NULL, NULL, conf, &out, &err), 0);
	cr_assert_eq(err.code, CNI_ERR_UNAVAILABLE);
	cr_assert(strstr(err.msg, "no address left"), "%s", err.msg);

	/* one DEL later, STATUS is fine again */
	cr_assert_eq(run("DEL", "pod7", NULL, "eth0", conf, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(run("STATUS", NULL, NULL, NULL, conf, &out, &err), 0, "%s", err.msg);
}

Test(cni_plugin, pod_cidr_and_mtu_come_from_the_node_state_when_absent, .init = dir_make,
     .fini = dir_remove)
{
	char conf[512];
	struct nodestate ns = { .pod_prefixlen = 24, .mtu = 1400 };
	struct ipam *store = NULL;
	struct in_addr a;
	struct cni_error err;
	json_t *out = NULL;

	log_set_stderr(0);
	snprintf(conf, sizeof(conf), "{\"cniVersion\":\"1.1.0\",\"name\":\"fromnode\",\"type\":\"twill\","
		 "\"stateDir\":\"%s\",\"bpfPinDir\":\"%s/no-bpf\"}", dir, dir);
	/* no node state yet: the message names the missing field */
	cr_assert_lt(run("STATUS", NULL, NULL, NULL, conf, &out, &err), 0);
	cr_assert(strstr(err.msg, "podCIDR") && strstr(err.msg, dir), "%s", err.msg);

	inet_pton(AF_INET, "10.9.8.0", &ns.pod_net);
	snprintf(ns.node_name, sizeof(ns.node_name), "n1");
	cr_assert_eq(nodestate_write(dir, &ns), 0);
	cr_assert_eq(run("STATUS", NULL, NULL, NULL, conf, &out, &err), 0, "%s", err.msg);
	/* the store was opened for the node's /24 */
	cr_assert_eq(ipam_open(dir, "fromnode", "10.9.8.0/24", &store), 0);
	cr_assert_eq(ipam_allocate(store, "c1", "eth0", &a), 0);
	cr_assert_eq(ntohl(a.s_addr) >> 8, (10u << 16) | (9u << 8) | 8u);
	ipam_close(store);
}

static void conf_for(char *buf, size_t len, const char *net, const char *extra)
{
	snprintf(buf, len, "{\"cniVersion\":\"1.1.0\",\"name\":\"%s\",\"type\":\"twill\","
		 "\"stateDir\":\"%s\",\"bpfPinDir\":\"%s/no-bpf\"%s%s}", net, dir, dir,
		 extra[0] ? "," : "", extra);
}

static void allocate(const char *net, const char *cidr, const char *id)
{
	struct ipam *store = NULL;
	struct in_addr a;

	cr_assert_eq(ipam_open(dir, net, cidr, &store), 0);
	cr_assert_eq(ipam_allocate(store, id, "eth0", &a), 0);
	ipam_close(store);
}

static bool allocated(const char *net, const char *cidr, const char *id)
{
	struct ipam *store = NULL;
	struct in_addr a;
	int r;

	cr_assert_eq(ipam_open(dir, net, cidr, &store), 0);
	r = ipam_find(store, id, "eth0", &a);
	ipam_close(store);
	cr_assert(r == 0 || r == -ENOENT, "find: %d", r);
	return r == 0;
}

/* DEL releases the address whatever pod CIDR (if any) the config or node state gives. */
Test(cni_plugin, del_releases_from_the_store_as_it_is, .init = dir_make, .fini = dir_remove)
{
	char conf[512], path[128];
	struct cni_error err;
	json_t *out = NULL;

	log_set_stderr(0);
	allocate("del", "10.9.7.0/24", "old");
	allocate("del", "10.9.7.0/24", "older");
	/* no podCIDR in the config and no node.json */
	conf_for(conf, sizeof(conf), "del", "");
	cr_assert_eq(run("DEL", "old", NULL, "eth0", conf, &out, &err), 0, "%s", err.msg);
	cr_assert_not(allocated("del", "10.9.7.0/24", "old"), "DEL left the allocation");
	/* the node's pod CIDR changed since ADD */
	conf_for(conf, sizeof(conf), "del", "\"podCIDR\":\"10.9.8.0/24\",\"mtu\":1440");
	cr_assert_eq(run("DEL", "older", NULL, "eth0", conf, &out, &err), 0, "%s", err.msg);
	cr_assert_not(allocated("del", "10.9.7.0/24", "older"), "DEL left the allocation");
	/* a network that never had a store: nothing to release, nothing created */
	conf_for(conf, sizeof(conf), "never", "");
	cr_assert_eq(run("DEL", "x", NULL, "eth0", conf, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(run("DEL", "x", NULL, "eth0", conf, &out, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/ipam/never", dir);
	cr_assert_eq(access(path, F_OK), -1, "DEL made a store folder for a network it never saw");
}

Test(cni_plugin, del_reports_a_corrupt_store_and_leaves_it, .init = dir_make,
     .fini = dir_remove)
{
	char conf[512], path[128], back[64] = "";
	struct cni_error err;
	json_t *out = NULL;
	FILE *f;

	log_set_stderr(0);
	allocate("bad", "10.9.7.0/24", "c1");
	snprintf(path, sizeof(path), "%s/ipam/bad/store.json", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("{\"version\": 1,", f);
	fclose(f);
	conf_for(conf, sizeof(conf), "bad", "\"podCIDR\":\"10.9.7.0/24\",\"mtu\":1440");
	cr_assert_lt(run("DEL", "c1", NULL, "eth0", conf, &out, &err), 0);
	cr_assert_eq(err.code, CNI_ERR_IO, "%d %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "corrupt") && strstr(err.msg, "release"), "%s", err.msg);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(back, sizeof(back), f));
	fclose(f);
	cr_assert_str_eq(back, "{\"version\": 1,");
}

/* CHECK of a container twill never saw: the spec's "unknown container". */
Test(cni_plugin, check_of_an_unknown_container_is_code_3, .init = dir_make,
     .fini = dir_remove)
{
	char conf[1024];
	struct cni_error err;
	json_t *out = NULL;

	log_set_stderr(0);
	conf_for(conf, sizeof(conf), "chk", "\"podCIDR\":\"10.9.7.0/24\",\"mtu\":1440,"
		 "\"prevResult\":{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"eth0\","
		 "\"sandbox\":\"/proc/self/ns/net\"}],\"ips\":[{\"address\":\"10.9.7.2/32\","
		 "\"interface\":0}]}");
	cr_assert_lt(run("CHECK", "nobody", "/proc/self/ns/net", "eth0", conf, &out, &err), 0);
	cr_assert_eq(err.code, CNI_ERR_UNKNOWN_CONTAINER, "%d %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "'nobody'") && strstr(err.msg, "unknown"), "%s", err.msg);
	/* allocated but without its veth: a broken pod, not an unknown one */
	allocate("chk", "10.9.7.0/24", "nobody");
	cr_assert_lt(run("CHECK", "nobody", "/proc/self/ns/net", "eth0", conf, &out, &err), 0);
	cr_assert_eq(err.code, CNI_ERR_CHECK_FAILED, "%d %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "host veth") && strstr(err.msg, "missing"), "%s", err.msg);
}
