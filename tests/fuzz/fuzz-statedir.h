/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For targets whose parser reads only from a state folder (node.json, peers.json): one
 * private folder per run (tmpfs when there is one), each input written to the file and
 * read back through the module's own folder API.
 */
#ifndef TWILL_FUZZ_STATEDIR_H
#define TWILL_FUZZ_STATEDIR_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *fuzz_target;
static char fuzz_dir[64];
static char fuzz_file[96];

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "%s: broken promise: %s\n", fuzz_target, what);
		abort();
	}
}

static void fuzz_statedir_remove(void)
{
	unlink(fuzz_file);
	rmdir(fuzz_dir);
}

static void fuzz_statedir_init(const char *target, const char *file)
{
	fuzz_target = target;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "/dev/shm/ip-%s-XXXXXX", target);
	if (!mkdtemp(fuzz_dir)) {
		snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/ip-%s-XXXXXX", target);
		check(mkdtemp(fuzz_dir) != NULL, "cannot make a folder");
	}
	snprintf(fuzz_file, sizeof(fuzz_file), "%s/%s", fuzz_dir, file);
	atexit(fuzz_statedir_remove);
}

static void fuzz_statedir_write(const uint8_t *data, size_t size)
{
	int fd = open(fuzz_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	check(fd >= 0, "cannot write the state file");
	check(size == 0 || write(fd, data, size) == (ssize_t)size, "short write");
	close(fd);
}

#endif
