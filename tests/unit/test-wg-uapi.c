// SPDX-License-Identifier: Apache-2.0
/* The UAPI text protocol of userspace WireGuard: parsing replies, building requests. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wg_uapi.h"

#define K1 "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
#define K2 "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376"
#define K3 "662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58"
#define PRIV "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"

static void quiet(void)
{
	log_set_stderr(0);
}

static int parse(const char *text, struct wg_device **out)
{
	return wg_uapi_parse_get(text, strlen(text), out);
}

/* What wireguard-go v0.0.20220316 prints for get=1, field order included. */
static const char full_reply[] =
	"private_key=" PRIV "\n"
	"listen_port=51820\n"
	"fwmark=51\n"
	"public_key=" K2 "\n"
	"preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
	"protocol_version=1\n"
	"endpoint=192.168.4.2:51821\n"
	"last_handshake_time_sec=1700000000\n"
	"last_handshake_time_nsec=123456789\n"
	"tx_bytes=18446744073709551615\n"
	"rx_bytes=2048\n"
	"persistent_keepalive_interval=25\n"
	"allowed_ip=10.244.1.0/24\n"
	"allowed_ip=fd00:1::/64\n"
	"public_key=" K3 "\n"
	"protocol_version=1\n"
	"endpoint=[2001:db8::1]:4500\n"
	"last_handshake_time_sec=0\n"
	"last_handshake_time_nsec=0\n"
	"tx_bytes=0\n"
	"rx_bytes=0\n"
	"persistent_keepalive_interval=0\n"
	"errno=0\n"
	"\n";

Test(wg_uapi, parses_every_field, .init = quiet)
{
	struct wg_device *dev = NULL;
	uint8_t key[WG_KEY_LEN], pub[WG_KEY_LEN];
	char buf[INET6_ADDRSTRLEN];

	cr_assert_eq(parse(full_reply, &dev), 0);
	wgkey_from_hex(PRIV, key);
	cr_assert_arr_eq(dev->private_key, key, WG_KEY_LEN);
	cr_assert_eq(wgkey_public_from_private(key, pub), 0);
	cr_assert_arr_eq(dev->public_key, pub, WG_KEY_LEN);
	cr_assert_eq(dev->listen_port, 51820);
	cr_assert_eq(dev->fwmark, 51);
	cr_assert_eq(dev->n_peers, 2);

	const struct wg_peer *p = &dev->peers[0];
	wgkey_from_hex(K2, key);
	cr_assert_arr_eq(p->public_key, key, WG_KEY_LEN);
	cr_assert_eq(p->flags, 0);
	cr_assert_eq(p->protocol_version, 1);
	cr_assert_eq(p->endpoint.addr.sa_family, AF_INET);
	cr_assert_str_eq(inet_ntop(AF_INET, &p->endpoint.addr4.sin_addr, buf, sizeof(buf)),
			 "192.168.4.2");
	cr_assert_eq(ntohs(p->endpoint.addr4.sin_port), 51821);
	cr_assert_eq(p->last_handshake_sec, 1700000000);
	cr_assert_eq(p->last_handshake_nsec, 123456789);
	cr_assert_eq(p->tx_bytes, UINT64_MAX);
	cr_assert_eq(p->rx_bytes, 2048);
	cr_assert_eq(p->keepalive_interval, 25);
	cr_assert_eq(p->n_allowed_ips, 2);
	cr_assert_eq(p->allowed_ips[0].family, AF_INET);
	cr_assert_eq(p->allowed_ips[0].ip4.s_addr, inet_addr("10.244.1.0"));
	cr_assert_eq(p->allowed_ips[0].cidr, 24);
	cr_assert_eq(p->allowed_ips[1].family, AF_INET6);
	cr_assert_str_eq(inet_ntop(AF_INET6, &p->allowed_ips[1].ip6, buf, sizeof(buf)), "fd00:1::");
	cr_assert_eq(p->allowed_ips[1].cidr, 64);

	p = &dev->peers[1];
	wgkey_from_hex(K3, key);
	cr_assert_arr_eq(p->public_key, key, WG_KEY_LEN);
	cr_assert_eq(p->endpoint.addr.sa_family, AF_INET6);
	cr_assert_str_eq(inet_ntop(AF_INET6, &p->endpoint.addr6.sin6_addr, buf, sizeof(buf)),
			 "2001:db8::1");
	cr_assert_eq(ntohs(p->endpoint.addr6.sin6_port), 4500);
	cr_assert_eq(p->n_allowed_ips, 0);
	cr_assert_eq(p->last_handshake_sec, 0);
	wg_device_free(dev);
}

Test(wg_uapi, parses_empty_device_and_scoped_endpoint_and_unknown_keys, .init = quiet)
{
	struct wg_device *dev = NULL;

	cr_assert_eq(parse("errno=0\n\n", &dev), 0);
	cr_assert_eq(dev->n_peers, 0);
	cr_assert_eq(dev->listen_port, 0);
	wg_device_free(dev);
	dev = NULL;
	cr_assert_eq(parse("listen_port=1\nsome_future_key=whatever\npublic_key=" K1 "\n"
			   "endpoint=[fe80::1%7]:51820\nanother_key=1\nerrno=0\n\n", &dev), 0);
	cr_assert_eq(dev->n_peers, 1);
	cr_assert_eq(dev->peers[0].endpoint.addr6.sin6_scope_id, 7);
	wg_device_free(dev);
}

Test(wg_uapi, daemon_errno_is_returned, .init = quiet)
{
	struct wg_device *dev = NULL;

	cr_assert_eq(parse("errno=19\n\n", &dev), -19);
	cr_assert_null(dev);
	cr_assert_eq(parse("listen_port=5\nerrno=1\n\n", &dev), -EPERM);
	cr_assert_null(dev);
}

struct bad_case {
	const char *name;
	const char *text;
};

static const struct bad_case bad_replies[] = {
	{ "empty", "" },
	{ "only blank", "\n" },
	{ "no errno", "listen_port=1\n\n" },
	{ "no blank line", "errno=0\n" },
	{ "truncated line", "errno=0" },
	{ "truncated mid peer", "public_key=" K1 "\nendpoint=1.2.3.4:5" },
	{ "line after errno", "errno=0\nlisten_port=1\n\n" },
	{ "no equals", "listen_port\nerrno=0\n\n" },
	{ "empty key", "=5\nerrno=0\n\n" },
	{ "short key", "public_key=e84b5a\nerrno=0\n\n" },
	{ "overlong key", "public_key=" K1 "00\nerrno=0\n\n" },
	{ "overlong private key", "private_key=" K1 K1 "\nerrno=0\n\n" },
	{ "non-hex key", "public_key=z84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a\nerrno=0\n\n" },
	{ "negative port", "listen_port=-1\nerrno=0\n\n" },
	{ "port too big", "listen_port=65536\nerrno=0\n\n" },
	{ "port with space", "listen_port= 5\nerrno=0\n\n" },
	{ "port trailing junk", "listen_port=5x\nerrno=0\n\n" },
	{ "empty port", "listen_port=\nerrno=0\n\n" },
	{ "u64 overflow", "public_key=" K1 "\nrx_bytes=18446744073709551616\nerrno=0\n\n" },
	{ "huge number", "public_key=" K1 "\ntx_bytes=999999999999999999999999999\nerrno=0\n\n" },
	{ "nsec too big", "public_key=" K1 "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n" },
	{ "keepalive too big", "public_key=" K1 "\npersistent_keepalive_interval=70000\nerrno=0\n\n" },
	{ "bad errno", "errno=x\n\n" },
	{ "negative errno", "errno=-1\n\n" },
	{ "peer field first", "endpoint=1.2.3.4:5\nerrno=0\n\n" },
	{ "allowed ip first", "allowed_ip=10.0.0.0/8\nerrno=0\n\n" },
	{ "device field in peer", "public_key=" K1 "\nlisten_port=5\nerrno=0\n\n" },
	{ "private key in peer", "public_key=" K1 "\nprivate_key=" K2 "\nerrno=0\n\n" },
	{ "cidr 33", "public_key=" K1 "\nallowed_ip=10.0.0.0/33\nerrno=0\n\n" },
	{ "cidr 129", "public_key=" K1 "\nallowed_ip=fd00::/129\nerrno=0\n\n" },
	{ "no prefix", "public_key=" K1 "\nallowed_ip=10.0.0.0\nerrno=0\n\n" },
	{ "bad ip", "public_key=" K1 "\nallowed_ip=10.0.0.256/8\nerrno=0\n\n" },
	{ "empty prefix", "public_key=" K1 "\nallowed_ip=10.0.0.0/\nerrno=0\n\n" },
	{ "endpoint no port", "public_key=" K1 "\nendpoint=1.2.3.4\nerrno=0\n\n" },
	{ "endpoint empty port", "public_key=" K1 "\nendpoint=1.2.3.4:\nerrno=0\n\n" },
	{ "endpoint v6 no brackets", "public_key=" K1 "\nendpoint=fd00::1:51820\nerrno=0\n\n" },
	{ "endpoint v6 unclosed", "public_key=" K1 "\nendpoint=[fd00::1:51820\nerrno=0\n\n" },
	{ "endpoint hostname", "public_key=" K1 "\nendpoint=example.com:51820\nerrno=0\n\n" },
	{ "endpoint port 65536", "public_key=" K1 "\nendpoint=1.2.3.4:65536\nerrno=0\n\n" },
	{ "endpoint overlong", "public_key=" K1 "\nendpoint=[1111:2222:3333:4444:5555:6666:7777:8888%aaaaaaaaaaaaaaaaaaaaaaaa]:1\nerrno=0\n\n" },
	{ "bad psk", "public_key=" K1 "\npreshared_key=00\nerrno=0\n\n" },
};

Test(wg_uapi, rejects_hostile_replies, .init = quiet)
{
	for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]); i++) {
		struct wg_device *dev = NULL;
		int r = parse(bad_replies[i].text, &dev);

		cr_expect_lt(r, 0, "accepted case '%s'", bad_replies[i].name);
		cr_expect_null(dev, "case '%s' set *out", bad_replies[i].name);
		wg_device_free(dev);
	}
}

Test(wg_uapi, rejects_nul_inside_value, .init = quiet)
{
	static const char text[] = "public_key=" K1 "\nallowed_ip=10.0.0.0/8\0junk\nerrno=0\n\n";
	struct wg_device *dev = NULL;

	cr_assert_lt(wg_uapi_parse_get(text, sizeof(text) - 1, &dev), 0);
	cr_assert_null(dev);
}

Test(wg_uapi, every_truncation_of_a_valid_reply_fails_cleanly, .init = quiet)
{
	size_t len = strlen(full_reply);

	for (size_t cut = 0; cut < len - 1; cut++) {
		struct wg_device *dev = NULL;

		cr_expect_lt(wg_uapi_parse_get(full_reply, cut, &dev), 0, "cut at %zu accepted", cut);
		cr_expect_null(dev);
	}
}

Test(wg_uapi, parses_thousands_of_peers, .init = quiet)
{
	enum { N = 5000 };
	size_t cap = (size_t)N * 400, used = 0;
	char *text = malloc(cap);
	struct wg_device *dev = NULL;

	for (int i = 0; i < N; i++)
		used += (size_t)snprintf(text + used, cap - used,
					 "public_key=%056x%08x\nendpoint=198.18.%d.%d:51820\n"
					 "rx_bytes=%d\nallowed_ip=10.%d.%d.0/24\n",
					 0, i, i / 256, i % 256, i, i / 256, i % 256);
	used += (size_t)snprintf(text + used, cap - used, "errno=0\n\n");
	cr_assert_eq(wg_uapi_parse_get(text, used, &dev), 0);
	cr_assert_eq(dev->n_peers, N);
	cr_assert_eq(dev->peers[N - 1].rx_bytes, N - 1);
	cr_assert_eq(dev->peers[N - 1].public_key[31], (N - 1) & 0xff);
	cr_assert_eq(dev->peers[1234].allowed_ips[0].ip4.s_addr, inet_addr("10.4.210.0"));
	wg_device_free(dev);
	free(text);
}

Test(wg_uapi, set_reply)
{
	cr_assert_eq(wg_uapi_parse_set_reply("errno=0\n\n", 9), 0);
	cr_assert_eq(wg_uapi_parse_set_reply("errno=22\n\n", 10), -EINVAL);
	cr_assert_eq(wg_uapi_parse_set_reply("errno=0\n", 8), -EPROTO);
	cr_assert_eq(wg_uapi_parse_set_reply("errno=0\n\nx", 10), -EPROTO);
	cr_assert_eq(wg_uapi_parse_set_reply("errno=\n\n", 8), -EPROTO);
	cr_assert_eq(wg_uapi_parse_set_reply("", 0), -EPROTO);
	cr_assert_eq(wg_uapi_parse_set_reply("listen_port=1\n\n", 15), -EPROTO);
}

static struct wg_device *sample_device(void)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));
	struct wg_peer *p;
	struct wg_allowed_ip *a;

	dev->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT |
		     WG_DEVICE_REPLACE_PEERS;
	wgkey_from_hex(PRIV, dev->private_key);
	dev->listen_port = 51820;

	p = wg_device_add_peer(dev);
	wgkey_from_hex(K2, p->public_key);
	p->flags = WG_PEER_HAS_ENDPOINT | WG_PEER_HAS_KEEPALIVE | WG_PEER_REPLACE_ALLOWEDIPS;
	p->endpoint.addr4.sin_family = AF_INET;
	p->endpoint.addr4.sin_port = htons(51821);
	inet_pton(AF_INET, "192.168.4.2", &p->endpoint.addr4.sin_addr);
	p->keepalive_interval = 25;
	a = wg_peer_add_allowed_ip(p);
	a->family = AF_INET;
	inet_pton(AF_INET, "10.244.1.0", &a->ip4);
	a->cidr = 24;
	a = wg_peer_add_allowed_ip(p);
	a->family = AF_INET6;
	inet_pton(AF_INET6, "fd00:1::", &a->ip6);
	a->cidr = 64;

	p = wg_device_add_peer(dev);
	wgkey_from_hex(K3, p->public_key);
	p->flags = WG_PEER_HAS_ENDPOINT | WG_PEER_UPDATE_ONLY;
	p->endpoint.addr6.sin6_family = AF_INET6;
	p->endpoint.addr6.sin6_port = htons(4500);
	inet_pton(AF_INET6, "2001:db8::1", &p->endpoint.addr6.sin6_addr);

	p = wg_device_add_peer(dev);
	wgkey_from_hex(K1, p->public_key);
	p->flags = WG_PEER_REMOVE | WG_PEER_HAS_ENDPOINT; /* remove wins over the rest */
	return dev;
}

Test(wg_uapi, builds_set_request, .init = quiet)
{
	struct wg_device *dev = sample_device();
	char *text = NULL;
	size_t len = 0;

	cr_assert_eq(wg_uapi_build_set(dev, &text, &len), 0);
	cr_assert_eq(len, strlen(text));
	cr_assert_str_eq(text,
			 "set=1\n"
			 "private_key=" PRIV "\n"
			 "listen_port=51820\n"
			 "replace_peers=true\n"
			 "public_key=" K2 "\n"
			 "endpoint=192.168.4.2:51821\n"
			 "persistent_keepalive_interval=25\n"
			 "replace_allowed_ips=true\n"
			 "allowed_ip=10.244.1.0/24\n"
			 "allowed_ip=fd00:1::/64\n"
			 "public_key=" K3 "\n"
			 "update_only=true\n"
			 "endpoint=[2001:db8::1]:4500\n"
			 "public_key=" K1 "\n"
			 "remove=true\n"
			 "\n");
	free(text);
	wg_device_free(dev);
}

Test(wg_uapi, builds_minimal_set_and_refuses_bad_fields, .init = quiet)
{
	struct wg_device dev = { 0 }, *bad;
	char *text = NULL;
	size_t len = 0;

	cr_assert_eq(wg_uapi_build_set(&dev, &text, &len), 0);
	cr_assert_str_eq(text, "set=1\n\n");
	free(text);
	text = NULL;

	bad = sample_device();
	bad->peers[1].endpoint.addr.sa_family = 0;
	cr_assert_eq(wg_uapi_build_set(bad, &text, &len), -EINVAL);
	cr_assert_null(text);
	wg_device_free(bad);

	bad = sample_device();
	bad->peers[0].allowed_ips[0].cidr = 33;
	cr_assert_eq(wg_uapi_build_set(bad, &text, &len), -EINVAL);
	bad->peers[0].allowed_ips[0].cidr = 24;
	bad->peers[0].allowed_ips[0].family = AF_UNIX;
	cr_assert_eq(wg_uapi_build_set(bad, &text, &len), -EINVAL);
	cr_assert_null(text);
	wg_device_free(bad);
}

Test(wg_uapi, socket_path_validates_name)
{
	char buf[128];

	cr_assert_eq(wg_uapi_socket_path("wg0", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/var/run/wireguard/wg0.sock");
	cr_assert_eq(wg_uapi_socket_path("../x", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(wg_uapi_socket_path("", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(wg_uapi_socket_path("0123456789abcdef", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(wg_uapi_socket_path("wg0", buf, 8), -ENAMETOOLONG);
}
