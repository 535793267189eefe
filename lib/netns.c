// SPDX-License-Identifier: Apache-2.0
/*
 * Network namespace switching for a single-threaded plugin: setns(2) changes only
 * the calling thread, and every netlink socket binds to the namespace current when
 * it was opened (netlink.c reopens its socket when the namespace changed).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "log.h"
#include "netns.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

int netns_open(const char *path)
{
	struct statfs sfs;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		log_debug("netns '%s': %s", path, strerror(-r));
		return r;
	}
	/* a bind-mounted nsfs file (ip netns) or /proc/PID/ns/net (also nsfs) */
	if (fstatfs(fd, &sfs) < 0) {
		r = -errno;
		goto fail;
	}
	if (sfs.f_type != NSFS_MAGIC && sfs.f_type != PROC_SUPER_MAGIC) {
		log_err("netns '%s' is not a network namespace file", path);
		r = -EINVAL;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}

int netns_enter(int target_fd, struct netns_saved *saved)
{
	int orig, r;

	orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0) {
		r = -errno;
		log_err("cannot open the current network namespace: %s", strerror(-r));
		return r;
	}
	if (setns(target_fd, CLONE_NEWNET) < 0) {
		r = -errno;
		log_err("setns into network namespace fd %d: %s", target_fd, strerror(-r));
		close(orig);
		return r;
	}
	saved->original_fd = orig;
	return 0;
}

int netns_leave(struct netns_saved *saved)
{
	int r = 0;

	if (saved->original_fd < 0)
		return 0;
	if (setns(saved->original_fd, CLONE_NEWNET) < 0) {
		r = -errno;
		log_err("cannot return to the original network namespace: %s", strerror(-r));
	}
	close(saved->original_fd);
	saved->original_fd = -1;
	return r;
}
