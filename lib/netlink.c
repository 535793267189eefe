// SPDX-License-Identifier: Apache-2.0
/*
 * rtnetlink through libnl-route-3. A netlink socket belongs to the network namespace
 * that was current when it was opened, so the one cached socket is reopened whenever
 * the calling thread has moved to another namespace (the plugin goes host -> pod ->
 * host during one ADD).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "log.h"
#include "netlink.h"

static struct nl_sock *cached_sock;
static dev_t cached_ns_dev;
static ino_t cached_ns_ino;

static int nlerr_to_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_SUCCESS: return 0;
	case NLE_INTR: return -EINTR;
	case NLE_BAD_SOCK: return -EBADF;
	case NLE_AGAIN: return -EAGAIN;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_EXIST: return -EEXIST;
	case NLE_INVAL: return -EINVAL;
	case NLE_RANGE: return -ERANGE;
	case NLE_MSGSIZE: return -EMSGSIZE;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_NOATTR: return -ENODATA;
	case NLE_MISSING_ATTR: return -EINVAL;
	case NLE_AF_MISMATCH: return -EAFNOSUPPORT;
	case NLE_SEQ_MISMATCH: return -EPROTO;
	case NLE_MSG_OVERFLOW: return -EOVERFLOW;
	case NLE_MSG_TRUNC: return -EMSGSIZE;
	case NLE_NOADDR: return -EADDRNOTAVAIL;
	case NLE_SRCRT_NOSUPPORT: return -EOPNOTSUPP;
	case NLE_MSG_TOOSHORT: return -EBADMSG;
	case NLE_MSGTYPE_NOSUPPORT: return -EOPNOTSUPP;
	case NLE_OBJ_MISMATCH: return -EINVAL;
	case NLE_NOCACHE: return -ENOENT;
	case NLE_BUSY: return -EBUSY;
	case NLE_PROTO_MISMATCH: return -EPROTONOSUPPORT;
	case NLE_NOACCESS: return -EACCES;
	case NLE_PERM: return -EPERM;
	case NLE_PKTLOC_FILE: return -ENOENT;
	case NLE_PARSE_ERR: return -EBADMSG;
	case NLE_NODEV: return -ENODEV;
	case NLE_IMMUTABLE: return -EPERM;
	case NLE_DUMP_INTR: return -EINTR;
	case NLE_ATTRSIZE: return -EMSGSIZE;
	default: return -EIO;
	}
}

static int current_netns(dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (stat("/proc/thread-self/ns/net", &st) < 0)
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static int sock_get(struct nl_sock **out)
{
	struct nl_sock *sk;
	dev_t dev = 0;
	ino_t ino = 0;
	int r;

	r = current_netns(&dev, &ino);
	if (r < 0)
		return r;
	if (cached_sock && dev == cached_ns_dev && ino == cached_ns_ino) {
		*out = cached_sock;
		return 0;
	}
	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0) {
		r = nlerr_to_errno(r);
		log_err("cannot open an rtnetlink socket: %s", strerror(-r));
		nl_socket_free(sk);
		return r;
	}
	nl_socket_free(cached_sock);
	cached_sock = sk;
	cached_ns_dev = dev;
	cached_ns_ino = ino;
	*out = sk;
	return 0;
}

static void link_fill(struct rtnl_link *link, struct nl_link_info *out)
{
	struct nl_addr *ll = rtnl_link_get_addr(link);
	const char *name = rtnl_link_get_name(link);
	const char *kind = rtnl_link_get_type(link);

	memset(out, 0, sizeof(*out));
	if (name)
		snprintf(out->name, sizeof(out->name), "%s", name);
	out->ifindex = rtnl_link_get_ifindex(link);
	out->mtu = rtnl_link_get_mtu(link);
	out->up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
	if (ll && nl_addr_get_len(ll) == 6)
		memcpy(out->mac, nl_addr_get_binary_addr(ll), 6);
	if (kind)
		snprintf(out->kind, sizeof(out->kind), "%s", kind);
}

static int link_get_kernel(int ifindex, const char *name, struct rtnl_link **out)
{
	struct nl_sock *sk;
	int r;

	r = sock_get(&sk);
	if (r < 0)
		return r;
	r = rtnl_link_get_kernel(sk, ifindex, name, out);
	if (r < 0) {
		r = nlerr_to_errno(r);
		return r == -ENOENT ? -ENODEV : r;
	}
	return 0;
}

bool nl_ifname_valid(const char *name)
{
	if (!name || !*name || strnlen(name, IF_NAMESIZE) >= IF_NAMESIZE ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		/* the kernel's isspace() also counts 0xa0 (Latin-1 no-break space) */
		if (*p == '/' || *p == ':' || *p == ' ' || (*p >= '\t' && *p <= '\r') || *p == 0xa0)
			return false;
	}
	return true;
}

int nl_link_get(const char *name, struct nl_link_info *out)
{
	struct rtnl_link *link = NULL;
	int r;

	if (!nl_ifname_valid(name))
		return -EINVAL;
	r = link_get_kernel(0, name, &link);
	if (r < 0)
		return r;
	link_fill(link, out);
	rtnl_link_put(link);
	return 0;
}

int nl_link_get_by_index(int ifindex, struct nl_link_info *out)
{
	struct rtnl_link *link = NULL;
	int r;

	if (ifindex <= 0)
		return -EINVAL;
	r = link_get_kernel(ifindex, NULL, &link);
	if (r < 0)
		return r;
	link_fill(link, out);
	rtnl_link_put(link);
	return 0;
}

/* Changes one link identified by index; change() fills the request. */
static int link_change(int ifindex, void (*change)(struct rtnl_link *, unsigned long),
		       unsigned long arg)
{
	struct rtnl_link *orig = NULL, *req = NULL;
	struct nl_sock *sk;
	int r;

	r = sock_get(&sk);
	if (r < 0)
		return r;
	orig = rtnl_link_alloc();
	req = rtnl_link_alloc();
	if (!orig || !req) {
		r = -ENOMEM;
		goto cleanup;
	}
	rtnl_link_set_ifindex(orig, ifindex);
	change(req, arg);
	r = nlerr_to_errno(rtnl_link_change(sk, orig, req, 0));
cleanup:
	rtnl_link_put(orig);
	rtnl_link_put(req);
	return r;
}

static void change_up(struct rtnl_link *req, unsigned long arg)
{
	(void)arg;
	rtnl_link_set_flags(req, IFF_UP);
}

static void change_mtu(struct rtnl_link *req, unsigned long mtu)
{
	rtnl_link_set_mtu(req, (unsigned int)mtu);
}

static void change_alias(struct rtnl_link *req, unsigned long alias)
{
	rtnl_link_set_ifalias(req, (const char *)alias);
}

int nl_link_set_up(int ifindex)
{
	int r = link_change(ifindex, change_up, 0);

	if (r < 0)
		log_err("link %d: cannot set up: %s", ifindex, strerror(-r));
	return r;
}

int nl_link_set_mtu(int ifindex, unsigned int mtu)
{
	int r = link_change(ifindex, change_mtu, mtu);

	if (r < 0)
		log_err("link %d: cannot set mtu %u: %s", ifindex, mtu, strerror(-r));
	return r;
}

int nl_link_set_alias(int ifindex, const char *alias)
{
	int r = link_change(ifindex, change_alias, (unsigned long)alias);

	if (r < 0)
		log_err("link %d: cannot set alias '%s': %s", ifindex, alias, strerror(-r));
	return r;
}

int nl_link_get_alias(int ifindex, char *buf, size_t len)
{
	struct rtnl_link *link = NULL;
	const char *alias;
	int r;

	r = link_get_kernel(ifindex, NULL, &link);
	if (r < 0)
		return r;
	alias = rtnl_link_get_ifalias(link);
	if (!alias)
		r = -ENODATA;
	else if ((size_t)snprintf(buf, len, "%s", alias) >= len)
		r = -ENAMETOOLONG;
	rtnl_link_put(link);
	return r;
}

int nl_link_delete(int ifindex)
{
	struct rtnl_link *link;
	struct nl_sock *sk;
	int r;

	r = sock_get(&sk);
	if (r < 0)
		return r;
	link = rtnl_link_alloc();
	if (!link)
		return -ENOMEM;
	rtnl_link_set_ifindex(link, ifindex);
	r = nlerr_to_errno(rtnl_link_delete(sk, link));
	rtnl_link_put(link);
	if (r == -ENOENT)
		r = -ENODEV;
	return r;
}

int nl_link_list(struct nl_link_info **out, size_t *count)
{
	struct nl_cache *cache = NULL;
	struct nl_object *obj;
	struct nl_link_info *v = NULL;
	struct nl_sock *sk;
	size_t n = 0;
	int r;

	r = sock_get(&sk);
	if (r < 0)
		return r;
	r = nlerr_to_errno(rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache));
	if (r < 0)
		goto cleanup;
	v = calloc((size_t)nl_cache_nitems(cache) + 1, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj))
		link_fill((struct rtnl_link *)obj, &v[n++]);
	*out = v;
	*count = n;
	v = NULL;
cleanup:
	free(v);
	nl_cache_free(cache);
	return r;
}

int nl_veth_create(const char *host_name, const char *peer_name, int peer_netns_fd,
		   unsigned int mtu)
{
	struct rtnl_link *link = NULL, *peer;
	struct nl_sock *sk;
	int r;

	if (!nl_ifname_valid(host_name) || !nl_ifname_valid(peer_name))
		return -EINVAL;
	r = sock_get(&sk);
	if (r < 0)
		return r;
	link = rtnl_link_veth_alloc();
	if (!link)
		return -ENOMEM;
	peer = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(link, host_name);
	rtnl_link_set_name(peer, peer_name);
	if (mtu) {
		rtnl_link_set_mtu(link, mtu);
		rtnl_link_set_mtu(peer, mtu);
	}
	/* created straight inside the pod: no window where the peer name sits on the host */
	if (peer_netns_fd >= 0)
		rtnl_link_set_ns_fd(peer, peer_netns_fd);
	r = nlerr_to_errno(rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL));
	rtnl_link_put(peer);
	rtnl_link_veth_release(link);
	if (r < 0)
		log_debug("veth '%s' (peer '%s'): %s", host_name, peer_name, strerror(-r));
	return r;
}

static struct nl_addr *nla_inet(struct in_addr a, unsigned int prefixlen)
{
	struct nl_addr *na = nl_addr_build(AF_INET, &a, sizeof(a));

	if (na)
		nl_addr_set_prefixlen(na, (int)prefixlen);
	return na;
}

static int addr_request(int ifindex, struct in_addr addr, unsigned int prefixlen, bool add)
{
	struct rtnl_addr *ra = NULL;
	struct nl_addr *local = NULL;
	struct nl_sock *sk;
	int r;

	if (prefixlen > 32)
		return -EINVAL;
	r = sock_get(&sk);
	if (r < 0)
		return r;
	ra = rtnl_addr_alloc();
	local = nla_inet(addr, prefixlen);
	if (!ra || !local) {
		r = -ENOMEM;
		goto cleanup;
	}
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_family(ra, AF_INET);
	r = nlerr_to_errno(rtnl_addr_set_local(ra, local));
	if (r < 0)
		goto cleanup;
	rtnl_addr_set_prefixlen(ra, (int)prefixlen);
	if (add)
		r = nlerr_to_errno(rtnl_addr_add(sk, ra, NLM_F_CREATE | NLM_F_EXCL));
	else
		r = nlerr_to_errno(rtnl_addr_delete(sk, ra, 0));
cleanup:
	nl_addr_put(local);
	rtnl_addr_put(ra);
	return r;
}

int nl_addr_add(int ifindex, struct in_addr addr, unsigned int prefixlen)
{
	int r = addr_request(ifindex, addr, prefixlen, true);
	char s[INET_ADDRSTRLEN];

	if (r == -EEXIST)
		return 0;
	if (r < 0)
		log_err("link %d: cannot add address %s/%u: %s", ifindex,
			inet_ntop(AF_INET, &addr, s, sizeof(s)), prefixlen, strerror(-r));
	return r;
}

int nl_addr_del(int ifindex, struct in_addr addr, unsigned int prefixlen)
{
	int r = addr_request(ifindex, addr, prefixlen, false);

	return r == -EADDRNOTAVAIL ? -ENOENT : r;
}

bool nl_addr_present(int ifindex, struct in_addr addr, unsigned int prefixlen)
{
	struct nl_cache *cache = NULL;
	struct nl_object *obj;
	struct nl_sock *sk;
	bool found = false;

	if (sock_get(&sk) < 0 || rtnl_addr_alloc_cache(sk, &cache) < 0)
		return false;
	for (obj = nl_cache_get_first(cache); obj && !found; obj = nl_cache_get_next(obj)) {
		struct rtnl_addr *ra = (struct rtnl_addr *)obj;
		struct nl_addr *local = rtnl_addr_get_local(ra);

		if (rtnl_addr_get_family(ra) != AF_INET || rtnl_addr_get_ifindex(ra) != ifindex ||
		    !local || nl_addr_get_len(local) != 4)
			continue;
		found = memcmp(nl_addr_get_binary_addr(local), &addr, 4) == 0 &&
			(unsigned int)rtnl_addr_get_prefixlen(ra) == prefixlen;
	}
	nl_cache_free(cache);
	return found;
}

static int route_build(const struct nl_route *rt, struct rtnl_route **out)
{
	struct rtnl_route *r = NULL;
	struct rtnl_nexthop *nh = NULL;
	struct nl_addr *dst = NULL, *gw = NULL, *src = NULL;
	int err;

	if (rt->dst_len > 32)
		return -EINVAL;
	r = rtnl_route_alloc();
	dst = nla_inet(rt->dst, rt->dst_len);
	if (!r || !dst) {
		err = -ENOMEM;
		goto cleanup;
	}
	rtnl_route_set_family(r, AF_INET);
	rtnl_route_set_table(r, RT_TABLE_MAIN);
	rtnl_route_set_type(r, RTN_UNICAST);
	rtnl_route_set_scope(r, rt->scope_link ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
	err = nlerr_to_errno(rtnl_route_set_dst(r, dst));
	if (err < 0)
		goto cleanup;
	if (rt->prefsrc.s_addr) {
		src = nla_inet(rt->prefsrc, 32);
		if (!src) {
			err = -ENOMEM;
			goto cleanup;
		}
		err = nlerr_to_errno(rtnl_route_set_pref_src(r, src));
		if (err < 0)
			goto cleanup;
	}
	if (rt->mtu) {
		err = nlerr_to_errno(rtnl_route_set_metric(r, RTAX_MTU, rt->mtu));
		if (err < 0)
			goto cleanup;
	}
	if (rt->ifindex > 0 || rt->gateway.s_addr) {
		nh = rtnl_route_nh_alloc();
		if (!nh) {
			err = -ENOMEM;
			goto cleanup;
		}
		if (rt->ifindex > 0)
			rtnl_route_nh_set_ifindex(nh, rt->ifindex);
		if (rt->gateway.s_addr) {
			gw = nla_inet(rt->gateway, 32);
			if (!gw) {
				rtnl_route_nh_free(nh);
				err = -ENOMEM;
				goto cleanup;
			}
			rtnl_route_nh_set_gateway(nh, gw);
		}
		rtnl_route_add_nexthop(r, nh);
	}
	*out = r;
	r = NULL;
	err = 0;
cleanup:
	nl_addr_put(dst);
	nl_addr_put(gw);
	nl_addr_put(src);
	rtnl_route_put(r);
	return err;
}

static void route_log(const char *what, const struct nl_route *rt, int err)
{
	char d[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];

	log_err("cannot %s route %s/%u via %s dev %d: %s", what,
		inet_ntop(AF_INET, &rt->dst, d, sizeof(d)), rt->dst_len,
		inet_ntop(AF_INET, &rt->gateway, g, sizeof(g)), rt->ifindex, strerror(-err));
}

int nl_route_replace(const struct nl_route *route)
{
	struct rtnl_route *r = NULL;
	struct nl_sock *sk;
	int err;

	err = sock_get(&sk);
	if (err < 0)
		return err;
	err = route_build(route, &r);
	if (err < 0)
		return err;
	err = nlerr_to_errno(rtnl_route_add(sk, r, NLM_F_CREATE | NLM_F_REPLACE));
	rtnl_route_put(r);
	if (err < 0)
		route_log("replace", route, err);
	return err;
}

int nl_route_delete(const struct nl_route *route)
{
	struct rtnl_route *r = NULL;
	struct nl_sock *sk;
	int err;

	err = sock_get(&sk);
	if (err < 0)
		return err;
	err = route_build(route, &r);
	if (err < 0)
		return err;
	/* the kernel matches on the attributes given; the scope would only narrow it */
	rtnl_route_set_scope(r, RT_SCOPE_NOWHERE);
	err = nlerr_to_errno(rtnl_route_delete(sk, r, 0));
	rtnl_route_put(r);
	if (err == -ENOENT)
		err = -ESRCH;
	return err;
}

static void route_fill(struct rtnl_route *r, struct nl_route *out)
{
	struct nl_addr *a;
	struct rtnl_nexthop *nh;
	uint32_t mtu = 0;

	memset(out, 0, sizeof(*out));
	a = rtnl_route_get_dst(r);
	if (a && nl_addr_get_len(a) == 4)
		memcpy(&out->dst, nl_addr_get_binary_addr(a), 4);
	out->dst_len = a ? nl_addr_get_prefixlen(a) : 0;
	a = rtnl_route_get_pref_src(r);
	if (a && nl_addr_get_len(a) == 4)
		memcpy(&out->prefsrc, nl_addr_get_binary_addr(a), 4);
	if (rtnl_route_get_metric(r, RTAX_MTU, &mtu) == 0)
		out->mtu = mtu;
	out->scope_link = rtnl_route_get_scope(r) == RT_SCOPE_LINK;
	if (rtnl_route_get_nnexthops(r) > 0) {
		nh = rtnl_route_nexthop_n(r, 0);
		out->ifindex = rtnl_route_nh_get_ifindex(nh);
		a = rtnl_route_nh_get_gateway(nh);
		if (a && nl_addr_get_len(a) == 4)
			memcpy(&out->gateway, nl_addr_get_binary_addr(a), 4);
	}
}

int nl_route_list(int ifindex, struct nl_route **out, size_t *count)
{
	struct nl_cache *cache = NULL;
	struct nl_object *obj;
	struct nl_route *v = NULL;
	struct nl_sock *sk;
	size_t n = 0;
	int r;

	r = sock_get(&sk);
	if (r < 0)
		return r;
	r = nlerr_to_errno(rtnl_route_alloc_cache(sk, AF_INET, 0, &cache));
	if (r < 0)
		goto cleanup;
	v = calloc((size_t)nl_cache_nitems(cache) + 1, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_route *rt = (struct rtnl_route *)obj;

		if (rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
		    rtnl_route_get_type(rt) != RTN_UNICAST)
			continue;
		route_fill(rt, &v[n]);
		if (ifindex > 0 && v[n].ifindex != ifindex)
			continue;
		n++;
	}
	*out = v;
	*count = n;
	v = NULL;
cleanup:
	free(v);
	nl_cache_free(cache);
	return r;
}

int nl_neigh_add_permanent(int ifindex, struct in_addr ip, const uint8_t mac[6])
{
	struct rtnl_neigh *n = NULL;
	struct nl_addr *dst = NULL, *ll = NULL;
	struct nl_sock *sk;
	int r;

	r = sock_get(&sk);
	if (r < 0)
		return r;
	n = rtnl_neigh_alloc();
	dst = nla_inet(ip, 32);
	ll = nl_addr_build(AF_LLC, mac, 6);
	if (!n || !dst || !ll) {
		r = -ENOMEM;
		goto cleanup;
	}
	rtnl_neigh_set_ifindex(n, ifindex);
	rtnl_neigh_set_family(n, AF_INET);
	r = nlerr_to_errno(rtnl_neigh_set_dst(n, dst));
	if (r < 0)
		goto cleanup;
	rtnl_neigh_set_lladdr(n, ll);
	rtnl_neigh_set_state(n, NUD_PERMANENT);
	r = nlerr_to_errno(rtnl_neigh_add(sk, n, NLM_F_CREATE | NLM_F_REPLACE));
	if (r < 0) {
		char s[INET_ADDRSTRLEN];

		log_err("link %d: cannot add neighbour %s: %s", ifindex,
			inet_ntop(AF_INET, &ip, s, sizeof(s)), strerror(-r));
	}
cleanup:
	nl_addr_put(dst);
	nl_addr_put(ll);
	rtnl_neigh_put(n);
	return r;
}

int nl_neigh_get(int ifindex, struct in_addr ip, uint8_t mac[6], bool *permanent)
{
	struct nl_cache *cache = NULL;
	struct rtnl_neigh *n = NULL;
	struct nl_addr *dst = NULL, *ll;
	struct nl_sock *sk;
	int r;

	r = sock_get(&sk);
	if (r < 0)
		return r;
	dst = nla_inet(ip, 32);
	if (!dst)
		return -ENOMEM;
	r = nlerr_to_errno(rtnl_neigh_alloc_cache(sk, &cache));
	if (r < 0)
		goto cleanup;
	n = rtnl_neigh_get(cache, ifindex, dst);
	if (!n) {
		r = -ENOENT;
		goto cleanup;
	}
	memset(mac, 0, 6);
	ll = rtnl_neigh_get_lladdr(n);
	if (ll && nl_addr_get_len(ll) == 6)
		memcpy(mac, nl_addr_get_binary_addr(ll), 6);
	*permanent = (rtnl_neigh_get_state(n) & NUD_PERMANENT) != 0;
	r = 0;
cleanup:
	rtnl_neigh_put(n);
	nl_cache_free(cache);
	nl_addr_put(dst);
	return r;
}

/* "/proc/sys/net/..." as is, "net/ipv4/..." under /proc/sys, "net.ipv4.ip_forward" dotted. */
static int sysctl_path(const char *key, char *buf, size_t len)
{
	size_t n;
	int w;

	if (key[0] == '/')
		w = snprintf(buf, len, "%s", key);
	else
		w = snprintf(buf, len, "/proc/sys/%s", key);
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	if (!strchr(key, '/'))
		for (n = strlen("/proc/sys/"); buf[n]; n++)
			if (buf[n] == '.')
				buf[n] = '/';
	if (strstr(buf, "/../"))
		return -EINVAL;
	return 0;
}

int sysctl_write(const char *path, const char *value)
{
	char p[512];
	size_t len = strlen(value);
	ssize_t w;
	int fd, r;

	r = sysctl_path(path, p, sizeof(p));
	if (r < 0)
		return r;
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	w = write(fd, value, len);
	r = w < 0 ? -errno : ((size_t)w == len ? 0 : -EIO);
	close(fd);
	return r;
}

int sysctl_read(const char *path, char *buf, size_t len)
{
	char p[512];
	ssize_t n;
	int fd, r;

	if (len == 0)
		return -EINVAL;
	r = sysctl_path(path, p, sizeof(p));
	if (r < 0)
		return r;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return 0;
}
