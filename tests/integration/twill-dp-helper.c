// SPDX-License-Identifier: Apache-2.0
/*
 * Test-only front end over lib/datapath, so integration tests can prove the real
 * redirect paths without the agent or the CNI plugin. Run it inside the node's network
 * namespace (nsenter --net=...): interface names resolve there.
 *
 *   load PIN | unpin PIN | counters PIN | routes PIN | endpoints PIN
 *   config PIN CLUSTER/LEN NODE/LEN WG_IFNAME STRICT(0|1) [FLAGS]
 *   route PIN CIDR/LEN IFNAME NODE_ADDR | route-del PIN CIDR/LEN
 *   endpoint PIN POD_IP HOST_IFNAME POD_MAC   (datapath_pod_add: register + attach)
 *   pod-del PIN POD_IP HOST_IFNAME                 (datapath_pod_del)
 *   attach-pod|attach-wg|attach-guard PIN IFNAME
 *   query IFNAME ingress|egress
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "datapath.h"
#include "log.h"

static int parse_cidr(const char *s, __u32 *addr, __u32 *plen)
{
	char buf[32], *slash;
	struct in_addr in;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -EINVAL;
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if (inet_pton(AF_INET, buf, &in) != 1)
		return -EINVAL;
	*addr = in.s_addr;
	*plen = (__u32)atoi(slash + 1);
	return *plen <= 32 ? 0 : -EINVAL;
}

static int ifindex_of(const char *name)
{
	int idx = (int)if_nametoindex(name);

	if (!idx)
		fprintf(stderr, "no interface '%s' here\n", name);
	return idx;
}

static int hwaddr_of(const char *name, __u8 mac[6])
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), err = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

static int run(int argc, char **argv)
{
	const char *cmd = argv[1], *pin = argc > 2 ? argv[2] : "";
	struct datapath *dp = NULL;
	int err;

	if (strcmp(cmd, "query") == 0 && argc == 4) {
		char name[64];
		int idx = ifindex_of(argv[2]);

		if (!idx)
			return -ENODEV;
		err = datapath_query_attached(idx, strcmp(argv[3], "egress") == 0, name,
					      sizeof(name));
		if (!err)
			printf("%s\n", name);
		return err;
	}
	if (strcmp(cmd, "unpin") == 0)
		return datapath_unpin(pin);
	if (strcmp(cmd, "load") == 0)
		err = datapath_load_and_pin(pin, &dp);
	else
		err = datapath_open_pinned(pin, &dp);
	if (err)
		return err;

	if (strcmp(cmd, "load") == 0) {
		err = 0;
	} else if (strcmp(cmd, "counters") == 0) {
		struct twill_counter c[TWILL_R_MAX];
		unsigned int i;

		err = datapath_counters_read(dp, c);
		for (i = 0; !err && i < TWILL_R_MAX; i++)
			printf("%s %llu %llu\n", datapath_reason_name(i),
			       (unsigned long long)c[i].packets, (unsigned long long)c[i].bytes);
	} else if (strcmp(cmd, "routes") == 0) {
		struct twill_route_key *keys = NULL;
		struct twill_route_value *values = NULL;
		size_t n = 0, i;
		char buf[INET_ADDRSTRLEN];

		err = datapath_route_list(dp, &keys, &values, &n);
		for (i = 0; !err && i < n; i++)
			printf("%s/%u ifindex %u\n",
			       inet_ntop(AF_INET, &keys[i].addr, buf, sizeof(buf)),
			       keys[i].prefixlen, values[i].ifindex);
		free(keys);
		free(values);
	} else if (strcmp(cmd, "endpoints") == 0) {
		struct twill_endpoint_key *keys = NULL;
		struct twill_endpoint_value *values = NULL;
		size_t n = 0, i;
		char buf[INET_ADDRSTRLEN];

		err = datapath_endpoint_list(dp, &keys, &values, &n);
		for (i = 0; !err && i < n; i++)
			printf("%s ifindex %u\n", inet_ntop(AF_INET, &keys[i].addr, buf, sizeof(buf)),
			       values[i].host_ifindex);
		free(keys);
		free(values);
	} else if (strcmp(cmd, "config") == 0 && argc >= 7) {
		struct twill_config cfg = { 0 };

		err = parse_cidr(argv[3], &cfg.cluster_addr, &cfg.cluster_prefixlen);
		if (!err)
			err = parse_cidr(argv[4], &cfg.node_addr, &cfg.node_prefixlen);
		cfg.wg_ifindex = (__u32)ifindex_of(argv[5]);
		cfg.strict = (__u32)atoi(argv[6]);
		cfg.flags = argc > 7 ? (__u32)strtoul(argv[7], NULL, 0) : 0;
		if (!err)
			err = datapath_config_set(dp, &cfg);
	} else if (strcmp(cmd, "route") == 0 && argc == 6) {
		struct twill_route_key k;
		struct twill_route_value v = { 0 };
		struct in_addr node;

		err = parse_cidr(argv[3], &k.addr, &k.prefixlen);
		v.ifindex = (__u32)ifindex_of(argv[4]);
		if (!err && inet_pton(AF_INET, argv[5], &node) != 1)
			err = -EINVAL;
		v.node_addr = node.s_addr;
		if (!err)
			err = v.ifindex ? datapath_route_set(dp, &k, &v) : -ENODEV;
	} else if (strcmp(cmd, "route-del") == 0 && argc == 4) {
		struct twill_route_key k;

		err = parse_cidr(argv[3], &k.addr, &k.prefixlen);
		if (!err)
			err = datapath_route_delete(dp, &k);
	} else if (strcmp(cmd, "endpoint") == 0 && argc == 6) {
		struct twill_endpoint_key k;
		struct twill_endpoint_value v = { 0 };
		struct in_addr ip;
		unsigned int m[6], i;

		if (inet_pton(AF_INET, argv[3], &ip) != 1 ||
		    sscanf(argv[5], "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4],
			   &m[5]) != 6) {
			err = -EINVAL;
		} else {
			k.addr = ip.s_addr;
			for (i = 0; i < 6; i++)
				v.pod_mac[i] = (__u8)m[i];
			v.host_ifindex = (__u32)ifindex_of(argv[4]);
			err = hwaddr_of(argv[4], v.host_mac);
			/* what the CNI plugin does on ADD: register, then attach */
			if (!err)
				err = datapath_pod_add(dp, k.addr, (int)v.host_ifindex, v.pod_mac,
						       v.host_mac);
		}
	} else if (strcmp(cmd, "pod-del") == 0 && argc == 5) {
		struct in_addr ip;

		if (inet_pton(AF_INET, argv[3], &ip) != 1)
			err = -EINVAL;
		else
			err = datapath_pod_del(dp, ip.s_addr, (int)if_nametoindex(argv[4]));
	} else if (strncmp(cmd, "attach-", 7) == 0 && argc == 4) {
		int idx = ifindex_of(argv[3]);

		if (!idx)
			err = -ENODEV;
		else if (strcmp(cmd, "attach-pod") == 0)
			err = datapath_attach_pod(dp, idx);
		else if (strcmp(cmd, "attach-wg") == 0)
			err = datapath_attach_wg(dp, idx);
		else
			err = datapath_attach_guard(dp, idx);
	} else {
		err = -EINVAL;
	}
	datapath_close(dp);
	return err;
}

int main(int argc, char **argv)
{
	int err;

	log_set_ident("twill-dp-helper");
	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of twill-dp-helper.c\n");
		return 2;
	}
	err = run(argc, argv);
	if (err)
		fprintf(stderr, "twill-dp-helper %s: %s\n", argv[1], strerror(-err));
	return err ? 1 : 0;
}
