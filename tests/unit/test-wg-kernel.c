// SPDX-License-Identifier: Apache-2.0
/*
 * MESSAGE-LEVEL tests of the kernel WireGuard back end. The machine that runs them has
 * no WireGuard module, so nothing here talks to a kernel: the builders' bytes are
 * compared with bytes written out by hand from <linux/wireguard.h> (attribute numbers,
 * NLA_F_NESTED = 0x8000, 4-byte alignment, host-order integers, network-order ports),
 * and the dump parser is fed replies laid out the same way. The numbers below are
 * spelled out on purpose instead of taken from the header.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wg_kernel.h"

#define FAMILY 0x1b
#define NESTED 0x8000

/* <linux/wireguard.h>, by number */
#define DEV_IFINDEX 1
#define DEV_IFNAME 2
#define DEV_PRIVATE_KEY 3
#define DEV_PUBLIC_KEY 4
#define DEV_FLAGS 5
#define DEV_LISTEN_PORT 6
#define DEV_FWMARK 7
#define DEV_PEERS 8
#define PEER_PUBLIC_KEY 1
#define PEER_FLAGS 3
#define PEER_ENDPOINT 4
#define PEER_KEEPALIVE 5
#define PEER_LAST_HANDSHAKE 6
#define PEER_RX 7
#define PEER_TX 8
#define PEER_ALLOWEDIPS 9
#define PEER_PROTOCOL_VERSION 10
#define AIP_FAMILY 1
#define AIP_IPADDR 2
#define AIP_CIDR 3

static void quiet(void)
{
	log_set_stderr(0);
}

Test(wg_kernel_msg, get_request_bytes)
{
	static const uint8_t want[] = {
		0x1c, 0x00, 0x00, 0x00,  /* nlmsg_len 28 */
		0x1b, 0x00,              /* nlmsg_type: the resolved family */
		0x05, 0x03,              /* NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP */
		0x07, 0x00, 0x00, 0x00,  /* seq 7 */
		0x00, 0x00, 0x00, 0x00,  /* pid */
		0x00, 0x01, 0x00, 0x00,  /* genl: WG_CMD_GET_DEVICE, version 1 */
		0x08, 0x00, 0x02, 0x00, 'w', 'g', '0', 0x00, /* WGDEVICE_A_IFNAME "wg0" */
	};
	uint8_t buf[256];

	cr_assert_eq(wg_kernel_build_get(buf, sizeof(buf), FAMILY, 7, "wg0"), sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
	cr_assert_eq(wg_kernel_build_get(buf, sizeof(buf), FAMILY, 7, "0123456789abcdef"),
		     -EINVAL);
}

Test(wg_kernel_msg, getfamily_request_bytes)
{
	static const uint8_t want[] = {
		0x24, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, /* len 36, GENL_ID_CTRL, REQ|ACK */
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* seq 1, pid 0 */
		0x03, 0x01, 0x00, 0x00,                         /* CTRL_CMD_GETFAMILY, version 1 */
		0x0e, 0x00, 0x02, 0x00, 'w', 'i', 'r', 'e', 'g', 'u', 'a', 'r', 'd', 0x00,
		0x00, 0x00,                                     /* CTRL_ATTR_FAMILY_NAME + pad */
	};
	uint8_t buf[256];

	cr_assert_eq(wg_kernel_build_getfamily(buf, sizeof(buf), 1), sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
}

Test(wg_kernel_msg, newlink_and_dellink_bytes)
{
	static const uint8_t newlink[] = {
		0x3c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, /* len 60, RTM_NEWLINK, REQ|ACK|EXCL|CREATE */
		0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* struct ifinfomsg, AF_UNSPEC */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x08, 0x00, 0x03, 0x00, 'w', 'g', '0', 0x00,    /* IFLA_IFNAME */
		0x14, 0x00, 0x12, 0x80,                         /* IFLA_LINKINFO | NESTED */
		0x0e, 0x00, 0x01, 0x00, 'w', 'i', 'r', 'e', 'g', 'u', 'a', 'r', 'd', 0x00,
		0x00, 0x00,                                     /* IFLA_INFO_KIND + pad */
	};
	static const uint8_t dellink[] = {
		0x28, 0x00, 0x00, 0x00, 0x11, 0x00, 0x05, 0x00, /* len 40, RTM_DELLINK, REQ|ACK */
		0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x08, 0x00, 0x03, 0x00, 'w', 'g', '0', 0x00,
	};
	uint8_t buf[256];

	cr_assert_eq(wg_kernel_build_newlink(buf, sizeof(buf), 3, "wg0"), sizeof(newlink));
	cr_assert_arr_eq(buf, newlink, sizeof(newlink));
	cr_assert_eq(wg_kernel_build_dellink(buf, sizeof(buf), 4, "wg0"), sizeof(dellink));
	cr_assert_arr_eq(buf, dellink, sizeof(dellink));
}

static struct wg_device *one_peer_device(void)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));
	struct wg_peer *p;
	struct wg_allowed_ip *a;

	strcpy(dev->name, "wg0");
	dev->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT |
		     WG_DEVICE_REPLACE_PEERS;
	memset(dev->private_key, 0x11, WG_KEY_LEN);
	dev->listen_port = 51820;
	p = wg_device_add_peer(dev);
	memset(p->public_key, 0x22, WG_KEY_LEN);
	p->flags = WG_PEER_REPLACE_ALLOWEDIPS | WG_PEER_HAS_ENDPOINT | WG_PEER_HAS_KEEPALIVE;
	p->endpoint.addr4.sin_family = AF_INET;
	p->endpoint.addr4.sin_port = htons(51821);
	p->endpoint.addr4.sin_addr.s_addr = inet_addr("192.168.1.2");
	p->keepalive_interval = 25;
	a = wg_peer_add_allowed_ip(p);
	a->family = AF_INET;
	a->ip4.s_addr = inet_addr("10.244.1.0");
	a->cidr = 24;
	return dev;
}

#define KEY32(b) b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, \
		 b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b

Test(wg_kernel_msg, set_request_bytes, .init = quiet)
{
	static const uint8_t want[] = {
		0xc0, 0x00, 0x00, 0x00, 0x1b, 0x00, 0x05, 0x00, /* len 192, family, REQ|ACK */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* seq 2 */
		0x01, 0x01, 0x00, 0x00,                         /* WG_CMD_SET_DEVICE, version 1 */
		0x08, 0x00, 0x02, 0x00, 'w', 'g', '0', 0x00,    /* IFNAME */
		0x24, 0x00, 0x03, 0x00, KEY32(0x11),            /* PRIVATE_KEY */
		0x06, 0x00, 0x06, 0x00, 0x6c, 0xca, 0x00, 0x00, /* LISTEN_PORT 51820, host order */
		0x08, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, /* FLAGS: REPLACE_PEERS */
		0x70, 0x00, 0x08, 0x80,                         /* PEERS | NESTED, 112 */
		0x6c, 0x00, 0x00, 0x80,                         /*  peer 0 | NESTED, 108 */
		0x24, 0x00, 0x01, 0x00, KEY32(0x22),            /*   PUBLIC_KEY */
		0x08, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, /*   FLAGS: REPLACE_ALLOWEDIPS */
		0x14, 0x00, 0x04, 0x00,                         /*   ENDPOINT: sockaddr_in */
		0x02, 0x00, 0xca, 0x6d, 0xc0, 0xa8, 0x01, 0x02, /*    AF_INET, port 51821 BE, 192.168.1.2 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x06, 0x00, 0x05, 0x00, 0x19, 0x00, 0x00, 0x00, /*   KEEPALIVE 25 */
		0x20, 0x00, 0x09, 0x80,                         /*   ALLOWEDIPS | NESTED, 32 */
		0x1c, 0x00, 0x00, 0x80,                         /*    allowed IP 0 | NESTED, 28 */
		0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, /*     FAMILY AF_INET */
		0x08, 0x00, 0x02, 0x00, 0x0a, 0xf4, 0x01, 0x00, /*     IPADDR 10.244.1.0 */
		0x05, 0x00, 0x03, 0x00, 0x18, 0x00, 0x00, 0x00, /*     CIDR_MASK 24 */
	};
	struct wg_device *dev = one_peer_device();
	struct wg_kernel_set_cursor cur = { 0 };
	uint8_t buf[WG_KERNEL_MSG_MAX];

	cr_assert_eq(sizeof(want), 192);
	cr_assert_eq(wg_kernel_build_set(buf, sizeof(buf), FAMILY, 2, dev, &cur), sizeof(want));
	cr_assert(cur.done);
	cr_assert_arr_eq(buf, want, sizeof(want));
	wg_device_free(dev);
}

Test(wg_kernel_msg, set_remove_and_update_only_flags, .init = quiet)
{
	struct wg_device dev = { .name = "wg0" };
	struct wg_peer peers[2] = { 0 };
	struct wg_kernel_set_cursor cur = { 0 };
	uint8_t buf[512];
	int len;

	memset(peers[0].public_key, 0x33, WG_KEY_LEN);
	peers[0].flags = WG_PEER_REMOVE;
	memset(peers[1].public_key, 0x44, WG_KEY_LEN);
	peers[1].flags = WG_PEER_UPDATE_ONLY;
	dev.peers = peers;
	dev.n_peers = 2;
	len = wg_kernel_build_set(buf, sizeof(buf), FAMILY, 1, &dev, &cur);
	/* 20 header + 8 ifname + 4 peers + 2 * (4 + 36 + 8) */
	cr_assert_eq(len, 20 + 8 + 4 + 2 * 48);
	static const uint8_t flags_remove[] = { 0x08, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00 };
	static const uint8_t flags_update[] = { 0x08, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00 };
	cr_assert_arr_eq(buf + 32 + 4 + 36, flags_remove, 8);
	cr_assert_arr_eq(buf + 32 + 48 + 4 + 36, flags_update, 8);
}

Test(wg_kernel_msg, set_refuses_bad_input, .init = quiet)
{
	struct wg_device *dev = one_peer_device();
	struct wg_kernel_set_cursor cur = { 0 };
	uint8_t buf[WG_KERNEL_MSG_MAX];

	dev->peers[0].allowed_ips[0].cidr = 33;
	cr_assert_eq(wg_kernel_build_set(buf, sizeof(buf), FAMILY, 1, dev, &cur), -EINVAL);
	dev->peers[0].allowed_ips[0].cidr = 24;
	dev->peers[0].endpoint.addr.sa_family = AF_UNIX;
	cr_assert_eq(wg_kernel_build_set(buf, sizeof(buf), FAMILY, 1, dev, &cur), -EINVAL);
	dev->peers[0].endpoint.addr.sa_family = AF_INET;
	/* too small for even one step */
	cr_assert_eq(wg_kernel_build_set(buf, 60, FAMILY, 1, dev, &cur), -EMSGSIZE);
	wg_device_free(dev);
}

/* ---- an independent reader for what the builder made ---- */

struct frag {
	uint8_t key[WG_KEY_LEN];
	bool has_flags, has_endpoint, has_keepalive;
	uint32_t flags;
	uint32_t aips[64];
	size_t n_aips;
};

struct seen {
	int messages;
	int private_keys, device_flags, ports;
	struct frag frags[20000];
	size_t n_frags;
};

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Walks attributes by hand: [len u16][type u16][payload][pad to 4]. */
#define FOR_ATTR(p, start, end) \
	for (const uint8_t *p = (start); p + 4 <= (end) && rd16(p) >= 4 && p + rd16(p) <= (end); \
	     p += (rd16(p) + 3u) & ~3u)

static void read_set_message(const uint8_t *msg, size_t len, struct seen *s)
{
	cr_assert_eq(rd32(msg), len, "nlmsg_len disagrees with the returned length");
	cr_assert_eq(rd16(msg + 4), FAMILY);
	cr_assert_eq(msg[16], 1, "not WG_CMD_SET_DEVICE");
	s->messages++;
	FOR_ATTR(a, msg + 20, msg + len) {
		uint16_t type = rd16(a + 2);

		if (type == DEV_PRIVATE_KEY)
			s->private_keys++;
		else if (type == DEV_FLAGS)
			s->device_flags++;
		else if (type == DEV_LISTEN_PORT)
			s->ports++;
		else if (type == (DEV_PEERS | NESTED)) {
			FOR_ATTR(peer, a + 4, a + rd16(a)) {
				struct frag *f = &s->frags[s->n_frags++];

				cr_assert_eq(rd16(peer + 2), NESTED, "peer nest without NLA_F_NESTED");
				FOR_ATTR(pa, peer + 4, peer + rd16(peer)) {
					switch (rd16(pa + 2)) {
					case PEER_PUBLIC_KEY:
						memcpy(f->key, pa + 4, WG_KEY_LEN);
						break;
					case PEER_FLAGS:
						f->has_flags = true;
						f->flags = rd32(pa + 4);
						break;
					case PEER_ENDPOINT:
						f->has_endpoint = true;
						break;
					case PEER_KEEPALIVE:
						f->has_keepalive = true;
						break;
					case PEER_ALLOWEDIPS | NESTED:
						FOR_ATTR(aip, pa + 4, pa + rd16(pa)) {
							FOR_ATTR(x, aip + 4, aip + rd16(aip))
								if (rd16(x + 2) == AIP_IPADDR)
									f->aips[f->n_aips++] = rd32(x + 4);
						}
						break;
					default:
						cr_assert_fail("unexpected peer attribute %u",
							       rd16(pa + 2));
					}
				}
			}
		}
	}
}

static struct wg_device *many_peers(size_t n_peers, size_t n_aips)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));

	strcpy(dev->name, "wg-big");
	dev->flags = WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_REPLACE_PEERS |
		     WG_DEVICE_HAS_LISTEN_PORT;
	for (size_t i = 0; i < n_peers; i++) {
		struct wg_peer *p = wg_device_add_peer(dev);

		memset(p->public_key, 0x5a, WG_KEY_LEN);
		memcpy(p->public_key, &i, sizeof(i));
		p->flags = WG_PEER_REPLACE_ALLOWEDIPS | WG_PEER_HAS_ENDPOINT | WG_PEER_HAS_KEEPALIVE;
		p->endpoint.addr4.sin_family = AF_INET;
		p->keepalive_interval = 25;
		for (size_t j = 0; j < n_aips; j++) {
			struct wg_allowed_ip *a = wg_peer_add_allowed_ip(p);

			a->family = AF_INET;
			a->ip4.s_addr = (uint32_t)(i * 1000 + j);
			a->cidr = 32;
		}
	}
	return dev;
}

/* Splits, then checks that the fragments put back together are exactly the device. */
static void check_split(struct wg_device *dev, size_t buflen, int min_messages)
{
	struct wg_kernel_set_cursor cur = { 0 };
	struct seen *s = calloc(1, sizeof(*s));
	uint8_t *buf = malloc(buflen);
	size_t frag = 0;

	while (!cur.done) {
		int len = wg_kernel_build_set(buf, buflen, FAMILY, 1, dev, &cur);

		cr_assert_gt(len, 0);
		cr_assert_leq((size_t)len, buflen);
		read_set_message(buf, (size_t)len, s);
		cr_assert_lt(s->messages, 100000, "no progress");
	}
	cr_assert_geq(s->messages, min_messages);
	cr_assert_eq(s->private_keys, 1, "private key sent %d times", s->private_keys);
	cr_assert_eq(s->device_flags, 1, "REPLACE_PEERS must go out once, first");
	cr_assert_eq(s->ports, 1);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];
		size_t got = 0;
		bool first = true;

		cr_assert_lt(frag, s->n_frags, "peer %zu missing", i);
		while (frag < s->n_frags && !memcmp(s->frags[frag].key, p->public_key, WG_KEY_LEN)) {
			const struct frag *f = &s->frags[frag];

			/* A second REPLACE_ALLOWEDIPS would drop what the first fragment added. */
			cr_assert_eq(f->has_flags, first, "peer %zu: flags in fragment %s", i,
				     first ? "missing" : "repeated");
			cr_assert_eq(f->has_endpoint, first);
			cr_assert_eq(f->has_keepalive, first);
			if (first)
				cr_assert_eq(f->flags, 2);
			for (size_t j = 0; j < f->n_aips; j++, got++)
				cr_assert_eq(f->aips[j], p->allowed_ips[got].ip4.s_addr);
			first = false;
			frag++;
		}
		cr_assert_eq(got, p->n_allowed_ips, "peer %zu: %zu of %zu allowed IPs", i, got,
			     p->n_allowed_ips);
	}
	cr_assert_eq(frag, s->n_frags, "stray fragments");
	free(buf);
	free(s);
}

Test(wg_kernel_msg, set_splits_peers_across_messages, .init = quiet)
{
	struct wg_device *dev = many_peers(5000, 1);

	/* 5000 peers of ~120 bytes each cannot fit one 8 KiB message */
	check_split(dev, WG_KERNEL_MSG_MAX, 60);
	wg_device_free(dev);
}

Test(wg_kernel_msg, set_splits_one_peer_allowed_ips_across_messages, .init = quiet)
{
	struct wg_device *dev = many_peers(7, 60);

	/* 60 allowed IPs of 28 bytes do not fit 512 bytes: peers span messages */
	check_split(dev, 512, 8);
	wg_device_free(dev);
	dev = many_peers(3, 0);
	check_split(dev, 200, 2);
	wg_device_free(dev);
}

/* ---- dump replies, laid out by hand ---- */

struct mb {
	uint8_t buf[8192];
	size_t len, msg;
};

static size_t attr(struct mb *b, uint16_t type, const void *data, uint16_t len)
{
	size_t at = b->len;
	uint16_t nla_len = (uint16_t)(4 + len);

	memcpy(b->buf + at, &nla_len, 2);
	memcpy(b->buf + at + 2, &type, 2);
	if (len)
		memcpy(b->buf + at + 4, data, len);
	b->len += (4u + len + 3u) & ~3u;
	return at;
}

static size_t nest(struct mb *b, uint16_t type)
{
	return attr(b, type | NESTED, NULL, 0);
}

static void nest_end(struct mb *b, size_t at)
{
	uint16_t len = (uint16_t)(b->len - at);

	memcpy(b->buf + at, &len, 2);
}

static void msg_begin(struct mb *b, uint16_t type, uint16_t flags, uint32_t seq)
{
	uint8_t hdr[20] = { 0 };

	b->msg = b->len;
	memcpy(hdr + 4, &type, 2);
	memcpy(hdr + 6, &flags, 2);
	memcpy(hdr + 8, &seq, 4);
	hdr[16] = 0; /* WG_CMD_GET_DEVICE */
	hdr[17] = 1;
	memcpy(b->buf + b->len, hdr, 20);
	b->len += 20;
}

static void msg_end(struct mb *b)
{
	uint32_t len = (uint32_t)(b->len - b->msg);

	memcpy(b->buf + b->msg, &len, 4);
}

static void put_done(struct mb *b, uint32_t seq)
{
	uint8_t hdr[20] = { 0 };
	uint32_t len = 20;
	uint16_t type = 3 /* NLMSG_DONE */, flags = 2 /* NLM_F_MULTI */;

	memcpy(hdr, &len, 4);
	memcpy(hdr + 4, &type, 2);
	memcpy(hdr + 6, &flags, 2);
	memcpy(hdr + 8, &seq, 4);
	memcpy(b->buf + b->len, hdr, 20);
	b->len += 20;
}

static void put_aip4(struct mb *b, const char *ip, uint8_t cidr)
{
	size_t n = nest(b, 0);
	uint16_t fam = AF_INET;
	uint32_t a = inet_addr(ip);

	attr(b, AIP_FAMILY, &fam, 2);
	attr(b, AIP_IPADDR, &a, 4);
	attr(b, AIP_CIDR, &cidr, 1);
	nest_end(b, n);
}

static void put_aip6(struct mb *b, const char *ip, uint8_t cidr)
{
	size_t n = nest(b, 0);
	uint16_t fam = AF_INET6;
	struct in6_addr a;

	inet_pton(AF_INET6, ip, &a);
	attr(b, AIP_FAMILY, &fam, 2);
	attr(b, AIP_IPADDR, &a, 16);
	attr(b, AIP_CIDR, &cidr, 1);
	nest_end(b, n);
}

static void put_device_head(struct mb *b, bool full)
{
	uint32_t ifindex = 7, fwmark = 0x51;
	uint16_t port = 51820;
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];

	memset(priv, 0x11, sizeof(priv));
	memset(pub, 0x12, sizeof(pub));
	attr(b, DEV_IFINDEX, &ifindex, 4);
	attr(b, DEV_IFNAME, "wg0", 4);
	if (!full)
		return;
	attr(b, DEV_PRIVATE_KEY, priv, 32);
	attr(b, DEV_PUBLIC_KEY, pub, 32);
	attr(b, DEV_LISTEN_PORT, &port, 2);
	attr(b, DEV_FWMARK, &fwmark, 4);
}

/* Two messages and DONE: peer A's allowed IPs continue in the second message. */
static void build_dump(struct mb *b, uint32_t seq)
{
	uint8_t ka[WG_KEY_LEN], kb[WG_KEY_LEN];
	struct sockaddr_in6 ep = { .sin6_family = AF_INET6, .sin6_port = htons(4500) };
	int64_t hs[2] = { 1700000000, 42 };
	uint64_t rx = 1000, tx = 2000;
	uint16_t ka_int = 25;
	uint32_t proto = 1;
	size_t peers, peer, aips;

	memset(ka, 0xaa, sizeof(ka));
	memset(kb, 0xbb, sizeof(kb));
	inet_pton(AF_INET6, "2001:db8::1", &ep.sin6_addr);

	msg_begin(b, FAMILY, 2 /* NLM_F_MULTI */, seq);
	put_device_head(b, true);
	peers = nest(b, DEV_PEERS);
	peer = nest(b, 0);
	attr(b, PEER_PUBLIC_KEY, ka, 32);
	attr(b, PEER_ENDPOINT, &ep, sizeof(ep));
	attr(b, PEER_KEEPALIVE, &ka_int, 2);
	attr(b, PEER_LAST_HANDSHAKE, hs, 16);
	attr(b, PEER_RX, &rx, 8);
	attr(b, PEER_TX, &tx, 8);
	attr(b, PEER_PROTOCOL_VERSION, &proto, 4);
	aips = nest(b, PEER_ALLOWEDIPS);
	put_aip4(b, "10.244.1.0", 24);
	put_aip4(b, "10.244.9.9", 32);
	nest_end(b, aips);
	nest_end(b, peer);
	nest_end(b, peers);
	msg_end(b);

	msg_begin(b, FAMILY, 2, seq);
	put_device_head(b, false);
	peers = nest(b, DEV_PEERS);
	peer = nest(b, 0);
	attr(b, PEER_PUBLIC_KEY, ka, 32);
	aips = nest(b, PEER_ALLOWEDIPS);
	put_aip6(b, "fd00:1::", 64);
	nest_end(b, aips);
	nest_end(b, peer);
	peer = nest(b, 0);
	attr(b, PEER_PUBLIC_KEY, kb, 32);
	nest_end(b, peer);
	nest_end(b, peers);
	msg_end(b);
}

Test(wg_kernel_msg, parses_dump_split_across_messages, .init = quiet)
{
	struct mb *b = calloc(1, sizeof(*b));
	struct wg_device *dev = calloc(1, sizeof(*dev));
	size_t first_len;
	char ip[INET6_ADDRSTRLEN];
	uint8_t k[WG_KEY_LEN];

	build_dump(b, 9);
	first_len = rd32(b->buf);
	put_done(b, 9);
	/* datagram 1: the first message; datagram 2: the second and NLMSG_DONE */
	cr_assert_eq(wg_kernel_parse_get(b->buf, first_len, 9, dev), 1);
	cr_assert_eq(wg_kernel_parse_get(b->buf + first_len, b->len - first_len, 9, dev), 0);

	cr_assert_str_eq(dev->name, "wg0");
	cr_assert_eq(dev->ifindex, 7);
	cr_assert_eq(dev->listen_port, 51820);
	cr_assert_eq(dev->fwmark, 0x51);
	memset(k, 0x11, sizeof(k));
	cr_assert_arr_eq(dev->private_key, k, WG_KEY_LEN);
	memset(k, 0x12, sizeof(k));
	cr_assert_arr_eq(dev->public_key, k, WG_KEY_LEN);
	cr_assert_eq(dev->n_peers, 2, "the split peer must be merged, got %zu", dev->n_peers);

	const struct wg_peer *a = &dev->peers[0], *pb = &dev->peers[1];
	memset(k, 0xaa, sizeof(k));
	cr_assert_arr_eq(a->public_key, k, WG_KEY_LEN);
	cr_assert_eq(a->endpoint.addr.sa_family, AF_INET6);
	cr_assert_str_eq(inet_ntop(AF_INET6, &a->endpoint.addr6.sin6_addr, ip, sizeof(ip)),
			 "2001:db8::1");
	cr_assert_eq(ntohs(a->endpoint.addr6.sin6_port), 4500);
	cr_assert_eq(a->keepalive_interval, 25);
	cr_assert_eq(a->last_handshake_sec, 1700000000);
	cr_assert_eq(a->last_handshake_nsec, 42);
	cr_assert_eq(a->rx_bytes, 1000);
	cr_assert_eq(a->tx_bytes, 2000);
	cr_assert_eq(a->protocol_version, 1);
	cr_assert_eq(a->n_allowed_ips, 3);
	cr_assert_eq(a->allowed_ips[0].ip4.s_addr, inet_addr("10.244.1.0"));
	cr_assert_eq(a->allowed_ips[0].cidr, 24);
	cr_assert_eq(a->allowed_ips[1].ip4.s_addr, inet_addr("10.244.9.9"));
	cr_assert_eq(a->allowed_ips[2].family, AF_INET6);
	cr_assert_eq(a->allowed_ips[2].cidr, 64);
	memset(k, 0xbb, sizeof(k));
	cr_assert_arr_eq(pb->public_key, k, WG_KEY_LEN);
	cr_assert_eq(pb->n_allowed_ips, 0);
	cr_assert_eq(pb->endpoint.addr.sa_family, 0);
	wg_device_free(dev);
	free(b);
}

Test(wg_kernel_msg, parses_whole_dump_in_one_datagram, .init = quiet)
{
	struct mb *b = calloc(1, sizeof(*b));
	struct wg_device *dev = calloc(1, sizeof(*dev));

	build_dump(b, 3);
	put_done(b, 3);
	cr_assert_eq(wg_kernel_parse_get(b->buf, b->len, 3, dev), 0);
	cr_assert_eq(dev->n_peers, 2);
	cr_assert_eq(dev->peers[0].n_allowed_ips, 3);
	wg_device_free(dev);
	free(b);
}

Test(wg_kernel_msg, error_reply_and_interrupted_dump, .init = quiet)
{
	/* NLMSG_ERROR carrying -ENODEV, followed by the offending request header */
	uint8_t err[36] = { 0 };
	uint32_t len = 36, seq = 5;
	uint16_t type = 2; /* NLMSG_ERROR */
	int32_t code = -ENODEV;
	struct wg_device *dev = calloc(1, sizeof(*dev));
	struct mb *b = calloc(1, sizeof(*b));

	memcpy(err, &len, 4);
	memcpy(err + 4, &type, 2);
	memcpy(err + 8, &seq, 4);
	memcpy(err + 16, &code, 4);
	cr_assert_eq(wg_kernel_parse_get(err, sizeof(err), 5, dev), -ENODEV);
	cr_assert_eq(wg_kernel_parse_ack(err, sizeof(err), 5), -ENODEV);
	code = 0;
	memcpy(err + 16, &code, 4);
	cr_assert_eq(wg_kernel_parse_ack(err, sizeof(err), 5), 0);
	cr_assert_eq(wg_kernel_parse_ack(err, sizeof(err), 6), -EPROTO, "wrong seq accepted");

	/* NLM_F_DUMP_INTR (0x10): the device changed during the dump */
	msg_begin(b, FAMILY, 2 | 0x10, 1);
	put_device_head(b, true);
	msg_end(b);
	cr_assert_eq(wg_kernel_parse_get(b->buf, b->len, 1, dev), -EINTR);
	wg_device_free(dev);
	free(b);
}

Test(wg_kernel_msg, rejects_malformed_peers, .init = quiet)
{
	struct mb *b = calloc(1, sizeof(*b));
	struct wg_device *dev = calloc(1, sizeof(*dev));
	uint8_t shortkey[16] = { 0 };
	size_t peers, peer;

	/* a peer without a public key */
	msg_begin(b, FAMILY, 2, 1);
	peers = nest(b, DEV_PEERS);
	peer = nest(b, 0);
	attr(b, PEER_RX, &(uint64_t){ 1 }, 8);
	nest_end(b, peer);
	nest_end(b, peers);
	msg_end(b);
	cr_assert_eq(wg_kernel_parse_get(b->buf, b->len, 1, dev), -EBADMSG);
	wg_device_free(dev);

	/* a 16-byte public key */
	dev = calloc(1, sizeof(*dev));
	b->len = 0;
	msg_begin(b, FAMILY, 2, 1);
	peers = nest(b, DEV_PEERS);
	peer = nest(b, 0);
	attr(b, PEER_PUBLIC_KEY, shortkey, 16);
	nest_end(b, peer);
	nest_end(b, peers);
	msg_end(b);
	cr_assert_eq(wg_kernel_parse_get(b->buf, b->len, 1, dev), -EBADMSG);
	wg_device_free(dev);

	/* an allowed IP with prefix 33 */
	dev = calloc(1, sizeof(*dev));
	b->len = 0;
	msg_begin(b, FAMILY, 2, 1);
	peers = nest(b, DEV_PEERS);
	peer = nest(b, 0);
	attr(b, PEER_PUBLIC_KEY, (uint8_t[WG_KEY_LEN]){ 1 }, 32);
	size_t aips = nest(b, PEER_ALLOWEDIPS);
	put_aip4(b, "10.0.0.0", 33);
	nest_end(b, aips);
	nest_end(b, peer);
	nest_end(b, peers);
	msg_end(b);
	cr_assert_eq(wg_kernel_parse_get(b->buf, b->len, 1, dev), -EBADMSG);
	wg_device_free(dev);
	free(b);
}

Test(wg_kernel_msg, truncated_dump_never_reads_past_the_buffer, .init = quiet)
{
	struct mb *b = calloc(1, sizeof(*b));

	build_dump(b, 1);
	put_done(b, 1);
	for (size_t cut = 0; cut < b->len; cut++) {
		struct wg_device *dev = calloc(1, sizeof(*dev));
		uint8_t *copy = malloc(cut ? cut : 1);

		/* an exact-size heap copy lets ASan catch any read past the end */
		memcpy(copy, b->buf, cut);
		(void)wg_kernel_parse_get(copy, cut, 1, dev);
		wg_device_free(dev);
		free(copy);
	}
	free(b);
}

Test(wg_kernel_msg, parses_getfamily_reply)
{
	struct mb *b = calloc(1, sizeof(*b));
	uint16_t id = 0, fam = 0x1b;

	msg_begin(b, 0x10 /* GENL_ID_CTRL */, 0, 1);
	b->buf[b->msg + 16] = 1; /* CTRL_CMD_NEWFAMILY */
	attr(b, 2 /* CTRL_ATTR_FAMILY_NAME */, "wireguard", 10);
	attr(b, 1 /* CTRL_ATTR_FAMILY_ID */, &fam, 2);
	msg_end(b);
	cr_assert_eq(wg_kernel_parse_getfamily(b->buf, b->len, &id), 0);
	cr_assert_eq(id, 0x1b);
	free(b);
}
