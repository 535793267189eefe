// SPDX-License-Identifier: Apache-2.0
/*
 * lib/kube without a network: kubeconfig and in-cluster configuration, and the node
 * cache fed with watch events. The HTTP side is tested against the replay server in
 * tests/integration/kube-*.sh.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube.h"

#define PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
/* base64 of PEM */
#define PEM_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	strcpy(dir, "/tmp/kb-unit-kube.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	write_file("ca.crt", PEM);
	write_file("client.crt", PEM);
	write_file("client.key", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");
	write_file("token", "  tok-en.1\n");
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static int load_kubeconfig(const char *yaml, struct kube_config **out)
{
	char path[128];

	write_file("config", yaml);
	snprintf(path, sizeof(path), "%s/config", dir);
	return kube_config_from_kubeconfig(path, out);
}

#define KC_HEAD "apiVersion: v1\nkind: Config\ncurrent-context: c\n" \
	"contexts:\n- name: other\n  context: {cluster: x, user: x}\n" \
	"- name: c\n  context:\n    cluster: k\n    user: u\n"

TestSuite(kube, .init = setup, .fini = teardown);

Test(kube, kubeconfig_token_and_ca_data)
{
	struct kube_config *cfg = NULL;

	cr_assert_eq(load_kubeconfig(KC_HEAD
		"clusters:\n- name: k\n  cluster:\n    server: https://api.example:6443/\n"
		"    certificate-authority-data: " PEM_B64 "\n"
		"users:\n- name: u\n  user:\n    token: abc.def\n", &cfg), 0);
	cr_assert_str_eq(cfg->server, "https://api.example:6443");
	cr_assert_str_eq(cfg->ca_pem, PEM);
	cr_assert_null(cfg->ca_file);
	cr_assert_str_eq(cfg->token, "abc.def");
	cr_assert_null(cfg->client_cert_file);
	kube_config_free(cfg);
}

Test(kube, kubeconfig_relative_files_and_client_cert)
{
	struct kube_config *cfg = NULL;
	char want[128];

	cr_assert_eq(load_kubeconfig(KC_HEAD
		"clusters:\n- name: k\n  cluster:\n    server: https://10.0.0.1\n"
		"    certificate-authority: ca.crt\n"
		"users:\n- name: u\n  user:\n    client-certificate: client.crt\n"
		"    client-key: client.key\n", &cfg), 0);
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	cr_assert_str_eq(cfg->ca_file, want);
	snprintf(want, sizeof(want), "%s/client.key", dir);
	cr_assert_str_eq(cfg->client_key_file, want);
	cr_assert_null(cfg->token);
	kube_config_free(cfg);
}

Test(kube, kubeconfig_token_file)
{
	struct kube_config *cfg = NULL;
	char want[128];

	cr_assert_eq(load_kubeconfig(KC_HEAD
		"clusters:\n- name: k\n  cluster: {server: 'https://[fd00::1]:6443'}\n"
		"users:\n- name: u\n  user: {tokenFile: token}\n", &cfg), 0);
	snprintf(want, sizeof(want), "%s/token", dir);
	cr_assert_str_eq(cfg->token_file, want);
	cr_assert_null(cfg->ca_file);
	cr_assert_null(cfg->ca_pem);
	kube_config_free(cfg);
}

struct bad_case {
	const char *yaml;
	int err;
};

Test(kube, kubeconfig_refusals)
{
	static const struct bad_case cases[] = {
		{ "not: [valid", -EINVAL },
		{ "- a list\n", -EINVAL },
		{ "apiVersion: v1\nclusters: []\n", -EINVAL }, /* no current-context */
		{ "current-context: nope\ncontexts: []\n", -EINVAL },
		{ KC_HEAD "clusters: []\nusers: []\n", -EINVAL },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'http://api:8080'}\n"
		  "users:\n- name: u\n  user: {token: t}\n", -EINVAL },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'https://api',"
		  " insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\n",
		  -EPERM },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'https://api'}\n"
		  "users:\n- name: u\n  user:\n    exec: {command: aws}\n", -ENOTSUP },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'https://api'}\n"
		  "users:\n- name: u\n  user: {username: a, password: b}\n", -ENOTSUP },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'https://api'}\n"
		  "users:\n- name: u\n  user: {}\n", -EINVAL },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'https://api'}\n"
		  "users:\n- name: u\n  user: {client-certificate: client.crt}\n", -EINVAL },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'https://api',"
		  " certificate-authority-data: 'not base64!'}\n"
		  "users:\n- name: u\n  user: {token: t}\n", -EINVAL },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'https://api',"
		  " certificate-authority: missing.crt}\n"
		  "users:\n- name: u\n  user: {token: t}\n", -ENOENT },
		{ KC_HEAD "clusters:\n- name: k\n  cluster: {server: 'https://api'}\n"
		  "users:\n- name: u\n  user: {token: [a]}\n", -EINVAL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_config *cfg = NULL;
		int ret = load_kubeconfig(cases[i].yaml, &cfg);

		cr_expect_eq(ret, cases[i].err, "case %zu: got %d, want %d", i, ret,
			     cases[i].err);
		cr_expect_null(cfg, "case %zu set *out on failure", i);
	}
}

Test(kube, in_cluster)
{
	struct kube_config *cfg = NULL;
	char want[128];

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	cr_assert_eq(kube_config_in_cluster(dir, &cfg), 0);
	cr_assert_str_eq(cfg->server, "https://10.96.0.1:443");
	snprintf(want, sizeof(want), "%s/token", dir);
	cr_assert_str_eq(cfg->token_file, want);
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	cr_assert_str_eq(cfg->ca_file, want);
	kube_config_free(cfg);
	cfg = NULL;

	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	cr_assert_eq(kube_config_in_cluster(dir, &cfg), 0);
	cr_assert_str_eq(cfg->server, "https://[fd00:10:96::1]:443");
	kube_config_free(cfg);
	cfg = NULL;

	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	cr_assert_eq(kube_config_in_cluster(dir, &cfg), -EINVAL);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	write_file("token", " \n");
	cr_assert_eq(kube_config_in_cluster(dir, &cfg), -EINVAL);
	unsetenv("KUBERNETES_SERVICE_HOST");
	cr_assert_eq(kube_config_in_cluster(dir, &cfg), -ENOENT);
	cr_assert_null(cfg);
}

/* beat changes what kubelet, the scheduler and other controllers change all day */
static const char *node_json(const char *name, const char *rv, const char *cidr,
			     const char *beat)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
		 "{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
		 "\"resourceVersion\":\"%s\",\"labels\":{\"zone\":\"%s\"},\"annotations\":"
		 "{\"twill.dev/public-key\":\"K\",\"other.io/seen\":\"%s\"}},"
		 "\"spec\":{\"podCIDR\":\"%s\",\"unschedulable\":%s},\"status\":"
		 "{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"}],"
		 "\"conditions\":[{\"type\":\"Ready\",\"lastHeartbeatTime\":\"%s\"}]}}",
		 name, rv, beat, beat, cidr, strcmp(beat, "t0") ? "true" : "false", beat);
	return buf;
}

static int apply(struct kube_cache *c, const char *type, const char *obj)
{
	char line[1200];

	snprintf(line, sizeof(line), "{\"type\":\"%s\",\"object\":%s}\n", type, obj);
	return kube_cache_apply_event(c, line, strlen(line));
}

static json_t *cache_doc(struct kube_cache *c)
{
	char *text = NULL;
	size_t len = 0;
	json_t *doc;

	cr_assert_eq(kube_cache_to_json(c, &text, &len), 0);
	cr_assert_eq(strlen(text), len);
	doc = json_loads(text, 0, NULL);
	free(text);
	cr_assert_not_null(doc);
	return doc;
}

Test(kube, cache_events)
{
	struct kube_cache *c = NULL;
	const char *list = "{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":"
		"{\"resourceVersion\":\"10\",\"continue\":\"tok\"},\"items\":[{\"metadata\":"
		"{\"name\":\"n2\"},\"spec\":{\"podCIDR\":\"10.244.2.0/24\"}}]}";
	char *cont = NULL;
	json_t *doc, *items;

	cr_assert_eq(kube_cache_new(&c), 0);
	cr_assert_str_eq(kube_cache_resource_version(c), "");
	cr_assert_eq(kube_cache_load_list(c, list, strlen(list), true, &cont), 0);
	cr_assert_str_eq(cont, "tok");
	free(cont);
	cr_assert_str_eq(kube_cache_resource_version(c), "10");

	cr_assert_eq(apply(c, "ADDED", node_json("n1", "11", "10.244.1.0/24", "t0")),
		     KUBE_EVENT_CHANGED);
	/* heartbeat, labels, cordon, foreign annotations: nothing Twill reads */
	cr_assert_eq(apply(c, "MODIFIED", node_json("n1", "12", "10.244.1.0/24", "t1")),
		     KUBE_EVENT_NONE);
	cr_assert_str_eq(kube_cache_resource_version(c), "12");
	cr_assert_eq(apply(c, "BOOKMARK", "{\"kind\":\"Node\",\"metadata\":"
			   "{\"resourceVersion\":\"20\"}}"), KUBE_EVENT_BOOKMARK);
	cr_assert_str_eq(kube_cache_resource_version(c), "20");
	cr_assert_str_eq(kube_cache_node_annotation(c, "n1", "twill.dev/public-key"), "K");
	cr_assert_null(kube_cache_node_annotation(c, "n2", "twill.dev/public-key"));

	doc = cache_doc(c);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "kind")), "NodeList");
	items = json_object_get(doc, "items");
	cr_assert_eq(json_array_size(items), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
		json_array_get(items, 0), "metadata"), "name")), "n1", "sorted by name");
	cr_assert_null(json_object_get(json_object_get(json_array_get(items, 0), "status"),
				       "conditions"));
	cr_assert_null(json_object_get(json_object_get(json_array_get(items, 0), "metadata"),
				       "resourceVersion"));
	cr_assert_null(json_object_get(json_object_get(json_array_get(items, 0), "metadata"),
				       "labels"));
	cr_assert_eq(json_object_size(json_object_get(json_object_get(
		json_array_get(items, 0), "metadata"), "annotations")), 1,
		"only twill.dev/ annotations are kept");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
		json_array_get(items, 0), "spec"), "podCIDR")), "10.244.1.0/24");
	json_decref(doc);

	/* the pod CIDR is read: a change wakes the agent */
	cr_assert_eq(apply(c, "MODIFIED", node_json("n1", "13", "10.244.9.0/24", "t1")),
		     KUBE_EVENT_CHANGED);
	cr_assert_str_eq(kube_cache_resource_version(c), "13");
	cr_assert_eq(apply(c, "BOOKMARK", "{\"kind\":\"Node\",\"metadata\":"
			   "{\"resourceVersion\":\"20\"}}"), KUBE_EVENT_BOOKMARK);
	cr_assert_eq(apply(c, "DELETED", node_json("n2", "21", "10.244.2.0/24", "t")),
		     KUBE_EVENT_CHANGED);
	cr_assert_eq(apply(c, "DELETED", node_json("n9", "22", "10.244.9.0/24", "t")),
		     KUBE_EVENT_NONE);
	cr_assert_eq(apply(c, "ERROR", "{\"kind\":\"Status\",\"code\":410,\"reason\":"
			   "\"Expired\",\"message\":\"too old resource version: 1 (2)\"}"),
		     KUBE_EVENT_GONE);
	cr_assert_eq(apply(c, "ERROR", "{\"kind\":\"Status\",\"code\":500}"), KUBE_EVENT_ERROR);
	cr_assert_eq(kube_cache_apply_event(c, "\n", 1), KUBE_EVENT_NONE);
	cr_assert_eq(kube_cache_apply_event(c, "{\"type\":", 8), -EINVAL);
	cr_assert_eq(apply(c, "ADDED", "{\"metadata\":{}}"), -EINVAL);
	cr_assert_str_eq(kube_cache_resource_version(c), "22");

	doc = cache_doc(c);
	cr_assert_eq(json_array_size(json_object_get(doc, "items")), 1);
	json_decref(doc);
	kube_cache_free(c);
}

Test(kube, cache_rejects_non_lists)
{
	struct kube_cache *c = NULL;
	const char *bad[] = { "nope", "{\"kind\":\"PodList\",\"items\":[]}", "{\"kind\":\"NodeList\"}" };

	cr_assert_eq(kube_cache_new(&c), 0);
	for (size_t i = 0; i < 3; i++)
		cr_expect_eq(kube_cache_load_list(c, bad[i], strlen(bad[i]), true, NULL), -EINVAL);
	kube_cache_free(c);
	kube_cache_free(NULL);
	kube_config_free(NULL);
	kube_watch_stop(NULL);
}

Test(kube, watch_start_validates)
{
	struct kube_config cfg = { .server = (char *)"https://127.0.0.1:1" };
	struct kube_watch_opts opts = { .node_name = "Bad_Name", .public_key = "x" };
	struct kube_watch *w = NULL;

	cr_assert_eq(kube_watch_start(&cfg, &opts, &w), -EINVAL);
	opts.public_key = NULL;
	opts.node_name = "node-a";
	cr_assert_eq(kube_watch_start(&cfg, &opts, &w), -EINVAL);
	cr_assert_null(w);
	/* nothing listens on port 1: the thread backs off, stop still returns promptly */
	cr_assert_eq(kube_watch_start(&cfg, NULL, &w), 0);
	usleep(100000);
	char *doc = NULL;
	cr_assert_eq(kube_watch_take(w, &doc, NULL), -EAGAIN);
	kube_watch_stop(w);
}

/* What a broken or hostile server could send: each line is refused or ignored, never
 * a crash, and the cache keeps what it had. */
Test(kube, hostile_events)
{
	static const struct {
		const char *line;
		int want;
	} cases[] = {
		{ "null", -EINVAL },
		{ "[]", -EINVAL },
		{ "\"ADDED\"", -EINVAL },
		{ "{}", -EINVAL },
		{ "{\"type\":1,\"object\":{}}", -EINVAL },
		{ "{\"type\":\"ADDED\"}", -EINVAL },
		{ "{\"type\":\"ADDED\",\"object\":[]}", -EINVAL },
		{ "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":7}}}", -EINVAL },
		{ "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"\"}}}", -EINVAL },
		{ "{\"type\":\"ADDED\",\"object\":{\"metadata\":\"n\"}}", -EINVAL },
		{ "{\"type\":\"DELETED\",\"object\":{}}", -EINVAL },
		{ "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}} trailing", -EINVAL },
		{ "{\"type\":\"ERROR\",\"object\":{\"code\":\"410\"}}", KUBE_EVENT_ERROR },
		{ "{\"type\":\"ERROR\",\"object\":{}}", KUBE_EVENT_ERROR },
		{ "{\"type\":\"SURPRISE\",\"object\":{\"metadata\":{\"name\":\"x\"}}}", KUBE_EVENT_NONE },
		{ "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":5}}}",
		  KUBE_EVENT_BOOKMARK },
		/* odd but valid: annotations and addresses of the wrong type are passed on for
		 * topology_parse to judge, with the node named */
		{ "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"odd\",\"annotations\":"
		  "[1]},\"spec\":\"x\",\"status\":{\"addresses\":{}}}}", KUBE_EVENT_CHANGED },
	};
	struct kube_cache *c = NULL;
	json_t *doc;

	cr_assert_eq(kube_cache_new(&c), 0);
	cr_assert_eq(apply(c, "ADDED", node_json("keep", "3", "10.244.1.0/24", "t0")),
		     KUBE_EVENT_CHANGED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = kube_cache_apply_event(c, cases[i].line, strlen(cases[i].line));

		cr_expect_eq(ret, cases[i].want, "case %zu '%s': got %d, want %d", i,
			     cases[i].line, ret, cases[i].want);
	}
	cr_assert_str_eq(kube_cache_resource_version(c), "3", "a non-string version is ignored");
	doc = cache_doc(c);
	cr_assert_eq(json_array_size(json_object_get(doc, "items")), 2);
	json_decref(doc);
	kube_cache_free(c);
}

Test(kube, hostile_lists)
{
	static const char *const lists[] = {
		"{\"kind\":\"NodeList\",\"items\":{}}",
		"{\"kind\":7,\"items\":[]}",
		"{\"kind\":\"NodeList\",\"items\":[]",
	};
	const char *odd = "{\"kind\":\"NodeList\",\"metadata\":{\"continue\":5},"
			  "\"items\":[1,\"x\",{\"metadata\":{}},{\"metadata\":{\"name\":\"ok\"}}]}";
	struct kube_cache *c = NULL;
	char *cont = (char *)"unchanged";
	json_t *doc;

	cr_assert_eq(kube_cache_new(&c), 0);
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		cr_expect_eq(kube_cache_load_list(c, lists[i], strlen(lists[i]), true, NULL),
			     -EINVAL, "list %zu", i);
	/* items without a name are skipped, a non-string continue ends the paging */
	cr_assert_eq(kube_cache_load_list(c, odd, strlen(odd), true, &cont), 0);
	cr_assert_null(cont);
	doc = cache_doc(c);
	cr_assert_eq(json_array_size(json_object_get(doc, "items")), 1);
	json_decref(doc);
	kube_cache_free(c);
}
