/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_NETNS_H
#define TWILL_NETNS_H

/* Enter a network namespace for a while and come back, the way CNI plugins do. */
struct netns_saved {
	int original_fd;
};

int netns_open(const char *path);                          /* returns an fd or -errno */
int netns_enter(int target_fd, struct netns_saved *saved);
int netns_leave(struct netns_saved *saved);

#endif
