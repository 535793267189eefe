// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "nodestate.h"

static char dir[64];

static void setup(void)
{
	log_set_stderr(0);
	strcpy(dir, "/tmp/twill-ag-ns-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/node.json", dir);
	unlink(path);
	rmdir(dir);
}

static void write_raw(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/node.json", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(nodestate, round_trip, .init = setup, .fini = teardown)
{
	struct nodestate in = { 0 }, out;

	strcpy(in.node_name, "worker-1");
	inet_pton(AF_INET, "10.244.3.0", &in.pod_net);
	in.pod_prefixlen = 24;
	inet_pton(AF_INET, "10.244.0.0", &in.cluster_net);
	in.cluster_prefixlen = 16;
	in.mtu = 1440;
	strcpy(in.wg_device, "twill0");
	strcpy(in.backend, "userspace");
	in.listen_port = 51820;
	strcpy(in.bpf_pin_dir, "/sys/fs/bpf/ag-x");
	in.dataplane_loaded = true;
	in.strict = false;
	in.last_reconcile_unix = 1763700000;
	strcpy(in.last_error, "node 'x': bad \"key\"");
	strcpy(in.last_recovery, "WireGuard device 'twill0' lost: re-created");
	in.last_recovery_unix = 1763700001;
	in.agent_pid = 4242;
	in.agent_start_unix = 1763699999;
	in.clean_exit = true;
	cr_assert_eq(nodestate_write(dir, &in), 0);
	memset(&out, 0xaa, sizeof(out));
	cr_assert_eq(nodestate_read(dir, &out), 0);
	cr_assert_str_eq(out.node_name, "worker-1");
	cr_assert_eq(out.pod_net.s_addr, in.pod_net.s_addr);
	cr_assert_eq(out.pod_prefixlen, 24);
	cr_assert_eq(out.cluster_net.s_addr, in.cluster_net.s_addr);
	cr_assert_eq(out.cluster_prefixlen, 16);
	cr_assert_eq(out.mtu, 1440);
	cr_assert_str_eq(out.wg_device, "twill0");
	cr_assert_str_eq(out.backend, "userspace");
	cr_assert_eq(out.listen_port, 51820);
	cr_assert_str_eq(out.bpf_pin_dir, "/sys/fs/bpf/ag-x");
	cr_assert(out.dataplane_loaded);
	cr_assert_not(out.strict);
	cr_assert_eq(out.last_reconcile_unix, 1763700000);
	cr_assert_str_eq(out.last_error, in.last_error);
	cr_assert_str_eq(out.last_recovery, in.last_recovery);
	cr_assert_eq(out.last_recovery_unix, 1763700001);
	cr_assert_eq(out.agent_pid, 4242);
	cr_assert_eq(out.agent_start_unix, 1763699999);
	cr_assert(out.clean_exit);
}

/* Written by an agent from before lastRecovery existed: still read, nothing recovered. */
Test(nodestate, without_recovery_fields, .init = setup, .fini = teardown)
{
	struct nodestate out;

	write_raw("{\"nodeName\":\"x\",\"podCIDR\":\"10.244.1.0/24\",\"clusterCIDR\":\"10.244.0.0/16\","
		  "\"mtu\":1440,\"wgDevice\":\"t\",\"backend\":\"kernel\",\"listenPort\":1,"
		  "\"bpfPinDir\":\"/x\",\"dataplaneLoaded\":true,\"strict\":true,\"lastReconcile\":0,"
		  "\"lastError\":\"\"}");
	cr_assert_eq(nodestate_read(dir, &out), 0);
	cr_assert_str_eq(out.last_recovery, "");
	cr_assert_eq(out.last_recovery_unix, 0);
	cr_assert_eq(out.agent_pid, 0, "no agent named: no claim about how it ended");
}

Test(nodestate, absent_is_enoent, .init = setup, .fini = teardown)
{
	struct nodestate out;

	cr_assert_eq(nodestate_read(dir, &out), -ENOENT);
}

Test(nodestate, corrupt_files_are_rejected_and_out_untouched, .init = setup, .fini = teardown)
{
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{\"nodeName\":\"x\"}",
		"{\"nodeName\":\"x\",\"podCIDR\":\"10.244.1.0/24\",\"clusterCIDR\":\"10.244.0.0/16\","
		"\"mtu\":\"1440\",\"wgDevice\":\"t\",\"backend\":\"kernel\",\"listenPort\":1,"
		"\"bpfPinDir\":\"/x\",\"dataplaneLoaded\":true,\"strict\":true,\"lastReconcile\":0,"
		"\"lastError\":\"\"}",
		"{\"nodeName\":\"x\",\"podCIDR\":\"10.244.1.0/33\",\"clusterCIDR\":\"10.244.0.0/16\","
		"\"mtu\":1440,\"wgDevice\":\"t\",\"backend\":\"kernel\",\"listenPort\":1,"
		"\"bpfPinDir\":\"/x\",\"dataplaneLoaded\":true,\"strict\":true,\"lastReconcile\":0,"
		"\"lastError\":\"\"}",
		"{\"nodeName\":\"x\",\"podCIDR\":\"10.244.1.0/24\",\"clusterCIDR\":\"10.244.0.0/16\","
		"\"mtu\":1440,\"wgDevice\":\"a-device-name-too-long\",\"backend\":\"kernel\",\"listenPort\":1,"
		"\"bpfPinDir\":\"/x\",\"dataplaneLoaded\":true,\"strict\":true,\"lastReconcile\":0,"
		"\"lastError\":\"\"}",
		"{\"nodeName\":\"x\",\"podCIDR\":\"10.244.1.0/24\",\"clusterCIDR\":\"10.244.0.0/16\","
		"\"mtu\":1440,\"wgDevice\":\"t\",\"backend\":\"kernel\",\"listenPort\":70000,"
		"\"bpfPinDir\":\"/x\",\"dataplaneLoaded\":true,\"strict\":true,\"lastReconcile\":0,"
		"\"lastError\":\"\"}",
		"{\"nodeName\":\"x\",\"podCIDR\":\"10.244.1.0/24\",\"clusterCIDR\":\"10.244.0.0/16\","
		"\"mtu\":1440,\"wgDevice\":\"t\",\"backend\":\"kernel\",\"listenPort\":1,"
		"\"bpfPinDir\":\"/x\",\"dataplaneLoaded\":true,\"strict\":true,\"lastReconcile\":0,"
		"\"lastError\":\"\",\"lastRecovery\":7,\"lastRecoveryTime\":0}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nodestate out;

		memset(&out, 0x5a, sizeof(out));
		write_raw(bad[i]);
		cr_expect_eq(nodestate_read(dir, &out), -EINVAL, "case %zu accepted", i);
		cr_expect_eq(out.node_name[0], 0x5a, "case %zu wrote out", i);
	}
}

Test(nodestate, write_replaces_atomically, .init = setup, .fini = teardown)
{
	struct nodestate in = { 0 }, out;

	strcpy(in.node_name, "a");
	cr_assert_eq(nodestate_write(dir, &in), 0);
	strcpy(in.node_name, "b");
	cr_assert_eq(nodestate_write(dir, &in), 0);
	cr_assert_eq(nodestate_read(dir, &out), 0);
	cr_assert_str_eq(out.node_name, "b");
}
