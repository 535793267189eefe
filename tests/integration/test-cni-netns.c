// SPDX-License-Identifier: Apache-2.0
/*
 * ADD when the plugin cannot return from the pod's network namespace: nothing can make
 * setns(2) back fail on demand, so this binary is linked with -Wl,--wrap=setns and
 * fails that one call (fault injection, labelled as such). Everything else is real:
 * root, a private "host" namespace per test, a pod namespace, veths, the IPAM store.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cni_plugin.h"
#include "ipam.h"
#include "log.h"
#include "netlink.h"

int __real_setns(int fd, int nstype);
int __wrap_setns(int fd, int nstype);

static ino_t fail_into;   /* setns into this namespace fails with EPERM; 0: never */

int __wrap_setns(int fd, int nstype)
{
	struct stat st;

	if (fail_into && fstat(fd, &st) == 0 && st.st_ino == fail_into) {
		errno = EPERM;
		return -1;
	}
	return __real_setns(fd, nstype);
}

static char dir[64], conf[512], pod_path[64];
static int host_fd = -1, pod_fd = -1;

static void setup(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		cr_skip_test("needs root for a private network namespace: %s", strerror(errno));
	log_set_stderr(0);
	host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(host_fd, 0);
	cr_assert_eq(unshare(CLONE_NEWNET), 0);
	pod_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(pod_fd, 0);
	cr_assert_eq(__real_setns(host_fd, CLONE_NEWNET), 0);
	snprintf(pod_path, sizeof(pod_path), "/proc/%d/fd/%d", (int)getpid(), pod_fd);
	snprintf(dir, sizeof(dir), "/tmp/twill-cni-netns-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "{\"cniVersion\":\"1.1.0\",\"name\":\"stuck\",\"type\":\"twill\","
		 "\"podCIDR\":\"10.9.6.0/24\",\"mtu\":1440,\"stateDir\":\"%s\","
		 "\"bpfPinDir\":\"%s/no-bpf\"}", dir, dir);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd) != 0)
		cr_log_warn("cannot remove %s", dir);
}

static int run(const char *cmd, struct cni_error *err)
{
	struct cni_request req = {
		.command = cmd, .container_id = "stuck1", .netns = pod_path, .ifname = "eth0",
		.config = conf, .config_len = strlen(conf),
	};
	json_t *out = NULL;
	int r = cni_plugin_run(&req, &out, err);

	json_decref(out);
	return r;
}

static bool allocated(void)
{
	struct ipam *store = NULL;
	struct in_addr a;
	int r;

	cr_assert_eq(ipam_open(dir, "stuck", "10.9.6.0/24", &store), 0);
	r = ipam_find(store, "stuck1", "eth0", &a);
	ipam_close(store);
	return r == 0;
}

Test(cni_netns, add_stuck_in_the_pod_releases_and_deletes_nothing, .init = setup,
     .fini = teardown)
{
	struct nl_link_info link;
	struct cni_error err;
	char host_name[IF_NAMESIZE];
	struct stat st;

	cr_assert_eq(fstat(host_fd, &st), 0);
	fail_into = st.st_ino;
	cr_assert_lt(run("ADD", &err), 0);
	fail_into = 0;
	cr_assert_eq(err.code, CNI_ERR_INTERNAL, "%d %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "cannot return to the host network namespace"), "%s", err.msg);

	/* still in the pod: the pod's interface is here, untouched */
	cr_assert_eq(nl_link_get("eth0", &link), 0, "ADD deleted the pod's interface");
	cr_assert_eq(__real_setns(host_fd, CLONE_NEWNET), 0);
	/* the pod keeps its address: it must not be handed out again */
	cr_assert(allocated(), "ADD released the address of a pod that still holds it");
	cni_host_veth_name("stuck1", "eth0", host_name);
	cr_assert_eq(nl_link_get(host_name, &link), 0, "the host veth is gone");

	/* the runtime's DEL after the failed ADD removes both */
	cr_assert_eq(run("DEL", &err), 0, "%s", err.msg);
	cr_assert_not(allocated());
	cr_assert_eq(nl_link_get(host_name, &link), -ENODEV);
}
