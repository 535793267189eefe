// SPDX-License-Identifier: Apache-2.0
/*
 * The IPAM store loader on arbitrary bytes. Beyond "no crash", a store that parses must
 * hold the loader's promises (distinct addresses inside the /24, no reserved address,
 * valid names) and format back into text that parses to the same store: otherwise the
 * next write would change allocations that running pods hold. A store that parses is
 * also put on disk (tmpfs when there is one) and served from: one allocation must pick
 * a free address, or say the /24 is full, and releasing it must give the same store.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipam.h"
#include "log.h"

#define FUZZ_CIDR "10.244.1.0/24"
#define FUZZ_NET "fuzz"

static char state_dir[64];
static char store_path[128];
static struct ipam *ipam;

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-ipam-store: broken promise: %s\n", what);
		abort();
	}
}

static void check_store(const struct ipam_store *s)
{
	uint32_t net = ntohl(s->network.s_addr);

	check((net & 0xff) == 0, "network has host bits");
	check(s->cursor >= 1 && s->cursor <= 254, "cursor out of range");
	check(s->count <= 253, "more than 253 allocations");
	for (size_t i = 0; i < s->count; i++) {
		const struct ipam_allocation *a = &s->allocs[i];
		uint32_t addr = ntohl(a->addr.s_addr);

		check((addr & ~0xffu) == net, "address outside the /24");
		check((addr & 0xff) >= 2 && (addr & 0xff) <= 254, "reserved address");
		check(i == 0 || ntohl(s->allocs[i - 1].addr.s_addr) < addr,
		      "addresses not sorted or not distinct");
		check(ipam_container_id_valid(a->container_id), "invalid container id");
		check(ipam_ifname_valid(a->ifname), "invalid ifname");
	}
}

static void remove_state(void)
{
	char path[160];

	ipam_close(ipam);
	unlink(store_path);
	snprintf(path, sizeof(path), "%s/ipam/%s/lock", state_dir, FUZZ_NET);
	unlink(path);
	snprintf(path, sizeof(path), "%s/ipam/%s", state_dir, FUZZ_NET);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/ipam", state_dir);
	rmdir(path);
	rmdir(state_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(0);
	strcpy(state_dir, "/dev/shm/ip-fuzz-ipam-XXXXXX");
	if (!mkdtemp(state_dir)) {
		strcpy(state_dir, "/tmp/ip-fuzz-ipam-XXXXXX");
		check(mkdtemp(state_dir) != NULL, "cannot make a state folder");
	}
	check(ipam_open(state_dir, FUZZ_NET, FUZZ_CIDR, &ipam) == 0, "cannot open a store");
	snprintf(store_path, sizeof(store_path), "%s/ipam/%s/store.json", state_dir, FUZZ_NET);
	atexit(remove_state);
	return 0;
}

static bool is_probe(const struct ipam_allocation *a)
{
	return strcmp(a->container_id, "fuzz-new") == 0 && strcmp(a->ifname, "eth0") == 0;
}

/* The round-robin promise: the first free host after the cursor, wrapping .254 -> .2. */
static unsigned int next_free(const struct ipam_store *s)
{
	bool used[256] = { false };

	for (size_t i = 0; i < s->count; i++)
		used[ntohl(s->allocs[i].addr.s_addr) & 0xff] = true;
	for (unsigned int k = 1; k <= 253; k++) {
		unsigned int h = 2 + (s->cursor - 2 + k + 253) % 253;

		if (!used[h])
			return h;
	}
	return 0;
}

static void serve(const uint8_t *data, size_t size, const struct ipam_store *s)
{
	struct ipam_allocation *list = NULL;
	const struct ipam_allocation *held = NULL;
	struct in_addr a, b;
	size_t n = 0, j = 0;
	int fd, r;

	for (size_t i = 0; i < s->count; i++)
		if (is_probe(&s->allocs[i]))
			held = &s->allocs[i];
	fd = open(store_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	check(fd >= 0 && write(fd, data, size) == (ssize_t)size, "cannot write the store");
	close(fd);
	r = ipam_allocate(ipam, "fuzz-new", "eth0", &a);
	if (r == -ENOSPC) {
		check(s->count == 253 && !held, "ENOSPC with free addresses");
		goto cleanup;
	}
	check(r == 0, "allocate failed on a valid store");
	if (held)
		check(held->addr.s_addr == a.s_addr, "an existing attachment got another address");
	else
		check((ntohl(a.s_addr) & 0xff) == next_free(s), "not the next free address");
	check(ipam_release(ipam, "fuzz-new", "eth0", &b) == 0 && a.s_addr == b.s_addr,
	      "release of a fresh allocation failed");
	check(ipam_list(ipam, &list, &n) == 0, "the store does not list");
	check(n == s->count - (held ? 1 : 0), "allocate + release changed the count");
	for (size_t i = 0; i < s->count; i++) {
		if (is_probe(&s->allocs[i]))
			continue;
		check(list[j].addr.s_addr == s->allocs[i].addr.s_addr &&
		      strcmp(list[j].container_id, s->allocs[i].container_id) == 0 &&
		      strcmp(list[j].ifname, s->allocs[i].ifname) == 0 &&
		      list[j].allocated_at == s->allocs[i].allocated_at,
		      "allocate + release changed other allocations");
		j++;
	}
	free(list);
cleanup:
	unlink(store_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipam_store *s = NULL, *any = NULL, *t = NULL;
	char *text = NULL, *again = NULL;
	int r, r_any;

	r = ipam_store_parse((const char *)data, size, FUZZ_CIDR, "fuzz", &s);
	r_any = ipam_store_parse((const char *)data, size, NULL, "fuzz", &any);
	check(r <= 0 && r_any <= 0, "positive return");
	check((r == 0) == (s != NULL), "*out set on failure or unset on success");
	/* without a configured CIDR only the CIDR check can be skipped */
	check(r != 0 || r_any == 0, "a store valid for its CIDR fails without one");
	if (r_any == 0)
		check_store(any);
	if (r == 0) {
		check_store(s);
		check(ipam_store_format(s, &text) == 0, "a parsed store does not format");
		check(ipam_store_parse(text, strlen(text), FUZZ_CIDR, "fuzz", &t) == 0,
		      "a formatted store does not parse");
		check(t->count == s->count && t->cursor == s->cursor &&
		      t->network.s_addr == s->network.s_addr, "round trip changed the store");
		for (size_t i = 0; i < s->count; i++) {
			check(t->allocs[i].addr.s_addr == s->allocs[i].addr.s_addr &&
			      strcmp(t->allocs[i].container_id, s->allocs[i].container_id) == 0 &&
			      strcmp(t->allocs[i].ifname, s->allocs[i].ifname) == 0 &&
			      t->allocs[i].allocated_at == s->allocs[i].allocated_at,
			      "round trip changed an allocation");
		}
		check(ipam_store_format(t, &again) == 0 && strcmp(text, again) == 0,
		      "formatting is not stable");
		serve(data, size, s);
	}
	free(text);
	free(again);
	ipam_store_free(s);
	ipam_store_free(any);
	ipam_store_free(t);
	return 0;
}
