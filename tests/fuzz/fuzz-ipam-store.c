// SPDX-License-Identifier: Apache-2.0
/*
 * The IPAM store loader on arbitrary bytes. Beyond "no crash", a store that parses must
 * hold the loader's promises (distinct addresses inside the /24, no reserved address,
 * valid names) and format back into text that parses to the same store: otherwise the
 * next write would change allocations that running pods hold.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipam.h"
#include "log.h"

#define FUZZ_CIDR "10.244.1.0/24"

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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(0);
	return 0;
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
	}
	free(text);
	free(again);
	ipam_store_free(s);
	ipam_store_free(any);
	ipam_store_free(t);
	return 0;
}
