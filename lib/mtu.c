// SPDX-License-Identifier: Apache-2.0
/*
 * The pod MTU follows the underlay actually used to reach the peers: ask the kernel
 * which route each endpoint takes (RTM_GETROUTE, as `ip route get` does) instead of
 * guessing from interface names, because private and public links differ (9000/1500).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mtu.h"

unsigned int mtu_wireguard(unsigned int underlay_mtu, bool any_ipv6)
{
	unsigned int overhead = any_ipv6 ? MTU_WG_OVERHEAD_V6 : MTU_WG_OVERHEAD_V4;

	/* IPv4 needs 68 bytes at least; a smaller result means a nonsense underlay */
	if (underlay_mtu < overhead + 576)
		return MTU_FALLBACK;
	return underlay_mtu - overhead;
}

struct route_reply {
	int oif;
	unsigned int mtu;
	int error;
};

static int metrics_cb(const struct nlattr *attr, void *data)
{
	struct route_reply *r = data;

	if (mnl_attr_get_type(attr) == RTAX_MTU && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		r->mtu = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int route_attr_cb(const struct nlattr *attr, void *data)
{
	struct route_reply *r = data;

	switch (mnl_attr_get_type(attr)) {
	case RTA_OIF:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
			r->oif = (int)mnl_attr_get_u32(attr);
		break;
	case RTA_METRICS:
		mnl_attr_parse_nested(attr, metrics_cb, r);
		break;
	}
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return MNL_CB_OK;
	return mnl_attr_parse(nlh, sizeof(struct rtmsg), route_attr_cb, data);
}

static int route_get(struct mnl_socket *nl, uint32_t seq, const union wg_endpoint *ep,
		     struct route_reply *r)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	ssize_t n;
	int ret;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (unsigned char)ep->addr.sa_family;
	if (ep->addr.sa_family == AF_INET) {
		rtm->rtm_dst_len = 32;
		mnl_attr_put(nlh, RTA_DST, sizeof(struct in_addr), &ep->addr4.sin_addr);
	} else if (ep->addr.sa_family == AF_INET6) {
		rtm->rtm_dst_len = 128;
		mnl_attr_put(nlh, RTA_DST, sizeof(struct in6_addr), &ep->addr6.sin6_addr);
	} else {
		return -EAFNOSUPPORT;
	}
	memset(r, 0, sizeof(*r));
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	ret = mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(nl), route_cb, r);
	if (ret < 0)
		return errno ? -errno : -EIO;
	return r->oif > 0 ? 0 : -ENETUNREACH;
}

static int link_mtu(int ifindex, unsigned int *mtu)
{
	struct ifreq ifr;
	int fd, ret = 0;

	memset(&ifr, 0, sizeof(ifr));
	if (!if_indextoname((unsigned int)ifindex, ifr.ifr_name))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0)
		ret = -errno;
	else
		*mtu = (unsigned int)ifr.ifr_mtu;
	close(fd);
	return ret;
}

static struct mnl_socket *route_socket(void)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;

		mnl_socket_close(nl);
		errno = e;
		return NULL;
	}
	return nl;
}

int mtu_route_lookup(const union wg_endpoint *ep, unsigned int *mtu, int *ifindex)
{
	struct mnl_socket *nl = route_socket();
	struct route_reply r;
	int ret;

	if (!nl)
		return -errno;
	ret = route_get(nl, (uint32_t)time(NULL), ep, &r);
	if (ret == 0 && !r.mtu)
		ret = link_mtu(r.oif, &r.mtu);
	if (ret == 0) {
		*mtu = r.mtu;
		if (ifindex)
			*ifindex = r.oif;
	}
	mnl_socket_close(nl);
	return ret;
}

void mtu_result_clear(struct mtu_result *r)
{
	if (!r)
		return;
	free(r->ifindexes);
	memset(r, 0, sizeof(*r));
}

/* Interfaces per node are few: a linear cache is enough. */
struct link_cache {
	int ifindex;
	unsigned int mtu;
};

int mtu_for_endpoints(const union wg_endpoint *eps, size_t n, struct mtu_result *out)
{
	struct mtu_result res = { 0 };
	struct link_cache *links = NULL;
	struct mnl_socket *nl = NULL;
	uint32_t seq = (uint32_t)time(NULL);
	int ret = 0;

	if (n > 0) {
		nl = route_socket();
		if (!nl)
			return -errno;
	}
	for (size_t i = 0; i < n; i++) {
		struct route_reply r;
		unsigned int mtu = 0;
		size_t k;

		if (!eps[i].addr.sa_family)
			continue;
		ret = route_get(nl, ++seq, &eps[i], &r);
		if (ret < 0) {
			/*
			 * Unreachable, but also a prohibit or blackhole route (EACCES, EINVAL) or
			 * an IPv6 endpoint where IPv6 is off (EAFNOSUPPORT): no path to measure.
			 * One such endpoint must not stop the node's reconcile.
			 */
			char buf[INET6_ADDRSTRLEN] = "?";

			inet_ntop(eps[i].addr.sa_family,
				  eps[i].addr.sa_family == AF_INET ? (const void *)&eps[i].addr4.sin_addr
								   : (const void *)&eps[i].addr6.sin6_addr,
				  buf, sizeof(buf));
			log_debug("mtu: no route to endpoint %s: %s", buf, strerror(-ret));
			if (ret != -ENETUNREACH && ret != -EHOSTUNREACH && !res.lookup_error) {
				res.lookup_error = ret;
				snprintf(res.lookup_error_endpoint, sizeof(res.lookup_error_endpoint),
					 "%s", buf);
			}
			res.n_unreachable++;
			ret = 0;
			continue;
		}
		if (eps[i].addr.sa_family == AF_INET6)
			res.any_ipv6 = true;
		for (k = 0; k < res.n_ifindexes; k++)
			if (links[k].ifindex == r.oif)
				break;
		if (k == res.n_ifindexes) {
			struct link_cache *nlinks = realloc(links, (k + 1) * sizeof(*links));

			if (!nlinks) {
				ret = -ENOMEM;
				goto cleanup;
			}
			links = nlinks;
			links[k].ifindex = r.oif;
			ret = link_mtu(r.oif, &links[k].mtu);
			if (ret < 0)
				goto cleanup;
			res.n_ifindexes++;
		}
		mtu = r.mtu && r.mtu < links[k].mtu ? r.mtu : links[k].mtu;
		if (!res.underlay_mtu || mtu < res.underlay_mtu)
			res.underlay_mtu = mtu;
	}
	res.wg_mtu = res.underlay_mtu ? mtu_wireguard(res.underlay_mtu, res.any_ipv6) : MTU_FALLBACK;
	if (res.n_ifindexes) {
		res.ifindexes = calloc(res.n_ifindexes, sizeof(int));
		if (!res.ifindexes) {
			ret = -ENOMEM;
			goto cleanup;
		}
		for (size_t k = 0; k < res.n_ifindexes; k++)
			res.ifindexes[k] = links[k].ifindex;
	}
	*out = res;
cleanup:
	free(links);
	if (nl)
		mnl_socket_close(nl);
	return ret;
}
