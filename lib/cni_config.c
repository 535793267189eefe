// SPDX-License-Identifier: Apache-2.0
/*
 * The network configuration on stdin is untrusted input: every field is type- and
 * range-checked here, and an error names the field and quotes the value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni_config.h"
#include "twill-config.h"

#define MTU_MIN 576u
#define MTU_MAX 65535u

static int fail(struct cni_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct cni_error *err, int code, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cni_error_set(err, code, "%s", msg);
	return -EINVAL;
}

static bool name_valid(const char *s)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			return false;
	/* the name is also a folder under the state dir */
	return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Optional string field; *present tells whether it was there. */
static int get_string(const json_t *root, const char *field, char *dst, size_t dstlen,
		      bool *present, struct cni_error *err)
{
	const json_t *v = json_object_get(root, field);

	if (present)
		*present = v != NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be a string", field);
	if (json_string_length(v) >= dstlen || strlen(json_string_value(v)) !=
	    json_string_length(v)) {
		cni_error_set(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" is too long or holds NUL",
			      field);
		return -EINVAL;
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_abs_path(const json_t *root, const char *field, char *dst, size_t dstlen,
			const char *def, struct cni_error *err)
{
	bool present;
	int r = get_string(root, field, dst, dstlen, &present, err);

	if (r < 0)
		return r;
	if (!present) {
		snprintf(dst, dstlen, "%s", def);
		return 0;
	}
	if (dst[0] != '/')
		return fail(err, CNI_ERR_INVALID_CONFIG,
			   "field \"%s\" must be an absolute path, got '%s'", field, dst);
	return 0;
}

static int check_string_array(const json_t *a, const char *field, struct cni_error *err)
{
	const json_t *v;
	size_t i;

	if (!json_is_array(a))
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be an array", field);
	json_array_foreach(a, i, v)
		if (!json_is_string(v))
			return fail(err, CNI_ERR_INVALID_CONFIG,
				   "field \"%s\" must hold only strings", field);
	return 0;
}

static int parse_dns(const json_t *dns, struct cni_error *err)
{
	static const char *const arrays[] = { "nameservers", "search", "options" };
	const json_t *v;

	if (!json_is_object(dns))
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be an object", "dns");
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		char field[32];

		v = json_object_get(dns, arrays[i]);
		snprintf(field, sizeof(field), "dns.%s", arrays[i]);
		if (v && check_string_array(v, field, err) < 0)
			return -EINVAL;
	}
	v = json_object_get(dns, "domain");
	if (v && !json_is_string(v))
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be a string",
			   "dns.domain");
	return 0;
}

/*
 * runtimeConfig.bandwidth, what the runtime passes for the "bandwidth" capability: the
 * bandwidth plugin chained after twill enforces it; twill only needs to know whether
 * any limit is set (bits per second and bits, as the plugin reads them).
 */
static int parse_runtime_config(const json_t *rc, struct cni_config *cfg,
				struct cni_error *err)
{
	static const char *const fields[] = { "ingressRate", "ingressBurst", "egressRate",
					      "egressBurst" };
	const json_t *bw, *v;

	if (!json_is_object(rc))
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be an object",
			   "runtimeConfig");
	bw = json_object_get(rc, "bandwidth");
	if (!bw || json_is_null(bw))
		return 0;
	if (!json_is_object(bw))
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be an object",
			   "runtimeConfig.bandwidth");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		v = json_object_get(bw, fields[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_number(v) || json_number_value(v) < 0)
			return fail(err, CNI_ERR_INVALID_CONFIG,
				   "field \"runtimeConfig.bandwidth.%s\" must be a number, 0 or more",
				   fields[i]);
		if (json_number_value(v) > 0)
			cfg->bandwidth_limited = true;
	}
	return 0;
}

static int parse_attachments(const json_t *a, const char *field, struct cni_config *cfg,
			     struct cni_error *err)
{
	const json_t *o;
	size_t i;

	if (!json_is_array(a))
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be an array", field);
	cfg->attachments = calloc(json_array_size(a) + 1, sizeof(*cfg->attachments));
	if (!cfg->attachments) {
		cni_error_set(err, CNI_ERR_INTERNAL, "out of memory");
		return -ENOMEM;
	}
	json_array_foreach(a, i, o) {
		struct cni_attachment *at = &cfg->attachments[i];
		const json_t *id = json_object_get(o, "containerID");
		const json_t *ifn = json_object_get(o, "ifname");

		if (!json_is_string(id) || !json_is_string(ifn) ||
		    json_string_length(id) == 0 || json_string_length(ifn) == 0 ||
		    json_string_length(id) >= sizeof(at->container_id) ||
		    json_string_length(ifn) >= sizeof(at->ifname)) {
			cni_error_set(err, CNI_ERR_INVALID_CONFIG,
				      "field \"%s\"[%zu] needs string \"containerID\" and \"ifname\"",
				      field, i);
			return -EINVAL;
		}
		snprintf(at->container_id, sizeof(at->container_id), "%s", json_string_value(id));
		snprintf(at->ifname, sizeof(at->ifname), "%s", json_string_value(ifn));
	}
	cfg->n_attachments = json_array_size(a);
	cfg->has_attachments = true;
	return 0;
}

int cni_config_peek_version(const char *buf, size_t len, enum cni_version *out)
{
	json_t *root = json_loadb(buf, len, 0, NULL);
	const json_t *v = json_object_get(root, "cniVersion");
	int r = -EINVAL;

	if (json_is_string(v))
		r = cni_version_parse(json_string_value(v), out);
	json_decref(root);
	return r;
}

static int parse_root(const json_t *root, struct cni_config *cfg, struct cni_error *err)
{
	const json_t *v;
	char buf[64];
	bool present;
	int r;

	v = json_object_get(root, "cniVersion");
	if (!v)
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" is missing", "cniVersion");
	if (!json_is_string(v))
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be a string",
			   "cniVersion");
	if (cni_version_parse(json_string_value(v), &cfg->version) < 0) {
		cni_error_set(err, CNI_ERR_INCOMPATIBLE_VERSION,
			      "cniVersion '%.32s' is not supported", json_string_value(v));
		cni_error_details(err, "supported versions: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0");
		return -EINVAL;
	}
	err->version = cfg->version;

	r = get_string(root, "name", cfg->name, sizeof(cfg->name), &present, err);
	if (r < 0)
		return r;
	if (!present)
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" is missing", "name");
	if (!name_valid(cfg->name))
		return fail(err, CNI_ERR_INVALID_CONFIG,
			   "field \"%s\" '%s' may only hold letters, digits, '_', '.' and '-'",
			   "name", cfg->name);

	r = get_string(root, "type", cfg->type, sizeof(cfg->type), &present, err);
	if (r < 0)
		return r;
	if (!present || !cfg->type[0])
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" is missing", "type");

	if (json_object_get(root, "ipam"))
		return fail(err, CNI_ERR_UNSUPPORTED_FIELD,
			   "field \"%s\" is not supported: twill allocates from podCIDR itself",
			   "ipam");

	r = get_string(root, "podCIDR", cfg->pod_cidr, sizeof(cfg->pod_cidr),
		       &cfg->has_pod_cidr, err);
	if (r < 0)
		return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" is not an IPv4 CIDR",
			   "podCIDR");
	if (cfg->has_pod_cidr) {
		/* every node owns one /24: .0, .1 (the node) and .255 are never handed out */
		if (cni_cidr_parse(cfg->pod_cidr, &cfg->pod_net, &cfg->pod_prefixlen) < 0 ||
		    cfg->pod_prefixlen != 24)
			return fail(err, CNI_ERR_INVALID_CONFIG,
				   "field \"%s\" '%s' is not an IPv4 /24", "podCIDR", cfg->pod_cidr);
		uint32_t mask = htonl(~0u << (32 - cfg->pod_prefixlen));

		if (cfg->pod_net.s_addr & ~mask)
			return fail(err, CNI_ERR_INVALID_CONFIG,
				   "field \"%s\" '%s' has host bits set", "podCIDR", cfg->pod_cidr);
	}

	v = json_object_get(root, "mtu");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < MTU_MIN ||
		    json_integer_value(v) > MTU_MAX) {
			char *s = json_dumps(v, JSON_ENCODE_ANY);

			snprintf(buf, sizeof(buf), "%s", s ? s : "?");
			free(s);
			return fail(err, CNI_ERR_INVALID_CONFIG,
				   "field \"%s\" %s is not an integer from 576 to 65535", "mtu", buf);
		}
		cfg->mtu = (unsigned int)json_integer_value(v);
	}

	r = get_abs_path(root, "stateDir", cfg->state_dir, sizeof(cfg->state_dir),
			 TWILL_DEFAULT_STATE_DIR, err);
	if (r < 0)
		return r;
	r = get_abs_path(root, "bpfPinDir", cfg->bpf_pin_dir, sizeof(cfg->bpf_pin_dir),
			 TWILL_DEFAULT_BPF_PIN_DIR, err);
	if (r < 0)
		return r;
	r = get_abs_path(root, "logFile", cfg->log_file, sizeof(cfg->log_file), "", err);
	if (r < 0)
		return r;

	r = get_string(root, "logLevel", buf, sizeof(buf), &cfg->has_log_level, err);
	if (r < 0)
		return r;
	if (cfg->has_log_level && log_level_parse(buf, &cfg->log_level) < 0)
		return fail(err, CNI_ERR_INVALID_CONFIG,
			   "field \"%s\" '%s' is not one of error, warn, info, debug", "logLevel",
			   buf);

	v = json_object_get(root, "dns");
	if (v && !json_is_null(v)) {
		if (parse_dns(v, err) < 0)
			return -EINVAL;
		cfg->dns = json_deep_copy(v);
	}

	v = json_object_get(root, "prevResult");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v))
			return fail(err, CNI_ERR_INVALID_CONFIG, "field \"%s\" must be an object",
				   "prevResult");
		cfg->prev_result = json_deep_copy(v);
	}

	v = json_object_get(root, "runtimeConfig");
	if (v && !json_is_null(v) && parse_runtime_config(v, cfg, err) < 0)
		return -EINVAL;

	v = json_object_get(root, "cni.dev/valid-attachments");
	if (v)
		return parse_attachments(v, "cni.dev/valid-attachments", cfg, err);
	v = json_object_get(root, "cni.dev/attachments");
	if (v)
		return parse_attachments(v, "cni.dev/attachments", cfg, err);
	return 0;
}

int cni_config_parse(const char *buf, size_t len, struct cni_config **out,
		     struct cni_error *err)
{
	struct cni_config *cfg = NULL;
	json_error_t jerr;
	json_t *root;
	int r;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		cni_error_set(err, CNI_ERR_DECODE, "cannot decode the network configuration");
		cni_error_details(err, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		cni_error_set(err, CNI_ERR_DECODE, "the network configuration is not a JSON object");
		r = -EINVAL;
		goto cleanup;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		cni_error_set(err, CNI_ERR_INTERNAL, "out of memory");
		r = -ENOMEM;
		goto cleanup;
	}
	r = parse_root(root, cfg, err);
	if (r < 0)
		goto cleanup;
	*out = cfg;
	cfg = NULL;
cleanup:
	cni_config_free(cfg);
	json_decref(root);
	return r;
}

void cni_config_free(struct cni_config *cfg)
{
	if (!cfg)
		return;
	json_decref(cfg->dns);
	json_decref(cfg->prev_result);
	free(cfg->attachments);
	free(cfg);
}
