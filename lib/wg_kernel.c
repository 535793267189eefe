// SPDX-License-Identifier: Apache-2.0
/*
 * Kernel WireGuard over generic netlink with libmnl, and the wireguard link itself over
 * rtnetlink. Every message is built and parsed by a pure function over a byte buffer so
 * the encoding can be checked on a machine without the module; the socket functions at
 * the end only send what the builders made and feed the parsers what came back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "log.h"
#include "netlink.h"
#include "wg_kernel.h"

_Static_assert(WG_KEY_LEN == 32, "wgkey.h and linux/wireguard.h disagree on the key size");

static struct nlmsghdr *genl_put_header(void *buf, uint16_t type, uint16_t flags,
					uint32_t seq, uint8_t cmd, uint8_t version)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

static bool fits_header(size_t buflen, size_t extra)
{
	return buflen >= MNL_NLMSG_HDRLEN + MNL_ALIGN(extra) + MNL_ATTR_HDRLEN + 64;
}

/* ---- family resolution ---- */

int wg_kernel_build_getfamily(void *buf, size_t buflen, uint32_t seq)
{
	struct nlmsghdr *nlh;

	if (!fits_header(buflen, sizeof(struct genlmsghdr)))
		return -EMSGSIZE;
	memset(buf, 0, buflen); /* libmnl leaves attribute padding unwritten */
	nlh = genl_put_header(buf, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq,
			      CTRL_CMD_GETFAMILY, 1);
	if (!mnl_attr_put_strz_check(nlh, buflen, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME))
		return -EMSGSIZE;
	return (int)nlh->nlmsg_len;
}

static int family_attr_cb(const struct nlattr *attr, void *data)
{
	uint16_t *id = data;

	if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID &&
	    mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
		*id = mnl_attr_get_u16(attr);
	return MNL_CB_OK;
}

static int family_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type != GENL_ID_CTRL)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_attr_cb, data);
}

int wg_kernel_parse_getfamily(const void *buf, size_t len, uint16_t *family_id)
{
	uint16_t id = 0;
	int r;

	errno = 0;
	r = mnl_cb_run(buf, len, 0, 0, family_msg_cb, &id);
	if (r < 0)
		return errno ? -errno : -EPROTO;
	if (id == 0)
		return -ENOENT;
	*family_id = id;
	return 0;
}

/* ---- GET_DEVICE ---- */

int wg_kernel_build_get(void *buf, size_t buflen, uint16_t family_id, uint32_t seq,
			const char *ifname)
{
	struct nlmsghdr *nlh;

	if (!nl_ifname_valid(ifname))
		return -EINVAL;
	if (!fits_header(buflen, sizeof(struct genlmsghdr)))
		return -EMSGSIZE;
	memset(buf, 0, buflen); /* libmnl leaves attribute padding unwritten */
	nlh = genl_put_header(buf, family_id, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq,
			      WG_CMD_GET_DEVICE, WG_GENL_VERSION);
	if (!mnl_attr_put_strz_check(nlh, buflen, WGDEVICE_A_IFNAME, ifname))
		return -EMSGSIZE;
	return (int)nlh->nlmsg_len;
}

struct get_ctx {
	struct wg_device *dev;
	struct wg_peer cur;       /* the peer being parsed, before it is kept or merged */
	bool cur_has_key;
	int err;
};

static int allowedip_attr_cb(const struct nlattr *attr, void *data)
{
	struct wg_allowed_ip *aip = data;
	uint16_t len = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case WGALLOWEDIP_A_FAMILY:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
			aip->family = mnl_attr_get_u16(attr);
		break;
	case WGALLOWEDIP_A_IPADDR:
		if (len == sizeof(aip->ip4))
			memcpy(&aip->ip4, mnl_attr_get_payload(attr), len);
		else if (len == sizeof(aip->ip6))
			memcpy(&aip->ip6, mnl_attr_get_payload(attr), len);
		break;
	case WGALLOWEDIP_A_CIDR_MASK:
		if (mnl_attr_validate(attr, MNL_TYPE_U8) == 0)
			aip->cidr = mnl_attr_get_u8(attr);
		break;
	}
	return MNL_CB_OK;
}

static int allowedips_cb(const struct nlattr *attr, void *data)
{
	struct get_ctx *ctx = data;
	struct wg_allowed_ip *aip = wg_peer_add_allowed_ip(&ctx->cur);

	if (!aip) {
		ctx->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (mnl_attr_parse_nested(attr, allowedip_attr_cb, aip) < 0 ||
	    !((aip->family == AF_INET && aip->cidr <= 32) ||
	      (aip->family == AF_INET6 && aip->cidr <= 128))) {
		ctx->err = -EBADMSG;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int peer_attr_cb(const struct nlattr *attr, void *data)
{
	struct get_ctx *ctx = data;
	struct wg_peer *p = &ctx->cur;
	uint16_t len = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case WGPEER_A_PUBLIC_KEY:
		if (len != WG_KEY_LEN) {
			ctx->err = -EBADMSG;
			return MNL_CB_ERROR;
		}
		memcpy(p->public_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
		ctx->cur_has_key = true;
		break;
	case WGPEER_A_ENDPOINT: {
		const struct sockaddr *sa = mnl_attr_get_payload(attr);

		if (len >= sizeof(sa_family_t) && sa->sa_family == AF_INET &&
		    len == sizeof(p->endpoint.addr4))
			memcpy(&p->endpoint.addr4, sa, len);
		else if (len >= sizeof(sa_family_t) && sa->sa_family == AF_INET6 &&
			 len == sizeof(p->endpoint.addr6))
			memcpy(&p->endpoint.addr6, sa, len);
		break;
	}
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
			p->keepalive_interval = mnl_attr_get_u16(attr);
		break;
	case WGPEER_A_LAST_HANDSHAKE_TIME: {
		/* struct __kernel_timespec: two signed 64-bit fields */
		int64_t ts[2];

		if (len == sizeof(ts)) {
			memcpy(ts, mnl_attr_get_payload(attr), sizeof(ts));
			p->last_handshake_sec = ts[0];
			p->last_handshake_nsec = ts[1];
		}
		break;
	}
	case WGPEER_A_RX_BYTES:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) == 0)
			p->rx_bytes = mnl_attr_get_u64(attr);
		break;
	case WGPEER_A_TX_BYTES:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) == 0)
			p->tx_bytes = mnl_attr_get_u64(attr);
		break;
	case WGPEER_A_PROTOCOL_VERSION:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			p->protocol_version = mnl_attr_get_u32(attr);
		break;
	case WGPEER_A_ALLOWEDIPS:
		return mnl_attr_parse_nested(attr, allowedips_cb, ctx);
	}
	return MNL_CB_OK;
}

static void peer_clear(struct wg_peer *p)
{
	free(p->allowed_ips);
	memset(p, 0, sizeof(*p));
}

/*
 * The kernel ends a dump message in the middle of a peer's allowed IPs and carries on in
 * the next message under the same public key: merge such a peer into the last one kept.
 */
static int peer_keep(struct wg_device *dev, struct wg_peer *p)
{
	struct wg_peer *last = dev->n_peers ? &dev->peers[dev->n_peers - 1] : NULL;
	struct wg_peer *slot;

	if (last && memcmp(last->public_key, p->public_key, WG_KEY_LEN) == 0) {
		for (size_t i = 0; i < p->n_allowed_ips; i++) {
			struct wg_allowed_ip *a = wg_peer_add_allowed_ip(last);

			if (!a)
				return -ENOMEM;
			*a = p->allowed_ips[i];
		}
		peer_clear(p);
		return 0;
	}
	slot = wg_device_add_peer(dev);
	if (!slot)
		return -ENOMEM;
	*slot = *p;
	memset(p, 0, sizeof(*p));
	return 0;
}

static int peers_cb(const struct nlattr *attr, void *data)
{
	struct get_ctx *ctx = data;
	int r;

	memset(&ctx->cur, 0, sizeof(ctx->cur));
	ctx->cur_has_key = false;
	if (mnl_attr_parse_nested(attr, peer_attr_cb, ctx) < 0 || !ctx->cur_has_key) {
		if (!ctx->err)
			ctx->err = -EBADMSG;
		peer_clear(&ctx->cur);
		return MNL_CB_ERROR;
	}
	r = peer_keep(ctx->dev, &ctx->cur);
	if (r < 0) {
		ctx->err = r;
		peer_clear(&ctx->cur);
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int device_attr_cb(const struct nlattr *attr, void *data)
{
	struct get_ctx *ctx = data;
	struct wg_device *dev = ctx->dev;
	uint16_t len = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case WGDEVICE_A_IFINDEX:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			dev->ifindex = (int)mnl_attr_get_u32(attr);
		break;
	case WGDEVICE_A_IFNAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0 && len <= IF_NAMESIZE)
			memcpy(dev->name, mnl_attr_get_str(attr), len);
		break;
	case WGDEVICE_A_PRIVATE_KEY:
		if (len == WG_KEY_LEN)
			memcpy(dev->private_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
		break;
	case WGDEVICE_A_PUBLIC_KEY:
		if (len == WG_KEY_LEN)
			memcpy(dev->public_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
		break;
	case WGDEVICE_A_LISTEN_PORT:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
			dev->listen_port = mnl_attr_get_u16(attr);
		break;
	case WGDEVICE_A_FWMARK:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			dev->fwmark = mnl_attr_get_u32(attr);
		break;
	case WGDEVICE_A_PEERS:
		return mnl_attr_parse_nested(attr, peers_cb, ctx);
	}
	return MNL_CB_OK;
}

static int get_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct get_ctx *ctx = data;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr)) {
		ctx->err = -EBADMSG;
		return MNL_CB_ERROR;
	}
	if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), device_attr_cb, ctx) < 0) {
		if (!ctx->err)
			ctx->err = -EBADMSG;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

int wg_kernel_parse_get(const void *buf, size_t len, uint32_t seq, struct wg_device *dev)
{
	struct get_ctx ctx = { .dev = dev };
	int r;

	errno = 0;
	r = mnl_cb_run(buf, len, seq, 0, get_msg_cb, &ctx);
	if (r < 0)
		return ctx.err ? ctx.err : errno ? -errno : -EPROTO;
	return r == MNL_CB_STOP ? 0 : 1;
}

/* ---- SET_DEVICE ---- */

static bool put_allowed_ip(struct nlmsghdr *nlh, size_t buflen, const struct wg_allowed_ip *a)
{
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, buflen, 0);

	if (!nest)
		return false;
	if (!mnl_attr_put_u16_check(nlh, buflen, WGALLOWEDIP_A_FAMILY, (uint16_t)a->family) ||
	    !mnl_attr_put_check(nlh, buflen, WGALLOWEDIP_A_IPADDR,
				a->family == AF_INET ? sizeof(a->ip4) : sizeof(a->ip6),
				a->family == AF_INET ? (const void *)&a->ip4 : (const void *)&a->ip6) ||
	    !mnl_attr_put_u8_check(nlh, buflen, WGALLOWEDIP_A_CIDR_MASK, a->cidr)) {
		mnl_attr_nest_cancel(nlh, nest);
		return false;
	}
	mnl_attr_nest_end(nlh, nest);
	return true;
}

/* The peer's own attributes, sent once, in the message where the peer first appears. */
static bool put_peer_head(struct nlmsghdr *nlh, size_t buflen, const struct wg_peer *p)
{
	uint32_t flags = 0;

	if (p->flags & WG_PEER_REMOVE)
		flags |= WGPEER_F_REMOVE_ME;
	if (p->flags & WG_PEER_REPLACE_ALLOWEDIPS)
		flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
	if (p->flags & WG_PEER_UPDATE_ONLY)
		flags |= WGPEER_F_UPDATE_ONLY;
	if (flags && !mnl_attr_put_u32_check(nlh, buflen, WGPEER_A_FLAGS, flags))
		return false;
	if (p->flags & WG_PEER_HAS_ENDPOINT) {
		size_t elen = p->endpoint.addr.sa_family == AF_INET ? sizeof(p->endpoint.addr4) :
			      sizeof(p->endpoint.addr6);

		if (!mnl_attr_put_check(nlh, buflen, WGPEER_A_ENDPOINT, elen, &p->endpoint))
			return false;
	}
	if ((p->flags & WG_PEER_HAS_KEEPALIVE) &&
	    !mnl_attr_put_u16_check(nlh, buflen, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
				    p->keepalive_interval))
		return false;
	return true;
}

/* A peer fragment that carries neither its head nor an allowed IP says nothing: drop it. */
static void peer_end_partial(struct nlmsghdr *nlh, struct nlattr *peer, bool head_now)
{
	if (head_now)
		mnl_attr_nest_end(nlh, peer);
	else
		mnl_attr_nest_cancel(nlh, peer);
}

static int validate_device(const struct wg_device *dev)
{
	if (!dev->name[0] || strnlen(dev->name, IF_NAMESIZE) >= IF_NAMESIZE)
		return -EINVAL;
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		if ((p->flags & WG_PEER_HAS_ENDPOINT) && p->endpoint.addr.sa_family != AF_INET &&
		    p->endpoint.addr.sa_family != AF_INET6) {
			log_err("wg netlink: peer %zu of '%s' has an endpoint of family %d", i,
				dev->name, p->endpoint.addr.sa_family);
			return -EINVAL;
		}
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct wg_allowed_ip *a = &p->allowed_ips[j];

			if ((a->family != AF_INET && a->family != AF_INET6) ||
			    a->cidr > (a->family == AF_INET ? 32 : 128)) {
				log_err("wg netlink: peer %zu of '%s': allowed IP %zu has family "
					"%d, prefix %u", i, dev->name, j, a->family, a->cidr);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int wg_kernel_build_set(void *buf, size_t buflen, uint16_t family_id, uint32_t seq,
			const struct wg_device *dev, struct wg_kernel_set_cursor *cur)
{
	struct nlattr *peers = NULL;
	struct nlmsghdr *nlh;
	const struct wg_kernel_set_cursor start = *cur;
	int ret;

	if (cur->done)
		return -EINVAL;
	/* Once, on the first message: per message it would cost O(peers) each time. */
	if (!cur->device_sent) {
		ret = validate_device(dev);
		if (ret < 0)
			return ret;
	}
	if (!fits_header(buflen, sizeof(struct genlmsghdr)))
		return -EMSGSIZE;
	memset(buf, 0, buflen); /* libmnl leaves attribute padding unwritten */
	nlh = genl_put_header(buf, family_id, NLM_F_REQUEST | NLM_F_ACK, seq,
			      WG_CMD_SET_DEVICE, WG_GENL_VERSION);
	if (!mnl_attr_put_strz_check(nlh, buflen, WGDEVICE_A_IFNAME, dev->name))
		return -EMSGSIZE;
	if (!cur->device_sent) {
		/* Replacing peers must happen once, before the first peer, never again. */
		if (((dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) &&
		     !mnl_attr_put_check(nlh, buflen, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN,
					 dev->private_key)) ||
		    ((dev->flags & WG_DEVICE_HAS_LISTEN_PORT) &&
		     !mnl_attr_put_u16_check(nlh, buflen, WGDEVICE_A_LISTEN_PORT,
					     dev->listen_port)) ||
		    ((dev->flags & WG_DEVICE_REPLACE_PEERS) &&
		     !mnl_attr_put_u32_check(nlh, buflen, WGDEVICE_A_FLAGS,
					     WGDEVICE_F_REPLACE_PEERS)))
			return -EMSGSIZE;
		cur->device_sent = true;
	}
	if (cur->peer < dev->n_peers) {
		peers = mnl_attr_nest_start_check(nlh, buflen, WGDEVICE_A_PEERS);
		if (!peers)
			goto full;
	}
	while (cur->peer < dev->n_peers) {
		const struct wg_peer *p = &dev->peers[cur->peer];
		struct nlattr *peer, *aips;
		bool head_now = !cur->peer_started;
		size_t aip_before = cur->aip;

		peer = mnl_attr_nest_start_check(nlh, buflen, 0);
		if (!peer)
			goto full;
		if (!mnl_attr_put_check(nlh, buflen, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN,
					p->public_key) ||
		    (head_now && !put_peer_head(nlh, buflen, p))) {
			mnl_attr_nest_cancel(nlh, peer);
			goto full;
		}
		cur->peer_started = true;
		if (!(p->flags & WG_PEER_REMOVE) && cur->aip < p->n_allowed_ips) {
			aips = mnl_attr_nest_start_check(nlh, buflen, WGPEER_A_ALLOWEDIPS);
			if (!aips) {
				peer_end_partial(nlh, peer, head_now);
				goto full;
			}
			while (cur->aip < p->n_allowed_ips) {
				if (!put_allowed_ip(nlh, buflen, &p->allowed_ips[cur->aip])) {
					if (cur->aip == aip_before) {
						mnl_attr_nest_cancel(nlh, aips);
						peer_end_partial(nlh, peer, head_now);
					} else {
						mnl_attr_nest_end(nlh, aips);
						mnl_attr_nest_end(nlh, peer);
					}
					goto full;
				}
				cur->aip++;
			}
			mnl_attr_nest_end(nlh, aips);
		}
		mnl_attr_nest_end(nlh, peer);
		cur->peer++;
		cur->aip = 0;
		cur->peer_started = false;
	}
	if (peers)
		mnl_attr_nest_end(nlh, peers);
	cur->done = true;
	return (int)nlh->nlmsg_len;
full:
	if (cur->peer == start.peer && cur->aip == start.aip &&
	    cur->peer_started == start.peer_started && cur->device_sent == start.device_sent) {
		/* Not even one step fits: a bigger buffer is the only way forward. */
		return -EMSGSIZE;
	}
	if (peers)
		mnl_attr_nest_end(nlh, peers);
	return (int)nlh->nlmsg_len;
}

/* ---- links (rtnetlink) ---- */

static struct nlmsghdr *rtnl_put_header(void *buf, uint16_t type, uint16_t flags,
					uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	return nlh;
}

int wg_kernel_build_newlink(void *buf, size_t buflen, uint32_t seq, const char *ifname)
{
	struct nlmsghdr *nlh;
	struct nlattr *linkinfo;

	if (!nl_ifname_valid(ifname))
		return -EINVAL;
	if (!fits_header(buflen, sizeof(struct ifinfomsg)))
		return -EMSGSIZE;
	memset(buf, 0, buflen);
	nlh = rtnl_put_header(buf, RTM_NEWLINK,
			      NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq);
	if (!mnl_attr_put_strz_check(nlh, buflen, IFLA_IFNAME, ifname))
		return -EMSGSIZE;
	linkinfo = mnl_attr_nest_start_check(nlh, buflen, IFLA_LINKINFO);
	if (!linkinfo || !mnl_attr_put_strz_check(nlh, buflen, IFLA_INFO_KIND, WG_GENL_NAME))
		return -EMSGSIZE;
	mnl_attr_nest_end(nlh, linkinfo);
	return (int)nlh->nlmsg_len;
}

int wg_kernel_build_dellink(void *buf, size_t buflen, uint32_t seq, const char *ifname)
{
	struct nlmsghdr *nlh;

	if (!nl_ifname_valid(ifname))
		return -EINVAL;
	if (!fits_header(buflen, sizeof(struct ifinfomsg)))
		return -EMSGSIZE;
	memset(buf, 0, buflen);
	nlh = rtnl_put_header(buf, RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
	if (!mnl_attr_put_strz_check(nlh, buflen, IFLA_IFNAME, ifname))
		return -EMSGSIZE;
	return (int)nlh->nlmsg_len;
}

int wg_kernel_parse_ack(const void *buf, size_t len, uint32_t seq)
{
	int r;

	errno = 0;
	r = mnl_cb_run(buf, len, seq, 0, NULL, NULL);
	if (r < 0)
		return errno ? -errno : -EPROTO;
	return r == MNL_CB_STOP ? 0 : -EPROTO;
}

/* ---- sockets ---- */

struct nl_conn {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
};

/* CLOEXEC: the agent forks wireguard-go, which must not inherit our netlink sockets. */
static int conn_open(struct nl_conn *c, int bus)
{
	c->nl = mnl_socket_open2(bus, SOCK_CLOEXEC);
	if (!c->nl)
		return -errno;
	if (mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int ret = -errno;

		mnl_socket_close(c->nl);
		c->nl = NULL;
		return ret;
	}
	c->portid = mnl_socket_get_portid(c->nl);
	c->seq = (uint32_t)time(NULL);
	return 0;
}

static void conn_close(struct nl_conn *c)
{
	if (c->nl)
		mnl_socket_close(c->nl);
	c->nl = NULL;
}

/* Sends one request and returns its acknowledgement (0 or the kernel's -errno). */
static int conn_request(struct nl_conn *c, const void *msg, size_t len, uint32_t seq)
{
	char *buf = malloc(WG_KERNEL_RECV_MAX);
	int ret;

	if (!buf)
		return -ENOMEM;
	if (mnl_socket_sendto(c->nl, msg, len) < 0) {
		ret = -errno;
		goto cleanup;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(c->nl, buf, WG_KERNEL_RECV_MAX);

		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		errno = 0;
		n = mnl_cb_run(buf, (size_t)n, seq, c->portid, NULL, NULL);
		if (n < 0) {
			ret = errno ? -errno : -EPROTO;
			goto cleanup;
		}
		if (n == MNL_CB_STOP)
			break;
	}
	ret = 0;
cleanup:
	free(buf);
	return ret;
}

int wg_kernel_family_id(uint16_t *out)
{
	struct nl_conn c = { 0 };
	char *buf = NULL;
	uint16_t found = 0;
	int len, ret;
	ssize_t n;

	ret = conn_open(&c, NETLINK_GENERIC);
	if (ret < 0)
		return ret;
	buf = malloc(WG_KERNEL_RECV_MAX);
	if (!buf) {
		ret = -ENOMEM;
		goto cleanup;
	}
	len = wg_kernel_build_getfamily(buf, WG_KERNEL_MSG_MAX, ++c.seq);
	if (len < 0 || mnl_socket_sendto(c.nl, buf, (size_t)len) < 0) {
		ret = len < 0 ? len : -errno;
		goto cleanup;
	}
	/* The reply, then the acknowledgement: read until the ack (or an error) ends it. */
	for (;;) {
		uint16_t id = 0;

		n = mnl_socket_recvfrom(c.nl, buf, WG_KERNEL_RECV_MAX);
		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		ret = wg_kernel_parse_getfamily(buf, (size_t)n, &id);
		if (ret == 0)
			found = id;
		else if (ret != -ENOENT)
			goto cleanup;
		errno = 0;
		if (mnl_cb_run(buf, (size_t)n, c.seq, c.portid, NULL, NULL) <= MNL_CB_STOP)
			break;
	}
	ret = found ? 0 : -ENOENT;
	if (found)
		*out = found;
cleanup:
	free(buf);
	conn_close(&c);
	return ret;
}

static int get_once(uint16_t family_id, const char *ifname, struct wg_device **out)
{
	struct nl_conn c = { 0 };
	struct wg_device *dev = NULL;
	char *buf = NULL;
	int len, ret;

	ret = conn_open(&c, NETLINK_GENERIC);
	if (ret < 0)
		goto cleanup;
	buf = malloc(WG_KERNEL_RECV_MAX);
	dev = calloc(1, sizeof(*dev));
	if (!buf || !dev) {
		ret = -ENOMEM;
		goto cleanup;
	}
	len = wg_kernel_build_get(buf, WG_KERNEL_MSG_MAX, family_id, ++c.seq, ifname);
	if (len < 0) {
		ret = len;
		goto cleanup;
	}
	if (mnl_socket_sendto(c.nl, buf, (size_t)len) < 0) {
		ret = -errno;
		goto cleanup;
	}
	do {
		ssize_t n = mnl_socket_recvfrom(c.nl, buf, WG_KERNEL_RECV_MAX);

		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		ret = wg_kernel_parse_get(buf, (size_t)n, c.seq, dev);
	} while (ret == 1);
	if (ret < 0)
		goto cleanup;
	if (!dev->name[0])
		snprintf(dev->name, sizeof(dev->name), "%s", ifname);
	if (!dev->ifindex)
		dev->ifindex = (int)if_nametoindex(ifname);
	*out = dev;
	dev = NULL;
cleanup:
	wg_device_free(dev); /* cleanses a private key already parsed */
	free(buf);
	conn_close(&c);
	return ret;
}

int wg_kernel_get(uint16_t family_id, const char *ifname, struct wg_device **out)
{
	int ret, attempts = 0;

	/* The device changed during the dump: the kernel says so, and a retry is cheap. */
	do
		ret = get_once(family_id, ifname, out);
	while (ret == -EINTR && ++attempts < 5);
	if (ret < 0)
		log_err("wg netlink: cannot read device '%s': %s", ifname, strerror(-ret));
	return ret;
}

int wg_kernel_set(uint16_t family_id, const struct wg_device *dev)
{
	struct wg_kernel_set_cursor cur = { 0 };
	struct nl_conn c = { 0 };
	char *buf = NULL;
	int ret;

	ret = conn_open(&c, NETLINK_GENERIC);
	if (ret < 0)
		goto cleanup;
	buf = malloc(WG_KERNEL_MSG_MAX);
	if (!buf) {
		ret = -ENOMEM;
		goto cleanup;
	}
	while (!cur.done) {
		int len = wg_kernel_build_set(buf, WG_KERNEL_MSG_MAX, family_id, ++c.seq, dev, &cur);

		if (len < 0) {
			ret = len;
			goto cleanup;
		}
		ret = conn_request(&c, buf, (size_t)len, c.seq);
		if (ret < 0)
			goto cleanup;
	}
	ret = 0;
cleanup:
	if (buf)
		OPENSSL_cleanse(buf, WG_KERNEL_MSG_MAX);
	free(buf);
	conn_close(&c);
	if (ret < 0)
		log_err("wg netlink: cannot configure device '%s': %s", dev->name, strerror(-ret));
	return ret;
}

static int link_request(const char *ifname, bool create)
{
	struct nl_conn c = { 0 };
	char buf[512];
	int len, ret;

	ret = conn_open(&c, NETLINK_ROUTE);
	if (ret < 0)
		return ret;
	len = create ? wg_kernel_build_newlink(buf, sizeof(buf), ++c.seq, ifname) :
		       wg_kernel_build_dellink(buf, sizeof(buf), ++c.seq, ifname);
	ret = len < 0 ? len : conn_request(&c, buf, (size_t)len, c.seq);
	conn_close(&c);
	return ret;
}

int wg_kernel_link_create(const char *ifname)
{
	int ret = link_request(ifname, true);

	if (ret < 0 && ret != -EEXIST)
		log_err("wg netlink: cannot create wireguard link '%s': %s", ifname,
			strerror(-ret));
	return ret;
}

int wg_kernel_link_delete(const char *ifname)
{
	int ret = link_request(ifname, false);

	if (ret < 0 && ret != -ENODEV)
		log_err("wg netlink: cannot delete link '%s': %s", ifname, strerror(-ret));
	return ret;
}
