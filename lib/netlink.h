/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_NETLINK_H
#define TWILL_NETLINK_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Links, veth pairs, addresses, routes and neighbours over rtnetlink (libnl-route-3).
 * Every call acts in the calling thread's current network namespace; see netns.h.
 */

struct nl_link_info {
	char name[IF_NAMESIZE];
	int ifindex;
	unsigned int mtu;
	uint8_t mac[6];
	bool up;
	char kind[16]; /* "veth", "wireguard", "" for TUN etc. */
};

/* The kernel's dev_valid_name(): 1-15 bytes, not "." or "..", no '/', ':' or white space. */
bool nl_ifname_valid(const char *name);
int nl_link_get(const char *name, struct nl_link_info *out);   /* -ENODEV when absent */
int nl_link_get_by_index(int ifindex, struct nl_link_info *out);
int nl_link_set_up(int ifindex);
int nl_link_set_mtu(int ifindex, unsigned int mtu);
int nl_link_delete(int ifindex);
int nl_link_list(struct nl_link_info **out, size_t *count);
/* The kernel's ifalias: the plugin tags its host veths with their owner. */
int nl_link_set_alias(int ifindex, const char *alias);
int nl_link_get_alias(int ifindex, char *buf, size_t len);   /* -ENODATA when unset */

/* Creates host_name here and peer_name in the namespace open at peer_netns_fd. */
int nl_veth_create(const char *host_name, const char *peer_name, int peer_netns_fd,
		   unsigned int mtu);

int nl_addr_add(int ifindex, struct in_addr addr, unsigned int prefixlen); /* -EEXIST ok */
int nl_addr_del(int ifindex, struct in_addr addr, unsigned int prefixlen);
bool nl_addr_present(int ifindex, struct in_addr addr, unsigned int prefixlen);

struct nl_route {
	struct in_addr dst;
	unsigned int dst_len;
	struct in_addr gateway;   /* 0 when none */
	struct in_addr prefsrc;   /* 0 when none */
	int ifindex;
	unsigned int mtu;         /* 0 when none */
	bool scope_link;
};

int nl_route_replace(const struct nl_route *route);
int nl_route_delete(const struct nl_route *route);   /* -ESRCH / -ENOENT when absent */
/* Main-table IPv4 routes; ifindex 0 lists every device. */
int nl_route_list(int ifindex, struct nl_route **out, size_t *count);

int nl_neigh_add_permanent(int ifindex, struct in_addr ip, const uint8_t mac[6]);
/* The IPv4 neighbour entry of ip on ifindex: -ENOENT when there is none. */
int nl_neigh_get(int ifindex, struct in_addr ip, uint8_t mac[6], bool *permanent);

/* path: "/proc/sys/net/ipv4/ip_forward", "net/ipv4/ip_forward" or "net.ipv4.ip_forward" */
int sysctl_write(const char *path, const char *value);
int sysctl_read(const char *path, char *buf, size_t len);

#endif
