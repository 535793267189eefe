// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipam.h"
#include "log.h"

#define CIDR "10.244.1.0/24"
#define NET "ip-net"

static char state_dir[64];
static char log_path[128];
static char store_path[256];

static void setup(void)
{
	strcpy(state_dir, "/tmp/ip-ipam-XXXXXX");
	cr_assert_not_null(mkdtemp(state_dir));
	snprintf(log_path, sizeof(log_path), "%s/test.log", state_dir);
	snprintf(store_path, sizeof(store_path), "%s/ipam/%s/store.json", state_dir, NET);
	log_set_stderr(0);
	log_set_level(TWILL_LOG_INFO);
	cr_assert_eq(log_open_file(log_path), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void teardown(void)
{
	log_close_file();
	nftw(state_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(ipam, .init = setup, .fini = teardown, .timeout = 120);

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void spit(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

static bool log_has(const char *needle)
{
	char *text = slurp(log_path, NULL);
	bool found = text && strstr(text, needle);

	free(text);
	return found;
}

static struct ipam *open_net(void)
{
	struct ipam *ipam = NULL;

	cr_assert_eq(ipam_open(state_dir, NET, CIDR, &ipam), 0);
	return ipam;
}

static const char *ntoa(struct in_addr a)
{
	static char buf[4][INET_ADDRSTRLEN];
	static int i;

	i = (i + 1) % 4;
	return inet_ntop(AF_INET, &a, buf[i], INET_ADDRSTRLEN);
}

static unsigned int host_of(struct in_addr a)
{
	return ntohl(a.s_addr) & 0xff;
}

Test(ipam, allocates_first_usable_address_and_records_time)
{
	struct ipam *ipam = open_net();
	struct ipam_allocation *list = NULL;
	struct in_addr a;
	size_t n, used, cap;
	time_t before = time(NULL), after;

	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	after = time(NULL);
	cr_assert_str_eq(ntoa(a), "10.244.1.2");
	cr_assert_eq(ipam_list(ipam, &list, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(list[0].container_id, "c1");
	cr_assert_str_eq(list[0].ifname, "eth0");
	cr_assert(list[0].allocated_at >= before && list[0].allocated_at <= after);
	cr_assert_eq(ipam_usage(ipam, &used, &cap), 0);
	cr_assert_eq(used, 1);
	cr_assert_eq(cap, 253);
	cr_assert(log_has("allocated 10.244.1.2 to container 'c1' ifname 'eth0'"));
	free(list);
	ipam_close(ipam);
}

Test(ipam, same_attachment_gets_the_same_address)
{
	struct ipam *ipam = open_net();
	struct in_addr a, b, c;
	size_t used;

	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &b), 0);
	cr_assert_eq(a.s_addr, b.s_addr);
	/* another interface of the same container is another attachment */
	cr_assert_eq(ipam_allocate(ipam, "c1", "net1", &c), 0);
	cr_assert_neq(a.s_addr, c.s_addr);
	cr_assert_eq(ipam_usage(ipam, &used, NULL), 0);
	cr_assert_eq(used, 2);
	ipam_close(ipam);
}

Test(ipam, a_second_handle_sees_the_same_store)
{
	struct ipam *one = open_net(), *two = open_net();
	struct in_addr a, b;

	cr_assert_eq(ipam_allocate(one, "c1", "eth0", &a), 0);
	cr_assert_eq(ipam_find(two, "c1", "eth0", &b), 0);
	cr_assert_eq(a.s_addr, b.s_addr);
	ipam_close(one);
	ipam_close(two);
}

Test(ipam, release_frees_the_address)
{
	struct ipam *ipam = open_net();
	struct in_addr a, r, f;
	size_t used;

	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	cr_assert_eq(ipam_release(ipam, "c1", "eth0", &r), 0);
	cr_assert_eq(a.s_addr, r.s_addr);
	cr_assert_eq(ipam_find(ipam, "c1", "eth0", &f), -ENOENT);
	cr_assert_eq(ipam_usage(ipam, &used, NULL), 0);
	cr_assert_eq(used, 0);
	ipam_close(ipam);
}

Test(ipam, release_unknown_is_enoent_and_changes_nothing)
{
	struct ipam *ipam = open_net();
	struct in_addr a;
	char *before, *after;
	size_t lb, la;

	cr_assert_eq(ipam_release(ipam, "nobody", "eth0", NULL), -ENOENT);
	cr_assert_eq(access(store_path, F_OK), -1, "no store is made for an unknown DEL");
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	before = slurp(store_path, &lb);
	cr_assert_eq(ipam_release(ipam, "c1", "eth1", NULL), -ENOENT);
	cr_assert_eq(ipam_release(ipam, "c2", "eth0", NULL), -ENOENT);
	after = slurp(store_path, &la);
	cr_assert_eq(lb, la);
	cr_assert_eq(memcmp(before, after, lb), 0);
	free(before);
	free(after);
	ipam_close(ipam);
}

Test(ipam, just_freed_address_is_not_reused_at_once)
{
	struct ipam *ipam = open_net();
	struct in_addr a, b, c;

	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	cr_assert_eq(ipam_release(ipam, "c1", "eth0", NULL), 0);
	cr_assert_eq(ipam_allocate(ipam, "c2", "eth0", &b), 0);
	cr_assert_str_eq(ntoa(a), "10.244.1.2");
	cr_assert_str_eq(ntoa(b), "10.244.1.3");
	/* even the same container id comes back to the next address, not its old one */
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &c), 0);
	cr_assert_str_eq(ntoa(c), "10.244.1.4");
	ipam_close(ipam);
}

Test(ipam, round_robin_wraps_and_skips_used_addresses)
{
	struct ipam *ipam = open_net();
	struct in_addr a;
	char id[32];

	for (int i = 0; i < 253; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		cr_assert_eq(ipam_allocate(ipam, id, "eth0", &a), 0);
		cr_assert_eq(host_of(a), (unsigned int)i + 2);
	}
	cr_assert_eq(ipam_release(ipam, "c98", "eth0", NULL), 0);  /* .100 */
	cr_assert_eq(ipam_release(ipam, "c0", "eth0", NULL), 0);   /* .2 */
	cr_assert_eq(ipam_release(ipam, "c200", "eth0", NULL), 0); /* .202 */
	cr_assert_eq(ipam_allocate(ipam, "n1", "eth0", &a), 0);
	cr_assert_str_eq(ntoa(a), "10.244.1.2", "after .254 the cursor wraps to .2");
	cr_assert_eq(ipam_allocate(ipam, "n2", "eth0", &a), 0);
	cr_assert_str_eq(ntoa(a), "10.244.1.100");
	cr_assert_eq(ipam_allocate(ipam, "n3", "eth0", &a), 0);
	cr_assert_str_eq(ntoa(a), "10.244.1.202");
	ipam_close(ipam);
}

Test(ipam, full_range_is_enospc_naming_cidr_and_count)
{
	struct ipam *ipam = open_net();
	bool seen[256] = { false };
	struct in_addr a;
	char id[32];

	for (int i = 0; i < 253; i++) {
		snprintf(id, sizeof(id), "pod-%d", i);
		cr_assert_eq(ipam_allocate(ipam, id, "eth0", &a), 0);
		cr_assert(host_of(a) >= 2 && host_of(a) <= 254, "got %s", ntoa(a));
		cr_assert_not(seen[host_of(a)], "%s handed out twice", ntoa(a));
		seen[host_of(a)] = true;
	}
	cr_assert_eq(ipam_allocate(ipam, "one-too-many", "eth0", &a), -ENOSPC);
	cr_assert(log_has("pod CIDR '10.244.1.0/24' is full: 253 of 253 addresses in use"));
	/* an existing attachment still gets its address on a full range */
	cr_assert_eq(ipam_allocate(ipam, "pod-7", "eth0", &a), 0);
	cr_assert_str_eq(ntoa(a), "10.244.1.9");
	ipam_close(ipam);
}

static const char *const valid_store =
	"{\"version\": 1, \"pod_cidr\": \"10.244.1.0/24\", \"cursor\": 3, \"allocations\": ["
	"{\"address\": \"10.244.1.2\", \"container_id\": \"a\", \"ifname\": \"eth0\","
	" \"allocated_at\": \"2026-11-21T13:05:04Z\"},"
	"{\"address\": \"10.244.1.3\", \"container_id\": \"b\", \"ifname\": \"eth0\","
	" \"allocated_at\": \"2026-11-21T13:05:05Z\"}]}";

#define ALLOC(addr, id, ifn) \
	"{\"address\": \"" addr "\", \"container_id\": \"" id "\", \"ifname\": \"" ifn \
	"\", \"allocated_at\": \"2026-11-21T13:05:04Z\"}"
#define STORE(cursor, allocs) \
	"{\"version\": 1, \"pod_cidr\": \"10.244.1.0/24\", \"cursor\": " cursor \
	", \"allocations\": [" allocs "]}"

static const struct corrupt_case {
	const char *name;
	const char *text;
	const char *reason;
} corrupt_cases[] = {
	{ "empty file", "", "the file is empty" },
	{ "garbage", "\x7f" "ELF\x02\x01\x01garbage", "not JSON" },
	{ "truncated JSON", "{\"version\": 1, \"pod_cidr\": \"10.244.1.0/24\", \"curs", "not JSON" },
	{ "trailing garbage", STORE("1", "") "}", "not JSON" },
	{ "array document", "[]", "not an object" },
	{ "version missing", "{\"pod_cidr\": \"10.244.1.0/24\", \"cursor\": 1, \"allocations\": []}",
	  "\"version\" is missing" },
	{ "version a string", "{\"version\": \"1\", \"pod_cidr\": \"10.244.1.0/24\", \"cursor\": 1,"
	  " \"allocations\": []}", "\"version\" is not an integer" },
	{ "future version", "{\"version\": 2, \"pod_cidr\": \"10.244.1.0/24\", \"cursor\": 1,"
	  " \"allocations\": []}", "version 2 is not supported" },
	{ "pod_cidr a number", "{\"version\": 1, \"pod_cidr\": 10, \"cursor\": 1,"
	  " \"allocations\": []}", "is an integer, not a string" },
	{ "pod_cidr a /16", "{\"version\": 1, \"pod_cidr\": \"10.244.0.0/16\", \"cursor\": 1,"
	  " \"allocations\": []}", "is not an IPv4 /24" },
	{ "cursor a string", STORE("\"3\"", ""), "\"cursor\"" },
	{ "cursor zero", STORE("0", ""), "\"cursor\"" },
	{ "cursor 255", STORE("255", ""), "\"cursor\"" },
	{ "allocations an object", "{\"version\": 1, \"pod_cidr\": \"10.244.1.0/24\", \"cursor\": 1,"
	  " \"allocations\": {}}", "\"allocations\" is missing or not an array" },
	{ "allocation a string", STORE("1", "\"10.244.1.2\""), "allocation 0 is a string" },
	{ "address a number", STORE("1", "{\"address\": 167510274, \"container_id\": \"a\","
	  " \"ifname\": \"eth0\", \"allocated_at\": \"2026-11-21T13:05:04Z\"}"),
	  "\"address\" is an integer, not a string" },
	{ "address missing", STORE("1", "{\"container_id\": \"a\", \"ifname\": \"eth0\","
	  " \"allocated_at\": \"2026-11-21T13:05:04Z\"}"), "has no \"address\"" },
	{ "address not an address", STORE("1", ALLOC("10.244.1.300", "a", "eth0")),
	  "is not an IPv4 address" },
	{ "address outside the CIDR", STORE("1", ALLOC("10.244.2.7", "a", "eth0")),
	  "address '10.244.2.7' is outside pod CIDR '10.244.1.0/24'" },
	{ "address of the node", STORE("1", ALLOC("10.244.1.1", "a", "eth0")), "is reserved" },
	{ "broadcast address", STORE("1", ALLOC("10.244.1.255", "a", "eth0")), "is reserved" },
	{ "duplicate addresses", STORE("1", ALLOC("10.244.1.5", "a", "eth0") ","
	  ALLOC("10.244.1.5", "b", "eth0")), "address '10.244.1.5' is allocated twice" },
	{ "duplicate attachment", STORE("1", ALLOC("10.244.1.5", "a", "eth0") ","
	  ALLOC("10.244.1.6", "a", "eth0")), "container 'a' ifname 'eth0' holds two addresses" },
	{ "bad container id", STORE("1", ALLOC("10.244.1.5", "../etc", "eth0")),
	  "is not a valid container id" },
	{ "bad ifname", STORE("1", ALLOC("10.244.1.5", "a", "eth0:1")),
	  "is not a valid interface name" },
	{ "ifname too long", STORE("1", ALLOC("10.244.1.5", "a", "eth0123456789012")),
	  "is not a valid interface name" },
	{ "bad time", STORE("1", "{\"address\": \"10.244.1.2\", \"container_id\": \"a\","
	  " \"ifname\": \"eth0\", \"allocated_at\": \"2026-02-31T00:00:00Z\"}"),
	  "is not a UTC time" },
	{ "time a number", STORE("1", "{\"address\": \"10.244.1.2\", \"container_id\": \"a\","
	  " \"ifname\": \"eth0\", \"allocated_at\": 1700000000}"),
	  "\"allocated_at\" is an integer, not a string" },
	{ "unknown key", "{\"version\": 1, \"pod_cidr\": \"10.244.1.0/24\", \"cursor\": 1,"
	  " \"allocations\": [], \"extra\": true}", "unknown key \"extra\"" },
	{ "duplicate key", "{\"version\": 1, \"pod_cidr\": \"10.244.1.0/24\", \"cursor\": 1,"
	  " \"allocations\": [], \"cursor\": 2}", "duplicate object key" },
	{ "NUL in a string", STORE("1", ALLOC("10.244.1.5", "a\\u0000b", "eth0")), "not JSON" },
};

static bool keep_none(const struct ipam_allocation *a, void *arg)
{
	(void)a;
	(void)arg;
	return false;
}

Test(ipam, corrupt_store_is_reported_and_left_byte_for_byte)
{
	char tmp[300];

	snprintf(tmp, sizeof(tmp), "%s.tmp", store_path);
	for (size_t i = 0; i < sizeof(corrupt_cases) / sizeof(corrupt_cases[0]); i++) {
		const struct corrupt_case *c = &corrupt_cases[i];
		struct ipam *ipam = open_net();
		struct ipam_allocation *list = NULL;
		struct in_addr a;
		size_t len, n, used;
		char *after, needle[512];

		spit(store_path, c->text, strlen(c->text));
		cr_expect_eq(ipam_allocate(ipam, "c1", "eth0", &a), -EBADMSG, "%s", c->name);
		/* and again: the store was not replaced by an empty one */
		cr_expect_eq(ipam_allocate(ipam, "c1", "eth0", &a), -EBADMSG, "%s", c->name);
		cr_expect_eq(ipam_release(ipam, "a", "eth0", NULL), -EBADMSG, "%s", c->name);
		cr_expect_eq(ipam_find(ipam, "a", "eth0", &a), -EBADMSG, "%s", c->name);
		cr_expect_eq(ipam_list(ipam, &list, &n), -EBADMSG, "%s", c->name);
		cr_expect_eq(ipam_usage(ipam, &used, NULL), -EBADMSG, "%s", c->name);
		cr_expect_eq(ipam_gc(ipam, keep_none, NULL, NULL, NULL), -EBADMSG, "%s", c->name);
		after = slurp(store_path, &len);
		cr_expect_eq(len, strlen(c->text), "%s: store changed size", c->name);
		cr_expect_eq(memcmp(after, c->text, len), 0, "%s: store changed", c->name);
		cr_expect_eq(access(tmp, F_OK), -1, "%s: temp file left", c->name);
		snprintf(needle, sizeof(needle), "IPAM store '%s' is corrupt: ", store_path);
		cr_expect(log_has(needle), "%s: message does not name the file", c->name);
		cr_expect(log_has(c->reason), "%s: message does not say '%s'", c->name,
			  c->reason);
		free(after);
		ipam_close(ipam);
		/* each case's messages stand alone */
		log_close_file();
		unlink(log_path);
		cr_assert_eq(log_open_file(log_path), 0);
	}
}

Test(ipam, store_that_is_not_a_file_is_refused)
{
	struct ipam *ipam = open_net();
	struct in_addr a;
	char tmp[300];

	cr_assert_eq(mkfifo(store_path, 0600), 0);
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), -EBADMSG, "a FIFO must not hang");
	cr_assert(log_has("is not a regular file"));
	unlink(store_path);
	cr_assert_eq(symlink("/etc/passwd", store_path), 0);
	cr_assert_eq(ipam_usage(ipam, NULL, NULL), -EBADMSG);
	unlink(store_path);
	cr_assert_eq(mkdir(store_path, 0700), 0);
	cr_assert_eq(ipam_find(ipam, "c1", "eth0", &a), -EBADMSG);
	rmdir(store_path);
	/* a FIFO where the next store is written is replaced, not opened */
	snprintf(tmp, sizeof(tmp), "%s.tmp", store_path);
	cr_assert_eq(mkfifo(tmp, 0600), 0);
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	cr_assert_eq(access(tmp, F_OK), -1);
	ipam_close(ipam);
}

Test(ipam, store_of_another_cidr_is_refused)
{
	struct ipam *ipam = NULL;
	struct in_addr a;
	char *after;
	size_t len;

	ipam = open_net();
	ipam_close(ipam);
	spit(store_path, valid_store, strlen(valid_store));
	cr_assert_eq(ipam_open(state_dir, NET, "10.244.2.0/24", &ipam), 0);
	cr_assert_eq(ipam_allocate(ipam, "c", "eth0", &a), -EEXIST);
	cr_assert_eq(ipam_usage(ipam, NULL, NULL), -EEXIST);
	cr_assert(log_has("was made for pod CIDR '10.244.1.0/24', but pod CIDR "
			  "'10.244.2.0/24' is configured"));
	after = slurp(store_path, &len);
	cr_assert_eq(len, strlen(valid_store));
	cr_assert_eq(memcmp(after, valid_store, len), 0);
	free(after);
	ipam_close(ipam);
}

Test(ipam, valid_hand_written_store_is_used)
{
	struct ipam *ipam;
	struct in_addr a;

	ipam = open_net();
	spit(store_path, valid_store, strlen(valid_store));
	cr_assert_eq(ipam_find(ipam, "b", "eth0", &a), 0);
	cr_assert_str_eq(ntoa(a), "10.244.1.3");
	cr_assert_eq(ipam_allocate(ipam, "c", "eth0", &a), 0);
	cr_assert_str_eq(ntoa(a), "10.244.1.4", "allocation continues after the cursor");
	ipam_close(ipam);
}

Test(ipam, stale_temp_file_is_ignored_and_replaced)
{
	struct ipam *ipam = open_net();
	struct in_addr a;
	char tmp[300];

	snprintf(tmp, sizeof(tmp), "%s.tmp", store_path);
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	spit(tmp, "{\"torn", 6);
	cr_assert_eq(ipam_find(ipam, "c1", "eth0", &a), 0);
	cr_assert_eq(ipam_allocate(ipam, "c2", "eth0", &a), 0);
	cr_assert_eq(access(tmp, F_OK), -1);
	cr_assert_eq(ipam_find(ipam, "c1", "eth0", &a), 0);
	ipam_close(ipam);
}

/* A store that cannot be written (here: file size limit) stays the previous store. */
static int child_write_fails(void)
{
	struct rlimit small = { .rlim_cur = 600, .rlim_max = 600 };
	struct ipam *ipam = NULL;
	struct in_addr a;
	char id[16];
	int r = 0, i;

	signal(SIGXFSZ, SIG_IGN);
	if (ipam_open(state_dir, NET, CIDR, &ipam) < 0 || setrlimit(RLIMIT_FSIZE, &small) < 0)
		return 10;
	for (i = 0; i < 20 && r == 0; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		a.s_addr = 0x01020304;
		r = ipam_allocate(ipam, id, "eth0", &a);
	}
	ipam_close(ipam);
	if (r != -EFBIG)
		return 11;
	if (a.s_addr != 0x01020304)
		return 13; /* *out is set only on success */
	return i > 1 ? 0 : 12;
}

Test(ipam, failed_write_leaves_the_previous_store)
{
	struct ipam_allocation *list = NULL;
	struct ipam *ipam;
	char tmp[300], last[16];
	size_t n;
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(child_write_fails());
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	snprintf(tmp, sizeof(tmp), "%s.tmp", store_path);
	cr_assert_eq(access(tmp, F_OK), -1, "temp file left after a failed write");
	ipam = open_net();
	cr_assert_eq(ipam_list(ipam, &list, &n), 0);
	cr_assert_gt(n, 0);
	cr_assert_lt(n, 20);
	/* every allocation that returned 0 is there, in order: c0 .. c(n-1) */
	snprintf(last, sizeof(last), "c%zu", n - 1);
	cr_assert_str_eq(list[n - 1].container_id, last);
	free(list);
	ipam_close(ipam);
}

Test(ipam, removed_lock_file_is_recreated)
{
	struct ipam *ipam = open_net();
	struct in_addr a;
	char lock[300];

	snprintf(lock, sizeof(lock), "%s/ipam/%s/lock", state_dir, NET);
	cr_assert_eq(unlink(lock), 0);
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	cr_assert_eq(access(lock, F_OK), 0);
	ipam_close(ipam);
}

/* After a node's pod CIDR changes, DEL of an old pod still releases its address. */
Test(ipam, existing_store_is_opened_for_its_own_cidr_and_only_releases)
{
	static const char old_store[] =
		"{\"version\": 1, \"pod_cidr\": \"10.244.7.0/24\", \"cursor\": 3, \"allocations\": ["
		"{\"address\": \"10.244.7.2\", \"container_id\": \"a\", \"ifname\": \"eth0\","
		" \"allocated_at\": \"2026-11-21T13:05:04Z\"},"
		"{\"address\": \"10.244.7.3\", \"container_id\": \"b\", \"ifname\": \"eth0\","
		" \"allocated_at\": \"2026-11-21T13:05:05Z\"}]}";
	struct ipam *ipam = NULL;
	struct ipam_allocation *list = NULL;
	struct in_addr a;
	char *before, *after;
	size_t n, len;

	cr_assert_eq(ipam_open_existing(state_dir, NET, &ipam), -ENOENT);
	cr_assert_null(ipam);
	cr_assert_eq(access(store_path, F_OK), -1, "ipam_open_existing created something");
	ipam = open_net();
	ipam_close(ipam);
	spit(store_path, old_store, strlen(old_store));
	/* the configured CIDR (10.244.1.0/24) refuses it, as before */
	ipam = open_net();
	cr_assert_eq(ipam_release(ipam, "b", "eth0", NULL), -EEXIST);
	ipam_close(ipam);

	cr_assert_eq(ipam_open_existing(state_dir, NET, &ipam), 0);
	cr_assert_eq(ipam_allocate(ipam, "new", "eth0", &a), -EINVAL);
	cr_assert(log_has("opened without a pod CIDR"));
	cr_assert_eq(ipam_find(ipam, "b", "eth0", &a), 0);
	cr_assert_str_eq(ntoa(a), "10.244.7.3");
	cr_assert_eq(ipam_release(ipam, "b", "eth0", &a), 0);
	cr_assert_str_eq(ntoa(a), "10.244.7.3");
	cr_assert_eq(ipam_release(ipam, "b", "eth0", NULL), -ENOENT);
	ipam_close(ipam);
	/* the store keeps its CIDR and the other allocation */
	cr_assert_eq(ipam_open(state_dir, NET, "10.244.7.0/24", &ipam), 0);
	cr_assert_eq(ipam_list(ipam, &list, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(list[0].container_id, "a");
	cr_assert_str_eq(ntoa(list[0].addr), "10.244.7.2");
	free(list);
	ipam_close(ipam);

	/* a corrupt store is reported, never rewritten */
	spit(store_path, "{\"version\": 1, \"pod_cidr\"", 26);
	before = slurp(store_path, &len);
	cr_assert_eq(ipam_open_existing(state_dir, NET, &ipam), 0);
	cr_assert_eq(ipam_release(ipam, "a", "eth0", NULL), -EBADMSG);
	ipam_close(ipam);
	after = slurp(store_path, NULL);
	cr_assert_str_eq(after, before);
	free(before);
	free(after);
}

/* One stuck process holding the lock must not block every ADD forever. */
Test(ipam, lock_held_elsewhere_times_out)
{
	struct ipam *ipam = open_net();
	struct in_addr a;
	char lock[300];
	int64_t t0, ms;
	struct timespec ts;
	int fd;

	snprintf(lock, sizeof(lock), "%s/ipam/%s/lock", state_dir, NET);
	/* another open file description: flock conflicts even within one process */
	fd = open(lock, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	ipam_set_lock_wait(ipam, 300);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), -ETIMEDOUT);
	cr_assert_eq(ipam_release(ipam, "c1", "eth0", NULL), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ms = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - t0;
	cr_assert(ms >= 600 && ms < 3000, "two waits took %lld ms", (long long)ms);
	cr_assert(log_has("is still held by another process after 300 ms"));
	cr_assert(log_has(lock), "the message names the lock file");
	/* released elsewhere: the next call goes through at once */
	cr_assert_eq(flock(fd, LOCK_UN), 0);
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0", &a), 0);
	close(fd);
	ipam_close(ipam);
}

static const struct cidr_case {
	const char *cidr;
	bool valid;
} cidr_cases[] = {
	{ "10.244.1.0/24", true },
	{ "192.168.255.0/24", true },
	{ "0.0.0.0/24", true },
	{ "10.244.1.0/16", false },
	{ "10.244.0.0/23", false },
	{ "10.244.1.0/25", false },
	{ "10.244.1.5/24", false },
	{ "10.244.1.0", false },
	{ "10.244.1.0/", false },
	{ "10.244.1.0/024", false },
	{ "10.244.1.0/24 ", false },
	{ " 10.244.1.0/24", false },
	{ "010.244.1.0/24", false },
	{ "10.244.1/24", false },
	{ "256.244.1.0/24", false },
	{ "10.244.1.0/24/24", false },
	{ "fd00:1::/24", false },
	{ "", false },
	{ "a.b.c.d/24", false },
	{ "10.244.1.0/24xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", false },
};

Test(ipam, pod_cidr_must_be_an_ipv4_slash_24)
{
	for (size_t i = 0; i < sizeof(cidr_cases) / sizeof(cidr_cases[0]); i++) {
		const struct cidr_case *c = &cidr_cases[i];
		struct ipam *ipam = NULL;
		char needle[128];
		int r = ipam_open(state_dir, NET, c->cidr, &ipam);

		if (c->valid) {
			cr_expect_eq(r, 0, "'%s' should be accepted", c->cidr);
		} else {
			cr_expect_eq(r, -EINVAL, "'%s' should be refused", c->cidr);
			cr_expect_null(ipam, "'%s': *out set on failure", c->cidr);
			snprintf(needle, sizeof(needle), "pod CIDR '%s' is not a /24", c->cidr);
			cr_expect(log_has(needle), "no message for '%s'", c->cidr);
		}
		ipam_close(ipam);
	}
	cr_assert_eq(ipam_open(state_dir, NET, NULL, &(struct ipam *){ NULL }), -EINVAL);
}

static const struct name_case {
	const char *name;
	bool network, container, ifname;
} name_cases[] = {
	{ "twill", true, true, true },
	{ "k8s-pod.net_1", true, true, true },
	{ "eth0", true, true, true },
	{ "0123456789abcdef", true, true, false }, /* 16 characters: too long for an ifname */
	{ "", false, false, false },
	{ ".", false, false, false },
	{ "..", false, false, false },
	{ "a/b", false, false, false },
	{ "../x", false, false, false },
	{ "a..b", false, true, true },
	{ "-lead", false, false, true },
	{ "_lead", false, false, true },
	{ "has space", false, false, false },
	{ "eth0:1", false, false, false },
	{ "tab\there", false, false, false },
	{ "caf\xc3\xa9", false, false, false },
	{ "new\nline", false, false, false },
};

Test(ipam, names_are_validated_as_the_cni_spec_says)
{
	char longname[300];

	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];

		cr_expect_eq(ipam_network_name_valid(c->name), c->network, "network '%s'", c->name);
		cr_expect_eq(ipam_container_id_valid(c->name), c->container, "id '%s'", c->name);
		cr_expect_eq(ipam_ifname_valid(c->name), c->ifname, "ifname '%s'", c->name);
	}
	memset(longname, 'a', sizeof(longname));
	longname[255] = '\0';
	cr_expect(ipam_container_id_valid(longname));
	cr_expect_not(ipam_network_name_valid(longname));
	longname[255] = 'a';
	longname[256] = '\0';
	cr_expect_not(ipam_container_id_valid(longname));
	cr_expect_not(ipam_container_id_valid(NULL));
	cr_expect_not(ipam_ifname_valid(NULL));
	cr_expect_not(ipam_network_name_valid(NULL));
}

Test(ipam, bad_names_are_refused_with_a_message)
{
	struct ipam *ipam = NULL;
	struct in_addr a;

	cr_assert_eq(ipam_open(state_dir, "../escape", CIDR, &ipam), -EINVAL);
	cr_assert_null(ipam);
	cr_assert(log_has("network name '../escape' is not valid"));
	ipam = open_net();
	cr_assert_eq(ipam_allocate(ipam, "bad id", "eth0", &a), -EINVAL);
	cr_assert(log_has("container id 'bad id' is not valid"));
	cr_assert_eq(ipam_allocate(ipam, "c1", "eth0/x", &a), -EINVAL);
	cr_assert(log_has("interface name 'eth0/x' is not valid"));
	cr_assert_eq(ipam_release(ipam, "", "eth0", NULL), -EINVAL);
	cr_assert_eq(access(store_path, F_OK), -1);
	ipam_close(ipam);
}

static bool keep_even(const struct ipam_allocation *a, void *arg)
{
	int *calls = arg;

	(*calls)++;
	return (host_of(a->addr) % 2) == 0;
}

Test(ipam, gc_releases_everything_not_kept)
{
	struct ipam *ipam = open_net();
	struct ipam_allocation *released = NULL, *list = NULL;
	struct in_addr a;
	size_t nrel, n;
	int calls = 0;
	char id[16];

	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "c%d", i);
		cr_assert_eq(ipam_allocate(ipam, id, "eth0", &a), 0); /* .2 to .7 */
	}
	cr_assert_eq(ipam_gc(ipam, keep_even, &calls, &released, &nrel), 0);
	cr_assert_eq(calls, 6);
	cr_assert_eq(nrel, 3);
	for (size_t i = 0; i < nrel; i++)
		cr_assert_eq(host_of(released[i].addr) % 2, 1);
	cr_assert_str_eq(released[0].container_id, "c1");
	cr_assert_eq(ipam_list(ipam, &list, &n), 0);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(host_of(list[i].addr) % 2, 0);
	free(released);
	free(list);
	/* nothing to release: no store update, an empty answer */
	calls = 0;
	cr_assert_eq(ipam_gc(ipam, keep_even, &calls, &released, &nrel), 0);
	cr_assert_eq(nrel, 0);
	cr_assert_null(released);
	cr_assert_eq(ipam_gc(ipam, keep_none, NULL, NULL, NULL), 0);
	cr_assert_eq(ipam_usage(ipam, &n, NULL), 0);
	cr_assert_eq(n, 0);
	ipam_close(ipam);
}

Test(ipam, store_formats_back_to_what_it_parses)
{
	struct ipam_store *s = NULL, *t = NULL;
	char *text = NULL, *again = NULL;

	cr_assert_eq(ipam_store_parse(valid_store, strlen(valid_store), CIDR, "test", &s), 0);
	cr_assert_eq(s->count, 2);
	cr_assert_eq(s->cursor, 3);
	cr_assert_eq(s->allocs[0].allocated_at, 1795266304);
	cr_assert_eq(ipam_store_format(s, &text), 0);
	cr_assert_eq(ipam_store_parse(text, strlen(text), NULL, "test", &t), 0);
	cr_assert_eq(ipam_store_format(t, &again), 0);
	cr_assert_str_eq(text, again);
	cr_assert_eq(memcmp(s->allocs, t->allocs, s->count * sizeof(*s->allocs)), 0);
	cr_assert_eq(ipam_store_parse(text, strlen(text), "10.9.9.0/24", "test", &t), -EEXIST);
	ipam_store_free(s);
	ipam_store_free(t);
	free(text);
	free(again);
}

/* Children must open their own handle: a lock is per open file, shared across fork. */
static int child_allocate(int child, int count)
{
	struct ipam *ipam = NULL;
	struct in_addr a;
	char id[32];

	if (ipam_open(state_dir, NET, CIDR, &ipam) < 0)
		return 1;
	for (int i = 0; i < count; i++) {
		snprintf(id, sizeof(id), "mp%d-%d", child, i);
		if (ipam_allocate(ipam, id, "eth0", &a) < 0)
			return 2;
	}
	ipam_close(ipam);
	return 0;
}

Test(ipam, concurrent_processes_never_share_an_address)
{
	enum { CHILDREN = 16, EACH = 10 };
	struct ipam_allocation *list = NULL;
	bool seen[256] = { false };
	struct ipam *ipam;
	pid_t pids[CHILDREN];
	size_t n;
	int status;

	for (int c = 0; c < CHILDREN; c++) {
		pids[c] = fork();
		cr_assert_geq(pids[c], 0);
		if (pids[c] == 0)
			_exit(child_allocate(c, EACH));
	}
	for (int c = 0; c < CHILDREN; c++) {
		cr_assert_eq(waitpid(pids[c], &status, 0), pids[c]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", c);
	}
	ipam = open_net();
	cr_assert_eq(ipam_list(ipam, &list, &n), 0);
	cr_assert_eq(n, CHILDREN * EACH);
	for (size_t i = 0; i < n; i++) {
		cr_assert_not(seen[host_of(list[i].addr)], "%s twice", ntoa(list[i].addr));
		seen[host_of(list[i].addr)] = true;
	}
	for (int c = 0; c < CHILDREN; c++) {
		for (int i = 0; i < EACH; i++) {
			struct in_addr a;
			char id[32];

			snprintf(id, sizeof(id), "mp%d-%d", c, i);
			cr_assert_eq(ipam_find(ipam, id, "eth0", &a), 0, "%s lost", id);
		}
	}
	free(list);
	ipam_close(ipam);
}

/*
 * Kill test. Each child runs a fixed sequence, allocate k then release k-3, and logs
 * every operation that returned with one append-mode write. SIGKILL lands at random
 * moments; afterwards the store must load, and each child's entries must be exactly
 * what its log says, give or take the one operation in flight when it died.
 */
enum { KILL_ROUNDS = 12, KILL_CHILDREN = 4, KILL_STEPS = 400, KILL_LAG = 3 };

static void kill_child(int round, int child, const char *logfile)
{
	struct ipam *ipam = NULL;
	struct in_addr a;
	char id[32], line[64];
	int fd = open(logfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || ipam_open(state_dir, NET, CIDR, &ipam) < 0)
		_exit(1);
	for (int k = 0; k < KILL_STEPS; k++) {
		snprintf(id, sizeof(id), "k%dx%d-%d", round, child, k);
		if (ipam_allocate(ipam, id, "eth0", &a) < 0)
			_exit(2);
		snprintf(line, sizeof(line), "A %d %u\n", k, host_of(a));
		if (write(fd, line, strlen(line)) < 0)
			_exit(3);
		if (k >= KILL_LAG) {
			snprintf(id, sizeof(id), "k%dx%d-%d", round, child, k - KILL_LAG);
			if (ipam_release(ipam, id, "eth0", NULL) < 0)
				_exit(4);
			snprintf(line, sizeof(line), "R %d\n", k - KILL_LAG);
			if (write(fd, line, strlen(line)) < 0)
				_exit(5);
		}
	}
	_exit(0);
}

struct child_view {
	int host[KILL_STEPS]; /* per step: logged address while held, 0 otherwise */
	char next_op;         /* 'A', 'R' or 0 when the sequence completed */
	int next_k;
};

static void read_child_log(const char *logfile, struct child_view *v)
{
	FILE *f = fopen(logfile, "r");
	char op = 0;
	int k = -1, last_k = -1;
	unsigned int host;
	char line[64];

	memset(v, 0, sizeof(*v));
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "A %d %u", &k, &host) == 2) {
			v->host[k] = (int)host;
			op = 'A';
		} else if (sscanf(line, "R %d", &k) == 1) {
			v->host[k] = 0;
			op = 'R';
		}
		last_k = k;
	}
	if (f)
		fclose(f);
	if (op == 0) {
		v->next_op = 'A';
		v->next_k = 0;
	} else if (op == 'A' && last_k >= KILL_LAG) {
		v->next_op = 'R';
		v->next_k = last_k - KILL_LAG;
	} else {
		v->next_op = 'A';
		v->next_k = op == 'A' ? last_k + 1 : last_k + KILL_LAG + 1;
	}
	if (v->next_op == 'A' && v->next_k >= KILL_STEPS)
		v->next_op = 0;
}

static int list_find(const struct ipam_allocation *list, size_t n, const char *id,
		     struct in_addr *a)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].container_id, id) == 0 && strcmp(list[i].ifname, "eth0") == 0) {
			*a = list[i].addr;
			return 0;
		}
	}
	return -ENOENT;
}

Test(ipam, sigkill_at_any_moment_leaves_a_consistent_store, .timeout = 300)
{
	struct ipam_allocation *list = NULL;
	struct ipam *ipam;
	unsigned int seed = (unsigned int)time(NULL);
	size_t n, matched = 0, completed = 0, killed = 0;
	char logs[KILL_ROUNDS][KILL_CHILDREN][300];
	bool seen[256] = { false };

	cr_log_info("kill test seed %u", seed);
	for (int r = 0; r < KILL_ROUNDS; r++) {
		pid_t pids[KILL_CHILDREN];
		struct timespec lag;
		int status;

		for (int c = 0; c < KILL_CHILDREN; c++) {
			snprintf(logs[r][c], sizeof(logs[r][c]), "%s/kill-%d-%d.log", state_dir, r,
				 c);
			pids[c] = fork();
			cr_assert_geq(pids[c], 0);
			if (pids[c] == 0)
				kill_child(r, c, logs[r][c]);
		}
		for (int c = 0; c < KILL_CHILDREN; c++) {
			lag.tv_sec = 0;
			lag.tv_nsec = (long)(rand_r(&seed) % 40000) * 1000;
			nanosleep(&lag, NULL);
			kill(pids[c], SIGKILL);
		}
		for (int c = 0; c < KILL_CHILDREN; c++) {
			cr_assert_eq(waitpid(pids[c], &status, 0), pids[c]);
			if (WIFSIGNALED(status))
				killed++;
			else
				cr_assert_eq(WEXITSTATUS(status), 0, "child %d.%d failed", r, c);
		}
	}
	cr_log_info("kill test: %zu of %d children killed", killed,
		    KILL_ROUNDS * KILL_CHILDREN);

	ipam = open_net();
	cr_assert_eq(ipam_list(ipam, &list, &n), 0, "the store must load after the kills");
	for (size_t i = 0; i < n; i++) {
		cr_assert_not(seen[host_of(list[i].addr)], "%s twice", ntoa(list[i].addr));
		seen[host_of(list[i].addr)] = true;
	}
	for (int r = 0; r < KILL_ROUNDS; r++) {
		for (int c = 0; c < KILL_CHILDREN; c++) {
			struct child_view v;

			read_child_log(logs[r][c], &v);
			completed += v.next_op == 0;
			for (int k = 0; k < KILL_STEPS; k++) {
				struct in_addr a;
				char id[32];
				int got;

				snprintf(id, sizeof(id), "k%dx%d-%d", r, c, k);
				got = list_find(list, n, id, &a);
				if (got == 0)
					matched++;
				if (k == v.next_k && v.next_op == 'A')
					continue; /* in flight: either outcome is fine */
				if (k == v.next_k && v.next_op == 'R') {
					cr_assert(got == -ENOENT || (int)host_of(a) == v.host[k],
						  "%s: address changed during release", id);
					continue;
				}
				if (v.host[k]) {
					cr_assert_eq(got, 0, "%s: logged as held, not in store", id);
					cr_assert_eq((int)host_of(a), v.host[k], "%s: moved", id);
				} else {
					cr_assert_eq(got, -ENOENT, "%s: not held, yet in store", id);
				}
			}
		}
	}
	cr_assert_eq(matched, n, "the store holds entries no child made");
	cr_log_info("kill test: %zu children completed, %zu addresses left", completed, n);
	/* every address comes back: release all, then the whole /24 is allocatable */
	cr_assert_eq(ipam_gc(ipam, keep_none, NULL, NULL, NULL), 0);
	for (int i = 0; i < 253; i++) {
		struct in_addr a;
		char id[16];

		snprintf(id, sizeof(id), "after%d", i);
		cr_assert_eq(ipam_allocate(ipam, id, "eth0", &a), 0);
	}
	free(list);
	ipam_close(ipam);
}
