// SPDX-License-Identifier: Apache-2.0
/*
 * CNI results and errors as JSON, in the version the caller speaks: 0.3.x and 0.4.0
 * tag every IP with "version", 1.1.0 may carry the interface MTU.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "cni_result.h"
#include "log.h"

static const char *const version_names[CNI_VERSION_COUNT] = {
	[CNI_VERSION_0_3_0] = "0.3.0",
	[CNI_VERSION_0_3_1] = "0.3.1",
	[CNI_VERSION_0_4_0] = "0.4.0",
	[CNI_VERSION_1_0_0] = "1.0.0",
	[CNI_VERSION_1_1_0] = "1.1.0",
};

int cni_version_parse(const char *s, enum cni_version *out)
{
	for (int i = 0; i < CNI_VERSION_COUNT; i++) {
		if (strcmp(s, version_names[i]) == 0) {
			*out = (enum cni_version)i;
			return 0;
		}
	}
	return -ENOTSUP;
}

const char *cni_version_str(enum cni_version v)
{
	if ((unsigned int)v >= CNI_VERSION_COUNT)
		return version_names[CNI_VERSION_LATEST];
	return version_names[v];
}

void cni_error_set(struct cni_error *err, int code, const char *msg_fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, msg_fmt);
	vsnprintf(err->msg, sizeof(err->msg), msg_fmt, ap);
	va_end(ap);
	err->details[0] = '\0';
}

void cni_error_details(struct cni_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->details, sizeof(err->details), fmt, ap);
	va_end(ap);
}

json_t *cni_error_encode(const struct cni_error *err)
{
	json_t *j = json_object();

	if (!j)
		return NULL;
	json_object_set_new(j, "cniVersion", json_string(cni_version_str(err->version)));
	json_object_set_new(j, "code", json_integer(err->code ? err->code : CNI_ERR_INTERNAL));
	json_object_set_new(j, "msg", json_string(err->msg[0] ? err->msg : "unknown error"));
	if (err->details[0])
		json_object_set_new(j, "details", json_string(err->details));
	return j;
}

int cni_mac_format(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
	return 0;
}

int cni_mac_parse(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char tail;

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

int cni_cidr_parse(const char *s, struct in_addr *addr, unsigned int *prefixlen)
{
	uint8_t len;

	if (cidr_parse(s, addr, &len) < 0)
		return -EINVAL;
	*prefixlen = len;
	return 0;
}

static json_t *inet_json(struct in_addr a)
{
	char s[INET_ADDRSTRLEN];

	return json_string(inet_ntop(AF_INET, &a, s, sizeof(s)));
}

static json_t *cidr_json(struct in_addr a, unsigned int prefixlen)
{
	char out[CIDR_STR_LEN];

	cidr_format(a, (uint8_t)prefixlen, out);
	return json_string(out);
}

int cni_result_encode(const struct cni_result *r, enum cni_version v, json_t **out)
{
	json_t *j = NULL, *ifaces = NULL, *ips = NULL, *routes = NULL;
	bool legacy = v < CNI_VERSION_1_0_0;
	int err = -ENOMEM;

	if ((unsigned int)v >= CNI_VERSION_COUNT)
		return -EINVAL;
	j = json_object();
	ifaces = json_array();
	ips = json_array();
	routes = json_array();
	if (!j || !ifaces || !ips || !routes)
		goto cleanup;
	if (json_object_set_new(j, "cniVersion", json_string(cni_version_str(v))) < 0)
		goto cleanup;

	for (size_t i = 0; i < r->n_interfaces; i++) {
		const struct cni_interface *in = &r->interfaces[i];
		json_t *o = json_object();
		char mac[18];

		if (!o || json_array_append_new(ifaces, o) < 0)
			goto cleanup;
		json_object_set_new(o, "name", json_string(in->name));
		if (in->has_mac) {
			cni_mac_format(in->mac, mac);
			json_object_set_new(o, "mac", json_string(mac));
		}
		if (in->mtu && v >= CNI_VERSION_1_1_0)
			json_object_set_new(o, "mtu", json_integer(in->mtu));
		if (in->sandbox[0])
			json_object_set_new(o, "sandbox", json_string(in->sandbox));
	}
	for (size_t i = 0; i < r->n_ips; i++) {
		const struct cni_ip *ip = &r->ips[i];
		json_t *o = json_object();

		if (!o || json_array_append_new(ips, o) < 0)
			goto cleanup;
		if (legacy)
			json_object_set_new(o, "version", json_string("4"));
		json_object_set_new(o, "address", cidr_json(ip->addr, ip->prefixlen));
		if (ip->gateway.s_addr)
			json_object_set_new(o, "gateway", inet_json(ip->gateway));
		if (ip->interface >= 0)
			json_object_set_new(o, "interface", json_integer(ip->interface));
	}
	for (size_t i = 0; i < r->n_routes; i++) {
		const struct cni_route *rt = &r->routes[i];
		json_t *o = json_object();

		if (!o || json_array_append_new(routes, o) < 0)
			goto cleanup;
		json_object_set_new(o, "dst", cidr_json(rt->dst, rt->dst_len));
		if (rt->gw.s_addr)
			json_object_set_new(o, "gw", inet_json(rt->gw));
	}
	if (r->n_interfaces)
		json_object_set(j, "interfaces", ifaces);
	if (r->n_ips)
		json_object_set(j, "ips", ips);
	if (r->n_routes)
		json_object_set(j, "routes", routes);
	/* 0.3.x clients decode "dns" as a struct: always present, possibly empty */
	json_object_set_new(j, "dns", r->dns ? json_deep_copy(r->dns) : json_object());
	*out = j;
	j = NULL;
	err = 0;
cleanup:
	json_decref(ifaces);
	json_decref(ips);
	json_decref(routes);
	json_decref(j);
	return err;
}

static int decode_fail(struct cni_error *err, const char *what, size_t i, const char *why)
{
	cni_error_set(err, CNI_ERR_INVALID_CONFIG, "prevResult: %s[%zu] %s", what, i, why);
	return -EINVAL;
}

int cni_result_decode(const json_t *j, struct cni_result *out, struct cni_error *err)
{
	const json_t *a, *o, *f;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j)) {
		cni_error_set(err, CNI_ERR_INVALID_CONFIG, "field \"prevResult\" is not an object");
		return -EINVAL;
	}
	a = json_object_get(j, "interfaces");
	if (a && !json_is_array(a))
		return decode_fail(err, "interfaces", 0, "is not an array");
	json_array_foreach(a, i, o) {
		struct cni_interface *in;

		if (out->n_interfaces >= CNI_RESULT_MAX)
			return decode_fail(err, "interfaces", i, "exceeds the supported count");
		in = &out->interfaces[out->n_interfaces++];
		f = json_object_get(o, "name");
		if (!json_is_string(f) || json_string_length(f) >= sizeof(in->name))
			return decode_fail(err, "interfaces", i, "has no valid \"name\"");
		snprintf(in->name, sizeof(in->name), "%s", json_string_value(f));
		f = json_object_get(o, "mac");
		if (f) {
			if (!json_is_string(f) || cni_mac_parse(json_string_value(f), in->mac) < 0)
				return decode_fail(err, "interfaces", i, "has an invalid \"mac\"");
			in->has_mac = true;
		}
		f = json_object_get(o, "sandbox");
		if (f) {
			if (!json_is_string(f) || json_string_length(f) >= sizeof(in->sandbox))
				return decode_fail(err, "interfaces", i, "has an invalid \"sandbox\"");
			snprintf(in->sandbox, sizeof(in->sandbox), "%s", json_string_value(f));
		}
		f = json_object_get(o, "mtu");
		if (json_is_integer(f) && json_integer_value(f) > 0)
			in->mtu = (unsigned int)json_integer_value(f);
	}
	a = json_object_get(j, "ips");
	if (a && !json_is_array(a))
		return decode_fail(err, "ips", 0, "is not an array");
	json_array_foreach(a, i, o) {
		struct cni_ip *ip;
		struct in_addr addr;
		unsigned int plen;

		f = json_object_get(o, "address");
		if (!json_is_string(f))
			return decode_fail(err, "ips", i, "has no \"address\"");
		if (cni_cidr_parse(json_string_value(f), &addr, &plen) < 0) {
			if (strchr(json_string_value(f), ':'))
				continue;   /* IPv6 from another plugin: not ours to check */
			return decode_fail(err, "ips", i, "has an invalid \"address\"");
		}
		if (out->n_ips >= CNI_RESULT_MAX)
			return decode_fail(err, "ips", i, "exceeds the supported count");
		ip = &out->ips[out->n_ips++];
		ip->addr = addr;
		ip->prefixlen = plen;
		ip->interface = -1;
		f = json_object_get(o, "gateway");
		if (f && (!json_is_string(f) ||
			  inet_pton(AF_INET, json_string_value(f), &ip->gateway) != 1))
			return decode_fail(err, "ips", i, "has an invalid \"gateway\"");
		f = json_object_get(o, "interface");
		if (f) {
			if (!json_is_integer(f) || json_integer_value(f) < 0 ||
			    (size_t)json_integer_value(f) >= out->n_interfaces)
				return decode_fail(err, "ips", i, "has an invalid \"interface\" index");
			ip->interface = (int)json_integer_value(f);
		}
	}
	a = json_object_get(j, "routes");
	if (a && !json_is_array(a))
		return decode_fail(err, "routes", 0, "is not an array");
	json_array_foreach(a, i, o) {
		struct cni_route rt = { 0 };

		f = json_object_get(o, "dst");
		if (!json_is_string(f))
			return decode_fail(err, "routes", i, "has no \"dst\"");
		if (cni_cidr_parse(json_string_value(f), &rt.dst, &rt.dst_len) < 0) {
			if (strchr(json_string_value(f), ':'))
				continue;
			return decode_fail(err, "routes", i, "has an invalid \"dst\"");
		}
		f = json_object_get(o, "gw");
		if (f && (!json_is_string(f) ||
			  inet_pton(AF_INET, json_string_value(f), &rt.gw) != 1))
			return decode_fail(err, "routes", i, "has an invalid \"gw\"");
		if (out->n_routes >= CNI_RESULT_MAX)
			return decode_fail(err, "routes", i, "exceeds the supported count");
		out->routes[out->n_routes++] = rt;
	}
	f = json_object_get(j, "dns");
	if (json_is_object(f))
		out->dns = json_incref((json_t *)f);
	return 0;
}

void cni_result_clear(struct cni_result *r)
{
	if (!r)
		return;
	json_decref(r->dns);
	r->dns = NULL;
}
