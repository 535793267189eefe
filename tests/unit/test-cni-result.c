// SPDX-License-Identifier: Apache-2.0
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "cni_result.h"

static void sample(struct cni_result *r)
{
	memset(r, 0, sizeof(*r));
	r->n_interfaces = 2;
	snprintf(r->interfaces[0].name, IF_NAMESIZE, "tw0123456789abc");
	memcpy(r->interfaces[0].mac, (uint8_t[]){ 0xee, 0xee, 0xee, 0xee, 0xee, 0x01 }, 6);
	r->interfaces[0].has_mac = true;
	snprintf(r->interfaces[1].name, IF_NAMESIZE, "eth0");
	memcpy(r->interfaces[1].mac, (uint8_t[]){ 0x02, 0x42, 0xac, 0x11, 0x00, 0x02 }, 6);
	r->interfaces[1].has_mac = true;
	snprintf(r->interfaces[1].sandbox, PATH_MAX, "/var/run/netns/pod");
	r->interfaces[1].mtu = 1440;
	r->n_ips = 1;
	inet_pton(AF_INET, "10.244.1.5", &r->ips[0].addr);
	r->ips[0].prefixlen = 32;
	inet_pton(AF_INET, "169.254.1.1", &r->ips[0].gateway);
	r->ips[0].interface = 1;
	r->n_routes = 1;
	inet_pton(AF_INET, "169.254.1.1", &r->routes[0].gw);
	r->dns = json_pack("{s:[s]}", "nameservers", "10.96.0.10");
}

/* The exact JSON per version, keys sorted: what a 0.3.x client and a 1.1.0 client decode. */
static const char *const expected[CNI_VERSION_COUNT] = {
	[CNI_VERSION_0_3_0] = "{\"cniVersion\": \"0.3.0\", \"dns\": {\"nameservers\": [\"10.96.0.10\"]}, "
		"\"interfaces\": [{\"mac\": \"ee:ee:ee:ee:ee:01\", \"name\": \"tw0123456789abc\"}, "
		"{\"mac\": \"02:42:ac:11:00:02\", \"name\": \"eth0\", \"sandbox\": \"/var/run/netns/pod\"}], "
		"\"ips\": [{\"address\": \"10.244.1.5/32\", \"gateway\": \"169.254.1.1\", \"interface\": 1, \"version\": \"4\"}], "
		"\"routes\": [{\"dst\": \"0.0.0.0/0\", \"gw\": \"169.254.1.1\"}]}",
	[CNI_VERSION_0_3_1] = "{\"cniVersion\": \"0.3.1\", \"dns\": {\"nameservers\": [\"10.96.0.10\"]}, "
		"\"interfaces\": [{\"mac\": \"ee:ee:ee:ee:ee:01\", \"name\": \"tw0123456789abc\"}, "
		"{\"mac\": \"02:42:ac:11:00:02\", \"name\": \"eth0\", \"sandbox\": \"/var/run/netns/pod\"}], "
		"\"ips\": [{\"address\": \"10.244.1.5/32\", \"gateway\": \"169.254.1.1\", \"interface\": 1, \"version\": \"4\"}], "
		"\"routes\": [{\"dst\": \"0.0.0.0/0\", \"gw\": \"169.254.1.1\"}]}",
	[CNI_VERSION_0_4_0] = "{\"cniVersion\": \"0.4.0\", \"dns\": {\"nameservers\": [\"10.96.0.10\"]}, "
		"\"interfaces\": [{\"mac\": \"ee:ee:ee:ee:ee:01\", \"name\": \"tw0123456789abc\"}, "
		"{\"mac\": \"02:42:ac:11:00:02\", \"name\": \"eth0\", \"sandbox\": \"/var/run/netns/pod\"}], "
		"\"ips\": [{\"address\": \"10.244.1.5/32\", \"gateway\": \"169.254.1.1\", \"interface\": 1, \"version\": \"4\"}], "
		"\"routes\": [{\"dst\": \"0.0.0.0/0\", \"gw\": \"169.254.1.1\"}]}",
	[CNI_VERSION_1_0_0] = "{\"cniVersion\": \"1.0.0\", \"dns\": {\"nameservers\": [\"10.96.0.10\"]}, "
		"\"interfaces\": [{\"mac\": \"ee:ee:ee:ee:ee:01\", \"name\": \"tw0123456789abc\"}, "
		"{\"mac\": \"02:42:ac:11:00:02\", \"name\": \"eth0\", \"sandbox\": \"/var/run/netns/pod\"}], "
		"\"ips\": [{\"address\": \"10.244.1.5/32\", \"gateway\": \"169.254.1.1\", \"interface\": 1}], "
		"\"routes\": [{\"dst\": \"0.0.0.0/0\", \"gw\": \"169.254.1.1\"}]}",
	[CNI_VERSION_1_1_0] = "{\"cniVersion\": \"1.1.0\", \"dns\": {\"nameservers\": [\"10.96.0.10\"]}, "
		"\"interfaces\": [{\"mac\": \"ee:ee:ee:ee:ee:01\", \"name\": \"tw0123456789abc\"}, "
		"{\"mac\": \"02:42:ac:11:00:02\", \"mtu\": 1440, \"name\": \"eth0\", \"sandbox\": \"/var/run/netns/pod\"}], "
		"\"ips\": [{\"address\": \"10.244.1.5/32\", \"gateway\": \"169.254.1.1\", \"interface\": 1}], "
		"\"routes\": [{\"dst\": \"0.0.0.0/0\", \"gw\": \"169.254.1.1\"}]}",
};

Test(cni_result, encodes_every_version_exactly)
{
	struct cni_result r;

	sample(&r);
	for (int v = 0; v < CNI_VERSION_COUNT; v++) {
		json_t *got = NULL, *want;
		char *s;

		cr_assert_eq(cni_result_encode(&r, (enum cni_version)v, &got), 0);
		want = json_loads(expected[v], 0, NULL);
		cr_assert_not_null(want, "expected JSON for %s does not parse", cni_version_str(v));
		s = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
		cr_assert(json_equal(got, want), "version %s: got %s", cni_version_str(v), s);
		free(s);
		json_decref(got);
		json_decref(want);
	}
	cni_result_clear(&r);
}

Test(cni_result, always_carries_dns_for_old_clients)
{
	struct cni_result r = { 0 };
	json_t *j = NULL;

	cr_assert_eq(cni_result_encode(&r, CNI_VERSION_0_3_1, &j), 0);
	cr_assert(json_is_object(json_object_get(j, "dns")));
	cr_assert_null(json_object_get(j, "ips"));
	json_decref(j);
	cr_assert_eq(cni_result_encode(&r, CNI_VERSION_COUNT, &j), -EINVAL);
}

Test(cni_result, decodes_what_it_encodes_in_every_version)
{
	struct cni_result r, back;
	struct cni_error err = { 0 };

	sample(&r);
	for (int v = 0; v < CNI_VERSION_COUNT; v++) {
		json_t *j = NULL;

		cr_assert_eq(cni_result_encode(&r, (enum cni_version)v, &j), 0);
		cr_assert_eq(cni_result_decode(j, &back, &err), 0, "%s", err.msg);
		cr_assert_eq(back.n_interfaces, 2);
		cr_assert_str_eq(back.interfaces[1].name, "eth0");
		cr_assert_str_eq(back.interfaces[1].sandbox, "/var/run/netns/pod");
		cr_assert(back.interfaces[1].has_mac);
		cr_assert_eq(memcmp(back.interfaces[1].mac, r.interfaces[1].mac, 6), 0);
		cr_assert_eq(back.n_ips, 1);
		cr_assert_eq(back.ips[0].addr.s_addr, r.ips[0].addr.s_addr);
		cr_assert_eq(back.ips[0].prefixlen, 32);
		cr_assert_eq(back.ips[0].gateway.s_addr, r.ips[0].gateway.s_addr);
		cr_assert_eq(back.ips[0].interface, 1);
		cr_assert_eq(back.n_routes, 1);
		cr_assert_eq(back.routes[0].dst_len, 0);
		cr_assert_eq(back.routes[0].gw.s_addr, r.routes[0].gw.s_addr);
		cr_assert_eq(back.interfaces[1].mtu, v == CNI_VERSION_1_1_0 ? 1440u : 0u);
		cni_result_clear(&back);
		json_decref(j);
	}
	cni_result_clear(&r);
}

Test(cni_result, decode_skips_ipv6_and_rejects_garbage)
{
	struct cni_result back;
	struct cni_error err = { 0 };
	json_t *j;

	j = json_loads("{\"ips\":[{\"address\":\"fd00::5/128\"},{\"address\":\"10.0.0.2/32\"}],"
		       "\"routes\":[{\"dst\":\"::/0\"}]}", 0, NULL);
	cr_assert_eq(cni_result_decode(j, &back, &err), 0, "%s", err.msg);
	cr_assert_eq(back.n_ips, 1);
	cr_assert_eq(back.n_routes, 0);
	json_decref(j);

	j = json_loads("{\"ips\":[{\"address\":\"10.0.0.2\"}]}", 0, NULL);
	cr_assert_lt(cni_result_decode(j, &back, &err), 0);
	cr_assert(strstr(err.msg, "ips[0]"), "%s", err.msg);
	json_decref(j);

	j = json_loads("{\"interfaces\":[{\"name\":\"eth0\",\"mac\":\"zz\"}]}", 0, NULL);
	cr_assert_lt(cni_result_decode(j, &back, &err), 0);
	cr_assert(strstr(err.msg, "mac"), "%s", err.msg);
	json_decref(j);

	j = json_loads("{\"interfaces\":[],\"ips\":[{\"address\":\"10.0.0.2/32\",\"interface\":3}]}", 0, NULL);
	cr_assert_lt(cni_result_decode(j, &back, &err), 0);
	cr_assert(strstr(err.msg, "interface"), "%s", err.msg);
	json_decref(j);
}

Test(cni_result, error_json_has_code_msg_details)
{
	struct cni_error err = { .version = CNI_VERSION_1_0_0 };
	json_t *j;

	cni_error_set(&err, CNI_ERR_INVALID_ENV, "CNI_IFNAME '%s' is invalid", "a/b");
	cni_error_details(&err, "at most %d characters", 15);
	j = cni_error_encode(&err);
	cr_assert_str_eq(json_string_value(json_object_get(j, "cniVersion")), "1.0.0");
	cr_assert_eq(json_integer_value(json_object_get(j, "code")), 4);
	cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "CNI_IFNAME 'a/b' is invalid");
	cr_assert_str_eq(json_string_value(json_object_get(j, "details")), "at most 15 characters");
	json_decref(j);
}

Test(cni_result, parses_cidrs_and_macs_strictly)
{
	struct in_addr a;
	unsigned int p;
	uint8_t mac[6];

	cr_assert_eq(cni_cidr_parse("10.1.2.3/32", &a, &p), 0);
	cr_assert_eq(p, 32);
	cr_assert_lt(cni_cidr_parse("10.1.2.3", &a, &p), 0);
	cr_assert_lt(cni_cidr_parse("10.1.2.3/", &a, &p), 0);
	cr_assert_lt(cni_cidr_parse("10.1.2.3/-1", &a, &p), 0);
	cr_assert_lt(cni_cidr_parse("10.1.2.3/24x", &a, &p), 0);
	cr_assert_lt(cni_cidr_parse("/24", &a, &p), 0);
	cr_assert_eq(cni_mac_parse("0a:0B:0c:0d:0e:0f", mac), 0);
	cr_assert_eq(mac[1], 0x0b);
	cr_assert_lt(cni_mac_parse("0a:0b:0c:0d:0e", mac), 0);
	cr_assert_lt(cni_mac_parse("0a:0b:0c:0d:0e:0f:", mac), 0);
}
