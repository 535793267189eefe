// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: <state_dir>/peers.json, the endpoints the agent last applied, read
 * back by a restarted agent. peerstate.h reads only from a folder, so each input is
 * written to peers.json in a private folder (tmpfs when there is one) and read back.
 * Beyond "no crash": peers that read back are sorted by key with no key twice, have
 * terminated names and an endpoint of a known family, and write back and read again
 * to the same peers.
 */
#include <string.h>
#include <sys/socket.h>

#include "fuzz-statedir.h"
#include "log.h"
#include "peerstate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_stderr(0);
	fuzz_statedir_init("fuzz-peerstate", "peers.json");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rc_peer *peers = NULL, *again = NULL;
	size_t n = 0, m = 0;
	int r;

	fuzz_statedir_write(data, size);
	r = peerstate_read(fuzz_dir, &peers, &n);
	check(r <= 0, "positive return");
	if (r == 0) {
		for (size_t i = 0; i < n; i++) {
			sa_family_t f = peers[i].endpoint.addr.sa_family;

			check(memchr(peers[i].name, '\0', sizeof(peers[i].name)) != NULL,
			      "unterminated name");
			check(f == 0 || f == AF_INET || f == AF_INET6, "unknown endpoint family");
			check(i == 0 || memcmp(peers[i - 1].public_key, peers[i].public_key,
					       sizeof(peers[i].public_key)) < 0,
			      "peers not sorted by key, or a key twice");
		}
		check(peerstate_write(fuzz_dir, peers, n) == 0, "cannot write back what was read");
		check(peerstate_read(fuzz_dir, &again, &m) == 0 && m == n, "written back, read differently");
		for (size_t i = 0; i < n; i++)
			check(memcmp(peers[i].public_key, again[i].public_key,
				     sizeof(peers[i].public_key)) == 0 &&
			      strcmp(peers[i].name, again[i].name) == 0,
			      "a peer changed through a write and a read");
		free(again);
	}
	free(peers);
	unlink(fuzz_file);
	return 0;
}
