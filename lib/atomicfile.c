// SPDX-License-Identifier: Apache-2.0
/*
 * Whole-file I/O. Readers (the CNI plugin, twillctl, the container runtime watching the CNI folder)
 * must see either the old file or the new one, never a prefix: write a sibling
 * temporary file, fsync it, rename it over the target, fsync the folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	bool sock = true;

	while (len > 0) {
		ssize_t n = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);

		if (n < 0 && sock && errno == ENOTSOCK) {
			sock = false;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int file_read_all_fd(int fd, size_t max, char **buf, size_t *len)
{
	struct stat st;
	char *b = NULL;
	size_t n = 0, cap;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	/* room for one byte more than its size, so a file that grew is caught, and the NUL */
	cap = (size_t)st.st_size + 1;
	b = malloc(cap + 1);
	if (!b)
		return -ENOMEM;
	for (;;) {
		ssize_t got = read(fd, b + n, cap - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			goto cleanup;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n == cap) {
			ret = -EAGAIN;
			goto cleanup;
		}
	}
	b[n] = '\0';
	*buf = b;
	if (len)
		*len = n;
	b = NULL;
	ret = 0;
cleanup:
	free(b);
	return ret;
}

int file_read_all(const char *path, size_t max, char **buf, size_t *len)
{
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	ret = file_read_all_fd(fd, max, buf, len);
	close(fd);
	return ret;
}

int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd, dfd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) < 0) {
		ret = -errno;
		goto cleanup;
	}
	ret = write_all(fd, data, len);
	if (ret < 0)
		goto cleanup;
	if (fsync(fd) < 0) {
		ret = -errno;
		goto cleanup;
	}
	if (rename(tmp, path) < 0) {
		ret = -errno;
		goto cleanup;
	}
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
cleanup:
	close(fd);
	if (ret < 0)
		unlink(tmp);
	return ret;
}
