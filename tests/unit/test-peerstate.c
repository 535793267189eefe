// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "peerstate.h"

static char dir[64];

static void setup(void)
{
	log_set_stderr(0);
	strcpy(dir, "/tmp/twill-ps-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	peerstate_remove(dir);
	rmdir(dir);
}

static void write_raw(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/peers.json", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(peerstate, round_trip_v4_v6_and_none, .init = setup, .fini = teardown)
{
	struct rc_peer in[3] = { 0 }, *out = NULL;
	size_t n = 0;

	/* written out of key order: read back sorted */
	in[0].public_key[0] = 3;
	strcpy(in[0].name, "n3");
	in[0].endpoint.addr4.sin_family = AF_INET;
	in[0].endpoint.addr4.sin_port = htons(51820);
	inet_pton(AF_INET, "198.18.0.3", &in[0].endpoint.addr4.sin_addr);
	in[1].public_key[0] = 1;
	strcpy(in[1].name, "n1");
	in[1].endpoint.addr6.sin6_family = AF_INET6;
	in[1].endpoint.addr6.sin6_port = htons(51821);
	inet_pton(AF_INET6, "2001:db8::1", &in[1].endpoint.addr6.sin6_addr);
	in[2].public_key[0] = 2;
	strcpy(in[2].name, "n2 \"quoted\"");
	cr_assert_eq(peerstate_write(dir, in, 3), 0);
	cr_assert_eq(peerstate_read(dir, &out, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(out[0].name, "n1");
	cr_assert(rc_endpoint_equal(&out[0].endpoint, &in[1].endpoint));
	cr_assert_str_eq(out[1].name, "n2 \"quoted\"");
	cr_assert_eq(out[1].endpoint.addr.sa_family, 0);
	cr_assert_str_eq(out[2].name, "n3");
	cr_assert(rc_endpoint_equal(&out[2].endpoint, &in[0].endpoint));
	cr_assert_eq(memcmp(out[2].public_key, in[0].public_key, WG_KEY_LEN), 0);
	free(out);
	cr_assert_eq(peerstate_write(dir, NULL, 0), 0);
	cr_assert_eq(peerstate_read(dir, &out, &n), 0);
	cr_assert_eq(n, 0);
	free(out);
}

Test(peerstate, absent_is_enoent, .init = setup, .fini = teardown)
{
	struct rc_peer *out = NULL;
	size_t n = 7;

	cr_assert_eq(peerstate_read(dir, &out, &n), -ENOENT);
	cr_assert_null(out);
	cr_assert_eq(n, 7);
	cr_assert_eq(peerstate_remove(dir), 0);
}

Test(peerstate, files_that_are_not_ours_are_refused, .init = setup, .fini = teardown)
{
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{\"peers\":{}}",
		"{\"peers\":[1]}",
		"{\"peers\":[{\"name\":\"a\",\"publicKey\":\"bm90IGEga2V5\","
		"\"endpoint\":{\"address\":\"\",\"port\":0}}]}",
		"{\"peers\":[{\"name\":\"a\",\"publicKey\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
		"\"endpoint\":{\"address\":\"not-an-ip\",\"port\":1}}]}",
		"{\"peers\":[{\"name\":\"a\",\"publicKey\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
		"\"endpoint\":{\"address\":\"1.2.3.4\",\"port\":65536}}]}",
		"{\"peers\":[{\"name\":\"a\",\"publicKey\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}",
		/* one key twice */
		"{\"peers\":[{\"name\":\"a\",\"publicKey\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
		"\"endpoint\":{\"address\":\"\",\"port\":0}},{\"name\":\"b\",\"publicKey\":"
		"\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"endpoint\":{\"address\":\"\",\"port\":0}}]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rc_peer *out = NULL;
		size_t n = 0;

		write_raw(bad[i]);
		cr_assert_eq(peerstate_read(dir, &out, &n), -EINVAL, "case %zu accepted: %s", i, bad[i]);
		cr_assert_null(out);
	}
}
