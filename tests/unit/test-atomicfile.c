// SPDX-License-Identifier: Apache-2.0
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"

static char dir[] = "/tmp/twill-dedup-afXXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static void path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

Test(atomicfile, round_trip, .init = setup, .fini = teardown)
{
	static const char *const texts[] = { "hello\n", "", "{\"a\": 1}" };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char path[256], *buf = NULL;
		size_t len = 99, n = strlen(texts[i]);

		path_of(path, sizeof(path), "f");
		cr_assert_eq(atomic_write_file(path, texts[i], n, 0600), 0);
		/* a cap of exactly the size is enough */
		cr_assert_eq(file_read_all(path, n, &buf, &len), 0, "'%s'", texts[i]);
		cr_assert_eq(len, n);
		cr_assert_str_eq(buf, texts[i]);
		free(buf);
	}
}

Test(atomicfile, read_refusals, .init = setup, .fini = teardown)
{
	char path[256], *buf = (char *)0x1;
	size_t len = 99;

	path_of(path, sizeof(path), "f");
	cr_assert_eq(atomic_write_file(path, "hello\n", 6, 0600), 0);
	cr_assert_eq(file_read_all(path, 5, &buf, &len), -EFBIG);
	path_of(path, sizeof(path), "missing");
	cr_assert_eq(file_read_all(path, 100, &buf, &len), -ENOENT);
	cr_assert_eq(file_read_all(dir, 100, &buf, &len), -EINVAL);
	/* a FIFO with no writer would block a plain open(2) forever */
	path_of(path, sizeof(path), "fifo");
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(file_read_all(path, 100, &buf, &len), -EINVAL);
	cr_assert_eq(buf, (char *)0x1);
	cr_assert_eq(len, 99);
}

Test(atomicfile, write_all_pipe_and_socket)
{
	int p[2], s[2];
	char big[200000], got[16];

	memset(big, 'x', sizeof(big));
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write_all(p[1], "abc", 3), 0);
	cr_assert_eq(read(p[0], got, sizeof(got)), 3);
	close(p[0]);
	close(p[1]);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
	cr_assert_eq(write_all(s[0], "abc", 3), 0);
	cr_assert_eq(read(s[1], got, sizeof(got)), 3);
	close(s[1]);
	/* a gone peer is an error, not a SIGPIPE that kills the test */
	cr_assert_eq(write_all(s[0], big, sizeof(big)), -EPIPE);
	close(s[0]);
}
