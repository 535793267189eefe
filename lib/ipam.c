// SPDX-License-Identifier: Apache-2.0
/*
 * The node's /24 address store: one JSON file per network, changed only under an
 * exclusive flock and only by replacing it whole (temp file, fdatasync, rename). A
 * process killed at any instant therefore leaves the old or the new store, never a
 * torn one, and the kernel drops its lock. A store that does not parse
 * is never rewritten: every operation fails with -EBADMSG until an operator fixes it,
 * because an empty store would hand out addresses that running pods still use.
 *
 * <state_dir>/ipam/<network>/store.json, sorted by address:
 *   {"version": 1, "pod_cidr": "10.244.1.0/24", "cursor": 3, "allocations": [
 *     {"address": "10.244.1.2", "container_id": "4d3c...", "ifname": "eth0",
 *      "allocated_at": "2026-11-21T13:05:04Z"}, ...]}
 * cursor is the host octet handed out last. Beside it: "lock" (flock only, never
 * removed) and "store.json.tmp", the next store being written (stale if present
 * while nobody holds the lock; ignored by readers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "cidr.h"
#include "ipam.h"
#include "log.h"

#define IPAM_STORE_NAME "store.json"
#define IPAM_STORE_TMP_NAME "store.json.tmp"
#define IPAM_LOCK_NAME "lock"
#define IPAM_STORE_VERSION 1
/* .0 is the network, .1 the node's own address, .255 broadcast */
#define IPAM_FIRST_HOST 2u
#define IPAM_LAST_HOST 254u
#define IPAM_CAPACITY (IPAM_LAST_HOST - IPAM_FIRST_HOST + 1u)
/* 253 allocations with 255-byte container ids stay far below this */
#define IPAM_STORE_MAX_BYTES (1024 * 1024)
#define IPAM_NETWORK_NAME_MAX 128
#define IPAM_CIDR_MAX 32

struct ipam {
	char *dir;
	char *store_path;
	char pod_cidr[IPAM_CIDR_MAX];   /* "": opened by ipam_open_existing, any /24 */
	struct in_addr network;
	int dir_fd;
	int lock_fd;
	unsigned int lock_wait_ms;
};

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static bool alnum_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* CNI spec: an alphanumeric first, then alphanumerics, '_', '.' or '-'. */
static bool cni_name_valid(const char *s, size_t max_len)
{
	size_t len;

	if (!s || !alnum_ok(s[0]))
		return false;
	for (len = 1; s[len]; len++) {
		if (len >= max_len || !name_char_ok(s[len]))
			return false;
	}
	return true;
}

bool ipam_container_id_valid(const char *id)
{
	return cni_name_valid(id, sizeof(((struct ipam_allocation *)0)->container_id) - 1);
}

bool ipam_ifname_valid(const char *ifname)
{
	size_t len;

	if (!ifname || !ifname[0] || strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0)
		return false;
	/* the kernel forbids '/', ':' and whitespace; control and non-ASCII bytes would
	 * only make logs and JSON ambiguous */
	for (len = 0; ifname[len]; len++) {
		unsigned char c = (unsigned char)ifname[len];

		if (len >= sizeof(((struct ipam_allocation *)0)->ifname) - 1)
			return false;
		if (c <= ' ' || c >= 0x7f || c == '/' || c == ':')
			return false;
	}
	return true;
}

bool ipam_network_name_valid(const char *name)
{
	return cni_name_valid(name, IPAM_NETWORK_NAME_MAX) && !strstr(name, "..");
}

/* Only a /24 with no host bits: the store's layout has one slot per host octet. */
static int cidr_parse_quiet(const char *pod_cidr, struct in_addr *network)
{
	struct in_addr addr;
	uint8_t len;

	if (cidr_parse(pod_cidr, &addr, &len) < 0 || len != 24 || cidr_has_host_bits(addr, len))
		return -EINVAL;
	*network = addr;
	return 0;
}

int ipam_cidr_parse(const char *pod_cidr, struct in_addr *network)
{
	struct in_addr addr;
	int r;

	if (!network)
		return -EINVAL;
	r = cidr_parse_quiet(pod_cidr, &addr);
	if (r < 0) {
		log_err("pod CIDR '%s' is not a /24 (an IPv4 a.b.c.0/24 is expected)",
			pod_cidr ? pod_cidr : "(null)");
		return r;
	}
	*network = addr;
	return 0;
}

static unsigned int host_octet(struct in_addr addr)
{
	return ntohl(addr.s_addr) & 0xffu;
}

static struct in_addr host_addr(struct in_addr network, unsigned int host)
{
	struct in_addr a = { .s_addr = htonl(ntohl(network.s_addr) | host) };

	return a;
}

static void time_format(time_t t, char buf[32])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, 32, "1970-01-01T00:00:00Z");
}

/* Only the exact form time_format writes, so a store formats back to itself. */
static int time_parse(const char *s, time_t *out)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:ddZ";
	struct tm tm = { 0 }, check;
	time_t t;

	if (strlen(s) != sizeof(pattern) - 1)
		return -EINVAL;
	for (size_t i = 0; pattern[i]; i++) {
		if (pattern[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pattern[i])
			return -EINVAL;
	}
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	tm.tm_hour = atoi(s + 11);
	tm.tm_min = atoi(s + 14);
	tm.tm_sec = atoi(s + 17);
	if (tm.tm_year < 70)
		return -EINVAL;
	check = tm;
	t = timegm(&tm);
	/* timegm normalises 31 February or 25:61 into another date: refuse those */
	if (t == (time_t)-1 || tm.tm_year != check.tm_year || tm.tm_mon != check.tm_mon ||
	    tm.tm_mday != check.tm_mday || tm.tm_hour != check.tm_hour ||
	    tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
		return -EINVAL;
	*out = t;
	return 0;
}

static int corrupt(const char *origin, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int corrupt(const char *origin, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	log_err("IPAM store '%s' is corrupt: %s; it is left as is, fix or remove it "
		"(removing it forgets every allocation)", origin, reason);
	return -EBADMSG;
}

static int alloc_cmp(const void *a, const void *b)
{
	unsigned int x = ntohl(((const struct ipam_allocation *)a)->addr.s_addr);
	unsigned int y = ntohl(((const struct ipam_allocation *)b)->addr.s_addr);

	return (x > y) - (x < y);
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static bool key_known(const char *key, const char *const *known)
{
	for (; *known; known++) {
		if (strcmp(key, *known) == 0)
			return true;
	}
	return false;
}

/* Returns the string member or NULL after logging why it is unusable. */
static const char *member_string(const json_t *obj, const char *key, const char *origin,
				 const char *where)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		corrupt(origin, "%s has no \"%s\"", where, key);
		return NULL;
	}
	if (!json_is_string(v)) {
		corrupt(origin, "%s: \"%s\" is %s, not a string", where, key, json_type_name(v));
		return NULL;
	}
	return json_string_value(v);
}

static int parse_allocation(const json_t *obj, struct in_addr network, size_t index,
			    const char *origin, struct ipam_allocation *a)
{
	static const char *const known[] = { "address", "container_id", "ifname",
					     "allocated_at", NULL };
	char where[64], cidr[IPAM_CIDR_MAX];
	const char *key, *address, *id, *ifname, *at;
	json_t *v;

	snprintf(where, sizeof(where), "allocation %zu", index);
	if (!json_is_object(obj))
		return corrupt(origin, "%s is %s, not an object", where, json_type_name(obj));
	json_object_foreach((json_t *)obj, key, v) {
		if (!key_known(key, known))
			return corrupt(origin, "%s has an unknown key \"%s\"", where, key);
	}
	address = member_string(obj, "address", origin, where);
	id = member_string(obj, "container_id", origin, where);
	ifname = member_string(obj, "ifname", origin, where);
	at = member_string(obj, "allocated_at", origin, where);
	if (!address || !id || !ifname || !at)
		return -EBADMSG;

	if (inet_pton(AF_INET, address, &a->addr) != 1)
		return corrupt(origin, "%s: address '%s' is not an IPv4 address", where, address);
	cidr_format(network, 24, cidr);
	if ((ntohl(a->addr.s_addr) & ~0xffu) != ntohl(network.s_addr))
		return corrupt(origin, "%s: address '%s' is outside pod CIDR '%s'", where, address,
			       cidr);
	if (host_octet(a->addr) < IPAM_FIRST_HOST || host_octet(a->addr) > IPAM_LAST_HOST)
		return corrupt(origin, "%s: address '%s' is reserved in pod CIDR '%s'", where,
			       address, cidr);
	if (!ipam_container_id_valid(id))
		return corrupt(origin, "%s: container_id '%.64s' is not a valid container id",
			       where, id);
	if (!ipam_ifname_valid(ifname))
		return corrupt(origin, "%s: ifname '%.32s' is not a valid interface name", where,
			       ifname);
	if (time_parse(at, &a->allocated_at) < 0)
		return corrupt(origin, "%s: allocated_at '%.32s' is not a UTC time like "
			       "2006-01-02T15:04:05Z", where, at);
	strcpy(a->container_id, id);
	strcpy(a->ifname, ifname);
	return 0;
}

static int attachment_cmp(const void *a, const void *b)
{
	const struct ipam_allocation *x = *(const struct ipam_allocation *const *)a;
	const struct ipam_allocation *y = *(const struct ipam_allocation *const *)b;
	int c = strcmp(x->container_id, y->container_id);

	return c ? c : strcmp(x->ifname, y->ifname);
}

static int check_attachments_unique(const struct ipam_store *s, const char *origin)
{
	const struct ipam_allocation **by_id;
	int r = 0;

	if (s->count < 2)
		return 0;
	by_id = calloc(s->count, sizeof(*by_id));
	if (!by_id)
		return -ENOMEM;
	for (size_t i = 0; i < s->count; i++)
		by_id[i] = &s->allocs[i];
	qsort(by_id, s->count, sizeof(*by_id), attachment_cmp);
	for (size_t i = 1; i < s->count && r == 0; i++) {
		if (attachment_cmp(&by_id[i - 1], &by_id[i]) == 0)
			r = corrupt(origin, "container '%s' ifname '%s' holds two addresses",
				    by_id[i]->container_id, by_id[i]->ifname);
	}
	free(by_id);
	return r;
}

int ipam_store_parse(const char *text, size_t len, const char *pod_cidr, const char *origin,
		     struct ipam_store **out)
{
	static const char *const known[] = { "version", "pod_cidr", "cursor", "allocations",
					     NULL };
	struct ipam_store *s = NULL;
	struct in_addr want = { 0 };
	json_error_t jerr;
	json_t *root = NULL, *v, *allocs;
	const char *key, *cidr;
	size_t n;
	int r;

	if (!text || !origin || !out)
		return -EINVAL;
	if (pod_cidr) {
		r = ipam_cidr_parse(pod_cidr, &want);
		if (r < 0)
			return r;
	}
	if (len == 0) {
		r = corrupt(origin, "the file is empty");
		goto cleanup;
	}
	if (len > IPAM_STORE_MAX_BYTES) {
		r = corrupt(origin, "%zu bytes is more than a store can hold", len);
		goto cleanup;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		r = corrupt(origin, "not JSON at line %d column %d: %s", jerr.line, jerr.column,
			    jerr.text);
		goto cleanup;
	}
	if (!json_is_object(root)) {
		r = corrupt(origin, "the document is %s, not an object", json_type_name(root));
		goto cleanup;
	}
	json_object_foreach(root, key, v) {
		if (!key_known(key, known)) {
			r = corrupt(origin, "unknown key \"%s\"", key);
			goto cleanup;
		}
	}

	v = json_object_get(root, "version");
	if (!json_is_integer(v)) {
		r = corrupt(origin, v ? "\"version\" is not an integer" : "\"version\" is missing");
		goto cleanup;
	}
	if (json_integer_value(v) != IPAM_STORE_VERSION) {
		r = corrupt(origin, "version %lld is not supported (this Twill reads version %d)",
			    (long long)json_integer_value(v), IPAM_STORE_VERSION);
		goto cleanup;
	}

	s = calloc(1, sizeof(*s));
	if (!s) {
		r = -ENOMEM;
		goto cleanup;
	}
	cidr = member_string(root, "pod_cidr", origin, "the document");
	if (!cidr) {
		r = -EBADMSG;
		goto cleanup;
	}
	if (cidr_parse_quiet(cidr, &s->network) < 0) {
		r = corrupt(origin, "pod_cidr '%.32s' is not an IPv4 /24", cidr);
		goto cleanup;
	}
	if (pod_cidr && s->network.s_addr != want.s_addr) {
		log_err("IPAM store '%s' was made for pod CIDR '%s', but pod CIDR '%s' is "
			"configured; remove the store once no pod uses the old range", origin,
			cidr, pod_cidr);
		r = -EEXIST;
		goto cleanup;
	}

	v = json_object_get(root, "cursor");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > IPAM_LAST_HOST) {
		r = corrupt(origin, "\"cursor\" is missing or not an integer from 1 to %u",
			    IPAM_LAST_HOST);
		goto cleanup;
	}
	s->cursor = (unsigned int)json_integer_value(v);

	allocs = json_object_get(root, "allocations");
	if (!json_is_array(allocs)) {
		r = corrupt(origin, "\"allocations\" is missing or not an array");
		goto cleanup;
	}
	n = json_array_size(allocs);
	if (n > IPAM_CAPACITY) {
		r = corrupt(origin, "%zu allocations, more than the %u addresses of a /24", n,
			    IPAM_CAPACITY);
		goto cleanup;
	}
	s->allocs = calloc(n ? n : 1, sizeof(*s->allocs));
	if (!s->allocs) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		r = parse_allocation(json_array_get(allocs, i), s->network, i, origin,
				     &s->allocs[i]);
		if (r < 0)
			goto cleanup;
		s->count++;
	}
	qsort(s->allocs, s->count, sizeof(*s->allocs), alloc_cmp);
	for (size_t i = 1; i < s->count; i++) {
		char addr[INET_ADDRSTRLEN];

		if (s->allocs[i].addr.s_addr != s->allocs[i - 1].addr.s_addr)
			continue;
		inet_ntop(AF_INET, &s->allocs[i].addr, addr, sizeof(addr));
		r = corrupt(origin, "address '%s' is allocated twice", addr);
		goto cleanup;
	}
	r = check_attachments_unique(s, origin);
	if (r < 0)
		goto cleanup;
	*out = s;
	s = NULL;
	r = 0;
cleanup:
	ipam_store_free(s);
	json_decref(root);
	return r;
}

int ipam_store_format(const struct ipam_store *store, char **out)
{
	char cidr[IPAM_CIDR_MAX], addr[INET_ADDRSTRLEN], at[32];
	json_t *root = NULL, *allocs, *a;
	char *text = NULL;
	int r = -ENOMEM;

	if (!store || !out || (store->count && !store->allocs))
		return -EINVAL;
	cidr_format(store->network, 24, cidr);
	root = json_object();
	allocs = json_array();
	if (!root || !allocs || json_object_set_new(root, "version",
						    json_integer(IPAM_STORE_VERSION)) ||
	    json_object_set_new(root, "pod_cidr", json_string(cidr)) ||
	    json_object_set_new(root, "cursor", json_integer(store->cursor)) ||
	    json_object_set_new(root, "allocations", allocs)) {
		if (!root)
			json_decref(allocs);
		goto cleanup;
	}
	for (size_t i = 0; i < store->count; i++) {
		const struct ipam_allocation *al = &store->allocs[i];

		inet_ntop(AF_INET, &al->addr, addr, sizeof(addr));
		time_format(al->allocated_at, at);
		a = json_pack("{s:s, s:s, s:s, s:s}", "address", addr, "container_id",
			      al->container_id, "ifname", al->ifname, "allocated_at", at);
		if (!a || json_array_append_new(allocs, a))
			goto cleanup;
	}
	text = json_dumps(root, JSON_INDENT(2));
	if (!text)
		goto cleanup;
	*out = text;
	r = 0;
cleanup:
	json_decref(root);
	return r;
}

void ipam_store_free(struct ipam_store *store)
{
	if (!store)
		return;
	free(store->allocs);
	free(store);
}

static int mkdir_one(const char *path)
{
	int r;

	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	r = -errno;
	log_err("cannot create IPAM folder '%s': %s", path, strerror(-r));
	return r;
}

static int lock_open(struct ipam *ipam)
{
	int r;

	ipam->lock_fd = openat(ipam->dir_fd, IPAM_LOCK_NAME,
			       O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (ipam->lock_fd >= 0)
		return 0;
	r = -errno;
	log_err("cannot open IPAM lock '%s/%s': %s", ipam->dir, IPAM_LOCK_NAME, strerror(-r));
	return r;
}

static int handle_new(const char *state_dir, const char *network, const char *pod_cidr,
		      bool create, struct ipam **out)
{
	struct ipam *ipam = NULL;
	char *ipam_root = NULL;
	int r;

	if (!state_dir || !state_dir[0] || !network || !out)
		return -EINVAL;
	if (!ipam_network_name_valid(network)) {
		log_err("network name '%.140s' is not valid (letters, digits, '_', '.', '-', "
			"starting with a letter or digit, at most %d characters)", network,
			IPAM_NETWORK_NAME_MAX);
		return -EINVAL;
	}
	ipam = calloc(1, sizeof(*ipam));
	if (!ipam)
		return -ENOMEM;
	ipam->dir_fd = -1;
	ipam->lock_fd = -1;
	ipam->lock_wait_ms = IPAM_LOCK_WAIT_MS;
	if (pod_cidr) {
		r = ipam_cidr_parse(pod_cidr, &ipam->network);
		if (r < 0)
			goto cleanup;
		cidr_format(ipam->network, 24, ipam->pod_cidr);
	}
	if (asprintf(&ipam_root, "%s/ipam", state_dir) < 0) {
		ipam_root = NULL;
		r = -ENOMEM;
		goto cleanup;
	}
	if (asprintf(&ipam->dir, "%s/%s", ipam_root, network) < 0) {
		ipam->dir = NULL;
		r = -ENOMEM;
		goto cleanup;
	}
	if (asprintf(&ipam->store_path, "%s/%s", ipam->dir, IPAM_STORE_NAME) < 0) {
		ipam->store_path = NULL;
		r = -ENOMEM;
		goto cleanup;
	}
	if (create) {
		r = mkdir_one(state_dir);
		if (r == 0)
			r = mkdir_one(ipam_root);
		if (r == 0)
			r = mkdir_one(ipam->dir);
		if (r < 0)
			goto cleanup;
	}
	ipam->dir_fd = open(ipam->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ipam->dir_fd < 0) {
		r = -errno;
		if (r != -ENOENT || create)
			log_err("cannot open IPAM folder '%s': %s", ipam->dir, strerror(-r));
		goto cleanup;
	}
	r = lock_open(ipam);
	if (r < 0)
		goto cleanup;
	*out = ipam;
	ipam = NULL;
	r = 0;
cleanup:
	free(ipam_root);
	ipam_close(ipam);
	return r;
}

int ipam_open(const char *state_dir, const char *network, const char *pod_cidr,
	      struct ipam **out)
{
	if (!pod_cidr)
		return -EINVAL;
	return handle_new(state_dir, network, pod_cidr, true, out);
}

int ipam_open_existing(const char *state_dir, const char *network, struct ipam **out)
{
	return handle_new(state_dir, network, NULL, false, out);
}

void ipam_set_lock_wait(struct ipam *ipam, unsigned int ms)
{
	if (ipam)
		ipam->lock_wait_ms = ms;
}

void ipam_close(struct ipam *ipam)
{
	if (!ipam)
		return;
	if (ipam->lock_fd >= 0)
		close(ipam->lock_fd);
	if (ipam->dir_fd >= 0)
		close(ipam->dir_fd);
	free(ipam->store_path);
	free(ipam->dir);
	free(ipam);
}

const char *ipam_dir(const struct ipam *ipam)
{
	return ipam ? ipam->dir : NULL;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Polls instead of blocking in flock(): one stopped or stuck process holding the lock
 * must not hang every later ADD and DEL of the node forever. Short pauses first, as a
 * healthy holder keeps the lock for a few milliseconds.
 */
static int lock_wait(struct ipam *ipam)
{
	int64_t deadline = monotonic_ms() + ipam->lock_wait_ms;
	long pause_us = 500;
	int r;

	for (;;) {
		if (flock(ipam->lock_fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		r = -errno;
		if (r != -EWOULDBLOCK && r != -EINTR) {
			log_err("cannot lock '%s/%s': %s", ipam->dir, IPAM_LOCK_NAME,
				strerror(-r));
			return r;
		}
		if (monotonic_ms() >= deadline) {
			log_err("IPAM lock '%s/%s' is still held by another process after %u ms",
				ipam->dir, IPAM_LOCK_NAME, ipam->lock_wait_ms);
			return -ETIMEDOUT;
		}
		usleep((useconds_t)pause_us);
		if (pause_us < 20000)
			pause_us *= 2;
	}
}

/*
 * A lock file removed by hand while a writer holds it would let the next process lock
 * a new file and write beside that writer: after locking, check that the file locked
 * is still the one in the folder, and start over on a fresh one if not.
 */
static int store_lock(struct ipam *ipam)
{
	struct stat held, named;
	int r;

	for (int attempt = 0; attempt < 8; attempt++) {
		r = lock_wait(ipam);
		if (r < 0)
			return r;
		if (fstat(ipam->lock_fd, &held) == 0 &&
		    fstatat(ipam->dir_fd, IPAM_LOCK_NAME, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
		    held.st_dev == named.st_dev && held.st_ino == named.st_ino)
			return 0;
		close(ipam->lock_fd);
		ipam->lock_fd = -1;
		r = lock_open(ipam);
		if (r < 0)
			return r;
	}
	log_err("cannot lock '%s/%s': the lock file keeps being replaced", ipam->dir,
		IPAM_LOCK_NAME);
	return -EAGAIN;
}

static void store_unlock(struct ipam *ipam)
{
	flock(ipam->lock_fd, LOCK_UN);
}

static int read_all(int fd, const char *path, char **out, size_t *len)
{
	int r = file_read_all_fd(fd, IPAM_STORE_MAX_BYTES, out, len);

	switch (r) {
	case 0:
	case -ENOMEM:
		return r;
	case -EINVAL:
		log_err("IPAM store '%s' is not a regular file; fix or remove it", path);
		return -EBADMSG;
	case -EFBIG:
		return corrupt(path, "it is larger than the %d bytes a store can hold",
			       IPAM_STORE_MAX_BYTES);
	case -EAGAIN:
		return corrupt(path, "the file changed size while read");
	default:
		log_err("cannot read IPAM store '%s': %s", path, strerror(-r));
		return r;
	}
}

/* A missing store is an empty one: the first ADD of a network creates it. */
static int store_load(struct ipam *ipam, struct ipam_store **out)
{
	struct ipam_store *s;
	char *text = NULL;
	size_t len = 0;
	int fd, r;

	/* O_NONBLOCK: a FIFO in the store's place must fail the type check, not hang */
	fd = openat(ipam->dir_fd, IPAM_STORE_NAME,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->network = ipam->network;
		s->cursor = IPAM_FIRST_HOST - 1;
		*out = s;
		return 0;
	}
	if (fd < 0) {
		r = -errno;
		log_err("cannot open IPAM store '%s': %s", ipam->store_path, strerror(-r));
		return r == -ELOOP ? -EBADMSG : r;
	}
	r = read_all(fd, ipam->store_path, &text, &len);
	close(fd);
	if (r < 0)
		return r;
	r = ipam_store_parse(text, len, ipam->pod_cidr[0] ? ipam->pod_cidr : NULL,
			     ipam->store_path, out);
	free(text);
	return r;
}

static int store_save(struct ipam *ipam, const struct ipam_store *s)
{
	char *text = NULL;
	bool tmp_made = false;
	int fd = -1, r;

	r = ipam_store_format(s, &text);
	if (r < 0)
		goto cleanup;
	/* under the lock, any temp file here is a dead writer's; O_EXCL after removing it so
	 * nothing planted in its place (a FIFO, a symlink) is ever opened */
	unlinkat(ipam->dir_fd, IPAM_STORE_TMP_NAME, 0);
	fd = openat(ipam->dir_fd, IPAM_STORE_TMP_NAME,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	tmp_made = true;
	r = write_all(fd, text, strlen(text));
	if (r == 0)
		r = write_all(fd, "\n", 1);
	if (r < 0)
		goto fail;
	/* fdatasync also flushes the size, all a reader of this new file needs */
	if (fdatasync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	r = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (r < 0)
		goto fail;
	if (renameat(ipam->dir_fd, IPAM_STORE_TMP_NAME, ipam->dir_fd, IPAM_STORE_NAME) < 0) {
		r = -errno;
		goto fail;
	}
	tmp_made = false;
	/*
	 * No fsync of the folder: it would only make the rename itself survive a power
	 * loss, and it costs as much as the rest of an ADD. Losing the last rename leaves
	 * the previous complete store, and a power loss is a reboot, after which no pod is
	 * alive: the agent's boot check and CNI GC release whatever that store still holds.
	 */
	r = 0;
	goto cleanup;
fail:
	log_err("cannot write IPAM store '%s': %s", ipam->store_path, strerror(-r));
	/* -ENOSPC means a full /24 to callers, not a full disk */
	if (r == -ENOSPC || r == -EDQUOT)
		r = -EIO;
cleanup:
	if (fd >= 0)
		close(fd);
	if (tmp_made)
		unlinkat(ipam->dir_fd, IPAM_STORE_TMP_NAME, 0);
	free(text);
	return r;
}

static ssize_t store_index(const struct ipam_store *s, const char *container_id,
			   const char *ifname)
{
	for (size_t i = 0; i < s->count; i++) {
		if (strcmp(s->allocs[i].container_id, container_id) == 0 &&
		    strcmp(s->allocs[i].ifname, ifname) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static int check_attachment(const char *container_id, const char *ifname)
{
	if (!ipam_container_id_valid(container_id)) {
		log_err("container id '%.300s' is not valid (letters, digits, '_', '.', '-', "
			"starting with a letter or digit, at most 255 characters)",
			container_id ? container_id : "(null)");
		return -EINVAL;
	}
	if (!ipam_ifname_valid(ifname)) {
		log_err("interface name '%.32s' is not valid (1 to 15 printable characters, "
			"no '/', ':' or space, not '.' or '..')", ifname ? ifname : "(null)");
		return -EINVAL;
	}
	return 0;
}

int ipam_allocate(struct ipam *ipam, const char *container_id, const char *ifname,
		  struct in_addr *out)
{
	struct ipam_store *s = NULL;
	struct ipam_allocation *grown, *a;
	char addr[INET_ADDRSTRLEN];
	bool used[256] = { false };
	unsigned int host = 0, start;
	ssize_t idx;
	int r;

	if (!ipam || !out)
		return -EINVAL;
	if (!ipam->pod_cidr[0]) {
		log_err("IPAM store '%s' was opened without a pod CIDR: it can only release",
			ipam->dir);
		return -EINVAL;
	}
	r = check_attachment(container_id, ifname);
	if (r < 0)
		return r;
	r = store_lock(ipam);
	if (r < 0)
		return r;
	r = store_load(ipam, &s);
	if (r < 0)
		goto cleanup;
	idx = store_index(s, container_id, ifname);
	if (idx >= 0) {
		*out = s->allocs[idx].addr;
		r = 0;
		goto cleanup;
	}
	if (s->count >= IPAM_CAPACITY) {
		log_err("pod CIDR '%s' is full: %zu of %u addresses in use (network store '%s')",
			ipam->pod_cidr, s->count, IPAM_CAPACITY, ipam->store_path);
		r = -ENOSPC;
		goto cleanup;
	}
	for (size_t i = 0; i < s->count; i++)
		used[host_octet(s->allocs[i].addr)] = true;
	/* round robin from the cursor: a just-freed address waits a full turn */
	start = s->cursor >= IPAM_FIRST_HOST ? s->cursor - IPAM_FIRST_HOST + 1 : 0;
	for (unsigned int i = 0; i < IPAM_CAPACITY; i++) {
		unsigned int h = IPAM_FIRST_HOST + (start + i) % IPAM_CAPACITY;

		if (!used[h]) {
			host = h;
			break;
		}
	}
	if (!host) {
		r = -ENOSPC;
		goto cleanup;
	}
	grown = realloc(s->allocs, (s->count + 1) * sizeof(*s->allocs));
	if (!grown) {
		r = -ENOMEM;
		goto cleanup;
	}
	s->allocs = grown;
	a = &s->allocs[s->count++];
	memset(a, 0, sizeof(*a));
	a->addr = host_addr(ipam->network, host);
	strcpy(a->container_id, container_id);
	strcpy(a->ifname, ifname);
	a->allocated_at = time(NULL);
	s->cursor = host;
	qsort(s->allocs, s->count, sizeof(*s->allocs), alloc_cmp);
	r = store_save(ipam, s);
	if (r < 0)
		goto cleanup;
	*out = host_addr(ipam->network, host);
	inet_ntop(AF_INET, out, addr, sizeof(addr));
	log_info("allocated %s to container '%s' ifname '%s' in '%s'", addr, container_id,
		 ifname, ipam->dir);
cleanup:
	store_unlock(ipam);
	ipam_store_free(s);
	return r;
}

int ipam_release(struct ipam *ipam, const char *container_id, const char *ifname,
		 struct in_addr *released)
{
	struct ipam_store *s = NULL;
	struct in_addr freed;
	char addr[INET_ADDRSTRLEN];
	ssize_t idx;
	int r;

	if (!ipam)
		return -EINVAL;
	r = check_attachment(container_id, ifname);
	if (r < 0)
		return r;
	r = store_lock(ipam);
	if (r < 0)
		return r;
	r = store_load(ipam, &s);
	if (r < 0)
		goto cleanup;
	idx = store_index(s, container_id, ifname);
	if (idx < 0) {
		log_debug("container '%s' ifname '%s' holds no address in '%s'", container_id,
			  ifname, ipam->dir);
		r = -ENOENT;
		goto cleanup;
	}
	freed = s->allocs[idx].addr;
	memmove(&s->allocs[idx], &s->allocs[idx + 1],
		(s->count - (size_t)idx - 1) * sizeof(*s->allocs));
	s->count--;
	r = store_save(ipam, s);
	if (r < 0)
		goto cleanup;
	if (released)
		*released = freed;
	inet_ntop(AF_INET, &freed, addr, sizeof(addr));
	log_info("released %s of container '%s' ifname '%s' in '%s'", addr, container_id,
		 ifname, ipam->dir);
cleanup:
	store_unlock(ipam);
	ipam_store_free(s);
	return r;
}

/* Readers need no lock: the store is only ever replaced whole by rename. */
int ipam_find(struct ipam *ipam, const char *container_id, const char *ifname,
	      struct in_addr *out)
{
	struct ipam_store *s = NULL;
	ssize_t idx;
	int r;

	if (!ipam || !out)
		return -EINVAL;
	r = check_attachment(container_id, ifname);
	if (r < 0)
		return r;
	r = store_load(ipam, &s);
	if (r < 0)
		return r;
	idx = store_index(s, container_id, ifname);
	if (idx < 0) {
		r = -ENOENT;
		goto cleanup;
	}
	*out = s->allocs[idx].addr;
	r = 0;
cleanup:
	ipam_store_free(s);
	return r;
}

int ipam_list(struct ipam *ipam, struct ipam_allocation **out, size_t *count)
{
	struct ipam_store *s = NULL;
	int r;

	if (!ipam || !out || !count)
		return -EINVAL;
	r = store_load(ipam, &s);
	if (r < 0)
		return r;
	*out = s->count ? s->allocs : NULL;
	*count = s->count;
	if (s->count)
		s->allocs = NULL;
	ipam_store_free(s);
	return 0;
}

int ipam_gc(struct ipam *ipam, bool (*keep)(const struct ipam_allocation *a, void *arg),
	    void *arg, struct ipam_allocation **released, size_t *released_count)
{
	struct ipam_store *s = NULL;
	struct ipam_allocation *gone = NULL;
	size_t kept = 0, ngone = 0;
	int r;

	if (!ipam || !keep || (released && !released_count))
		return -EINVAL;
	r = store_lock(ipam);
	if (r < 0)
		return r;
	r = store_load(ipam, &s);
	if (r < 0)
		goto cleanup;
	gone = calloc(s->count ? s->count : 1, sizeof(*gone));
	if (!gone) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < s->count; i++) {
		if (keep(&s->allocs[i], arg))
			s->allocs[kept++] = s->allocs[i];
		else
			gone[ngone++] = s->allocs[i];
	}
	s->count = kept;
	if (ngone) {
		r = store_save(ipam, s);
		if (r < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < ngone; i++) {
		char addr[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &gone[i].addr, addr, sizeof(addr));
		log_info("gc released %s of container '%s' ifname '%s' in '%s'", addr,
			 gone[i].container_id, gone[i].ifname, ipam->dir);
	}
	if (released) {
		*released = ngone ? gone : NULL;
		*released_count = ngone;
		if (ngone)
			gone = NULL;
	}
	r = 0;
cleanup:
	store_unlock(ipam);
	free(gone);
	ipam_store_free(s);
	return r;
}

int ipam_usage(struct ipam *ipam, size_t *in_use, size_t *capacity)
{
	struct ipam_store *s = NULL;
	int r;

	if (!ipam)
		return -EINVAL;
	r = store_load(ipam, &s);
	if (r < 0)
		return r;
	if (in_use)
		*in_use = s->count;
	if (capacity)
		*capacity = IPAM_CAPACITY;
	ipam_store_free(s);
	return 0;
}
