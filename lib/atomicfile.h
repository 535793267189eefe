/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_ATOMICFILE_H
#define TWILL_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with data via a temporary file in the same folder, fsync and rename. */
int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode);
/* All of buf, through short writes and EINTR; on a socket a gone peer is -EPIPE, no SIGPIPE. */
int write_all(int fd, const void *buf, size_t len);
/*
 * A whole regular file of at most max bytes, NUL-terminated (*len leaves the NUL out).
 * -EINVAL when not a regular file, -EFBIG above max, -EAGAIN when it grew while read.
 */
int file_read_all_fd(int fd, size_t max, char **buf, size_t *len);
/* The same by path; a FIFO in the file's place is refused, never waited on. */
int file_read_all(const char *path, size_t max, char **buf, size_t *len);

#endif
