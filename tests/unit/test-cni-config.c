// SPDX-License-Identifier: Apache-2.0
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <string.h>

#include "cni_config.h"
#include "twill-config.h"

static int parse(const char *json, struct cni_config **cfg, struct cni_error *err)
{
	memset(err, 0, sizeof(*err));
	return cni_config_parse(json, strlen(json), cfg, err);
}

Test(cni_config, parses_a_full_config)
{
	const char *json = "{\"cniVersion\":\"1.1.0\",\"name\":\"k8s-pod-network\",\"type\":\"twill\","
		"\"podCIDR\":\"10.244.1.0/24\",\"mtu\":1440,\"stateDir\":\"/tmp/st\","
		"\"bpfPinDir\":\"/sys/fs/bpf/x\",\"logFile\":\"/tmp/twill.log\",\"logLevel\":\"debug\","
		"\"dns\":{\"nameservers\":[\"10.96.0.10\"],\"search\":[\"svc.cluster.local\"]}}";
	struct cni_config *cfg = NULL;
	struct cni_error err;
	char s[INET_ADDRSTRLEN];

	cr_assert_eq(parse(json, &cfg, &err), 0, "%s", err.msg);
	cr_assert_eq(cfg->version, CNI_VERSION_1_1_0);
	cr_assert_str_eq(cfg->name, "k8s-pod-network");
	cr_assert_str_eq(cfg->type, "twill");
	cr_assert(cfg->has_pod_cidr);
	cr_assert_str_eq(inet_ntop(AF_INET, &cfg->pod_net, s, sizeof(s)), "10.244.1.0");
	cr_assert_eq(cfg->pod_prefixlen, 24);
	cr_assert_eq(cfg->mtu, 1440);
	cr_assert_str_eq(cfg->state_dir, "/tmp/st");
	cr_assert_str_eq(cfg->bpf_pin_dir, "/sys/fs/bpf/x");
	cr_assert_str_eq(cfg->log_file, "/tmp/twill.log");
	cr_assert(cfg->has_log_level);
	cr_assert_eq(cfg->log_level, TWILL_LOG_DEBUG);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(cfg->dns, "nameservers"), 0)),
			 "10.96.0.10");
	cr_assert_null(cfg->prev_result);
	cr_assert_not(cfg->has_attachments);
	cni_config_free(cfg);
}

Test(cni_config, applies_defaults_when_fields_are_absent)
{
	struct cni_config *cfg = NULL;
	struct cni_error err;

	cr_assert_eq(parse("{\"cniVersion\":\"0.3.1\",\"name\":\"n\",\"type\":\"twill\"}", &cfg, &err), 0);
	cr_assert_eq(cfg->version, CNI_VERSION_0_3_1);
	cr_assert_not(cfg->has_pod_cidr);
	cr_assert_eq(cfg->mtu, 0);
	cr_assert_str_eq(cfg->state_dir, TWILL_DEFAULT_STATE_DIR);
	cr_assert_str_eq(cfg->bpf_pin_dir, TWILL_DEFAULT_BPF_PIN_DIR);
	cr_assert_str_eq(cfg->log_file, "");
	cr_assert_null(cfg->dns);
	cni_config_free(cfg);
}

Test(cni_config, accepts_every_supported_version)
{
	static const char *const versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };

	for (size_t i = 0; i < 5; i++) {
		char json[128];
		struct cni_config *cfg = NULL;
		struct cni_error err;

		snprintf(json, sizeof(json), "{\"cniVersion\":\"%s\",\"name\":\"n\",\"type\":\"twill\"}",
			 versions[i]);
		cr_assert_eq(parse(json, &cfg, &err), 0, "%s: %s", versions[i], err.msg);
		cr_assert_eq((size_t)cfg->version, i);
		cr_assert_str_eq(cni_version_str(cfg->version), versions[i]);
		cni_config_free(cfg);
	}
}

Test(cni_config, reads_prev_result_and_attachments)
{
	const char *json = "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"twill\","
		"\"prevResult\":{\"cniVersion\":\"1.1.0\",\"ips\":[]},"
		"\"cni.dev/valid-attachments\":[{\"containerID\":\"abc\",\"ifname\":\"eth0\"},"
		"{\"containerID\":\"def\",\"ifname\":\"net1\"}]}";
	struct cni_config *cfg = NULL;
	struct cni_error err;

	cr_assert_eq(parse(json, &cfg, &err), 0, "%s", err.msg);
	cr_assert(json_is_object(cfg->prev_result));
	cr_assert(cfg->has_attachments);
	cr_assert_eq(cfg->n_attachments, 2);
	cr_assert_str_eq(cfg->attachments[1].container_id, "def");
	cr_assert_str_eq(cfg->attachments[1].ifname, "net1");
	cni_config_free(cfg);

	cr_assert_eq(parse("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"twill\","
			   "\"cni.dev/attachments\":[]}", &cfg, &err), 0, "%s", err.msg);
	cr_assert(cfg->has_attachments);
	cr_assert_eq(cfg->n_attachments, 0);
	cni_config_free(cfg);
}

struct bad_case {
	const char *json;
	int code;
	const char *needle;   /* the message must name the field or value at fault */
};

#define V "\"cniVersion\":\"1.0.0\",\"type\":\"twill\","
static const struct bad_case bad_cases[] = {
	{ "", CNI_ERR_DECODE, "decode" },
	{ "{\"cniVersion\":", CNI_ERR_DECODE, "decode" },
	{ "[1,2]", CNI_ERR_DECODE, "object" },
	{ "{\"name\":\"n\",\"type\":\"twill\"}", CNI_ERR_INVALID_CONFIG, "cniVersion" },
	{ "{\"cniVersion\":1,\"name\":\"n\",\"type\":\"twill\"}", CNI_ERR_INVALID_CONFIG, "cniVersion" },
	{ "{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"type\":\"twill\"}", CNI_ERR_INCOMPATIBLE_VERSION, "0.2.0" },
	{ "{\"cniVersion\":\"9.9.9\",\"name\":\"n\",\"type\":\"twill\"}", CNI_ERR_INCOMPATIBLE_VERSION, "9.9.9" },
	{ "{\"cniVersion\":\"1.0.0\",\"type\":\"twill\"}", CNI_ERR_INVALID_CONFIG, "name" },
	{ "{" V "\"name\":\"../etc\"}", CNI_ERR_INVALID_CONFIG, "../etc" },
	{ "{" V "\"name\":\"\"}", CNI_ERR_INVALID_CONFIG, "name" },
	{ "{" V "\"name\":7}", CNI_ERR_INVALID_CONFIG, "name" },
	{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}", CNI_ERR_INVALID_CONFIG, "type" },
	{ "{" V "\"name\":\"n\",\"podCIDR\":\"10.244.1.0\"}", CNI_ERR_INVALID_CONFIG, "10.244.1.0" },
	{ "{" V "\"name\":\"n\",\"podCIDR\":\"10.244.1.0/33\"}", CNI_ERR_INVALID_CONFIG, "podCIDR" },
	{ "{" V "\"name\":\"n\",\"podCIDR\":\"10.244.1.7/24\"}", CNI_ERR_INVALID_CONFIG, "host bits" },
	{ "{" V "\"name\":\"n\",\"podCIDR\":\"10.244.0.0/16\"}", CNI_ERR_INVALID_CONFIG, "10.244.0.0/16" },
	{ "{" V "\"name\":\"n\",\"podCIDR\":\"fd00::/64\"}", CNI_ERR_INVALID_CONFIG, "fd00::/64" },
	{ "{" V "\"name\":\"n\",\"podCIDR\":\"300.1.1.0/24\"}", CNI_ERR_INVALID_CONFIG, "300.1.1.0/24" },
	{ "{" V "\"name\":\"n\",\"podCIDR\":24}", CNI_ERR_INVALID_CONFIG, "podCIDR" },
	{ "{" V "\"name\":\"n\",\"mtu\":100}", CNI_ERR_INVALID_CONFIG, "mtu" },
	{ "{" V "\"name\":\"n\",\"mtu\":70000}", CNI_ERR_INVALID_CONFIG, "70000" },
	{ "{" V "\"name\":\"n\",\"mtu\":\"1440\"}", CNI_ERR_INVALID_CONFIG, "mtu" },
	{ "{" V "\"name\":\"n\",\"stateDir\":\"relative/dir\"}", CNI_ERR_INVALID_CONFIG, "stateDir" },
	{ "{" V "\"name\":\"n\",\"bpfPinDir\":false}", CNI_ERR_INVALID_CONFIG, "bpfPinDir" },
	{ "{" V "\"name\":\"n\",\"logLevel\":\"loud\"}", CNI_ERR_INVALID_CONFIG, "loud" },
	{ "{" V "\"name\":\"n\",\"dns\":[]}", CNI_ERR_INVALID_CONFIG, "dns" },
	{ "{" V "\"name\":\"n\",\"dns\":{\"nameservers\":\"1.1.1.1\"}}", CNI_ERR_INVALID_CONFIG, "dns.nameservers" },
	{ "{" V "\"name\":\"n\",\"dns\":{\"search\":[1]}}", CNI_ERR_INVALID_CONFIG, "dns.search" },
	{ "{" V "\"name\":\"n\",\"ipam\":{\"type\":\"host-local\"}}", CNI_ERR_UNSUPPORTED_FIELD, "ipam" },
	{ "{" V "\"name\":\"n\",\"prevResult\":[]}", CNI_ERR_INVALID_CONFIG, "prevResult" },
	{ "{" V "\"name\":\"n\",\"cni.dev/valid-attachments\":{}}", CNI_ERR_INVALID_CONFIG, "valid-attachments" },
	{ "{" V "\"name\":\"n\",\"cni.dev/valid-attachments\":[{\"containerID\":\"a\"}]}", CNI_ERR_INVALID_CONFIG, "ifname" },
	{ "{" V "\"name\":\"n\",\"name\":\"m\"}", CNI_ERR_DECODE, "decode" },
	{ "{" V "\"name\":\"n\",\"runtimeConfig\":[]}", CNI_ERR_INVALID_CONFIG, "runtimeConfig" },
	{ "{" V "\"name\":\"n\",\"runtimeConfig\":{\"bandwidth\":1}}", CNI_ERR_INVALID_CONFIG,
	  "runtimeConfig.bandwidth" },
	{ "{" V "\"name\":\"n\",\"runtimeConfig\":{\"bandwidth\":{\"egressRate\":\"1M\"}}}",
	  CNI_ERR_INVALID_CONFIG, "runtimeConfig.bandwidth.egressRate" },
	{ "{" V "\"name\":\"n\",\"runtimeConfig\":{\"bandwidth\":{\"ingressBurst\":-1}}}",
	  CNI_ERR_INVALID_CONFIG, "runtimeConfig.bandwidth.ingressBurst" },
};

/* Any rate or burst above 0 means the bandwidth plugin shapes this pod. */
Test(cni_config, bandwidth_limits_come_from_runtime_config)
{
	static const struct {
		const char *rc;
		bool limited;
	} cases[] = {
		{ "", false },
		{ ",\"runtimeConfig\":{}", false },
		{ ",\"runtimeConfig\":{\"portMappings\":[]}", false },
		{ ",\"runtimeConfig\":{\"bandwidth\":null}", false },
		{ ",\"runtimeConfig\":{\"bandwidth\":{}}", false },
		{ ",\"runtimeConfig\":{\"bandwidth\":{\"ingressRate\":0,\"egressRate\":0}}", false },
		{ ",\"runtimeConfig\":{\"bandwidth\":{\"ingressRate\":1000000,\"ingressBurst\":1000000}}", true },
		{ ",\"runtimeConfig\":{\"bandwidth\":{\"egressRate\":1e6,\"egressBurst\":1e6}}", true },
		{ ",\"runtimeConfig\":{\"bandwidth\":{\"egressBurst\":1}}", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cni_config *cfg = NULL;
		struct cni_error err;
		char json[512];

		snprintf(json, sizeof(json), "{" V "\"name\":\"n\"%s}", cases[i].rc);
		cr_assert_eq(parse(json, &cfg, &err), 0, "%s: %s", json, err.msg);
		cr_expect_eq(cfg->bandwidth_limited, cases[i].limited, "%s", json);
		cni_config_free(cfg);
	}
}

Test(cni_config, rejects_invalid_configs_naming_the_field)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cni_config *cfg = NULL;
		struct cni_error err;
		char all[1100];

		cr_assert_lt(parse(c->json, &cfg, &err), 0, "case %zu accepted: %s", i, c->json);
		cr_assert_null(cfg);
		cr_assert_eq(err.code, c->code, "case %zu (%s): code %d, want %d (%s)", i, c->json,
			     err.code, c->code, err.msg);
		snprintf(all, sizeof(all), "%s %s", err.msg, err.details);
		cr_assert(strstr(all, c->needle), "case %zu (%s): message '%s' lacks '%s'", i,
			  c->json, all, c->needle);
	}
}

Test(cni_config, answers_errors_in_the_callers_version)
{
	struct cni_config *cfg = NULL;
	struct cni_error err;
	json_t *j;

	cr_assert_lt(parse("{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"type\":\"twill\",\"mtu\":1}",
			   &cfg, &err), 0);
	cr_assert_eq(err.version, CNI_VERSION_0_4_0);
	j = cni_error_encode(&err);
	cr_assert_str_eq(json_string_value(json_object_get(j, "cniVersion")), "0.4.0");
	cr_assert_eq(json_integer_value(json_object_get(j, "code")), CNI_ERR_INVALID_CONFIG);
	cr_assert(strstr(json_string_value(json_object_get(j, "msg")), "mtu"));
	json_decref(j);
}
