/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_CNI_RESULT_H
#define TWILL_CNI_RESULT_H

#include <jansson.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The spec versions Twill reads and answers in, oldest first. */
enum cni_version {
	CNI_VERSION_0_3_0,
	CNI_VERSION_0_3_1,
	CNI_VERSION_0_4_0,
	CNI_VERSION_1_0_0,
	CNI_VERSION_1_1_0,
	CNI_VERSION_COUNT,
};
#define CNI_VERSION_LATEST CNI_VERSION_1_1_0

int cni_version_parse(const char *s, enum cni_version *out);   /* -ENOTSUP when unknown */
const char *cni_version_str(enum cni_version v);

/* Error codes of the CNI spec; 100 and up are Twill's own. */
enum cni_code {
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_UNAVAILABLE = 50,
	CNI_ERR_ADDRESS_EXHAUSTED = 100,
	CNI_ERR_WIRING = 101,
	CNI_ERR_CHECK_FAILED = 102,
	CNI_ERR_INTERNAL = 999,
};

struct cni_error {
	int code;                  /* 0: no error */
	enum cni_version version;  /* the caller's, once known */
	char msg[256];
	char details[768];
};

void cni_error_set(struct cni_error *err, int code, const char *msg_fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cni_error_details(struct cni_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
json_t *cni_error_encode(const struct cni_error *err);

#define CNI_RESULT_MAX 8

struct cni_interface {
	char name[IF_NAMESIZE];
	uint8_t mac[6];
	bool has_mac;
	char sandbox[PATH_MAX];   /* "" for a host interface */
	unsigned int mtu;         /* 0: not reported (only 1.1.0 carries it) */
};

struct cni_ip {
	struct in_addr addr;
	unsigned int prefixlen;
	struct in_addr gateway;   /* 0: none */
	int interface;            /* index into interfaces, -1: none */
};

struct cni_route {
	struct in_addr dst;
	unsigned int dst_len;
	struct in_addr gw;        /* 0: none */
};

struct cni_result {
	size_t n_interfaces;
	struct cni_interface interfaces[CNI_RESULT_MAX];
	size_t n_ips;
	struct cni_ip ips[CNI_RESULT_MAX];
	size_t n_routes;
	struct cni_route routes[CNI_RESULT_MAX];
	json_t *dns;              /* owned reference, NULL when none */
};

int cni_result_encode(const struct cni_result *r, enum cni_version v, json_t **out);
/* Reads a prevResult of any supported version; IPv6 entries are skipped. */
int cni_result_decode(const json_t *j, struct cni_result *out, struct cni_error *err);
void cni_result_clear(struct cni_result *r);

int cni_mac_format(const uint8_t mac[6], char out[18]);
int cni_mac_parse(const char *s, uint8_t mac[6]);
/* "a.b.c.d/n" with host bits allowed; -EINVAL otherwise. */
int cni_cidr_parse(const char *s, struct in_addr *addr, unsigned int *prefixlen);

#endif
