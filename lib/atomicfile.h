/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_ATOMICFILE_H
#define TWILL_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with data via a temporary file in the same folder, fsync and rename. */
int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode);

#endif
