// SPDX-License-Identifier: Apache-2.0
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conflist.h"
#include "log.h"

static char dir[64];

static void setup(void)
{
	log_set_stderr(0);
	strcpy(dir, "/tmp/twill-ag-cl-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	conflist_remove(dir);
	rmdir(dir);
}

static const struct conflist_params params = {
	.pod_cidr = "10.244.1.0/24",
	.mtu = 1440,
	.state_dir = "/var/lib/twill",
	.bpf_pin_dir = "/sys/fs/bpf/twill",
	.log_file = NULL,
};

Test(conflist, content, .init = setup, .fini = teardown)
{
	char path[128];
	json_error_t err;
	json_t *root, *plugins, *tw, *pm, *bw, *vs;
	struct stat st;
	bool changed;

	cr_assert_eq(conflist_write(dir, &params, &changed), 0);
	cr_assert(changed);
	snprintf(path, sizeof(path), "%s/10-twill.conflist", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	root = json_load_file(path, 0, &err);
	cr_assert_not_null(root);
	/* libcni < 1.2 reads cniVersion; 1.2+ picks 1.1.0 from cniVersions (GC, STATUS) */
	cr_assert_str_eq(json_string_value(json_object_get(root, "cniVersion")), "1.0.0");
	vs = json_object_get(root, "cniVersions");
	cr_assert_eq(json_array_size(vs), 2);
	cr_assert_str_eq(json_string_value(json_array_get(vs, 0)), "1.0.0");
	cr_assert_str_eq(json_string_value(json_array_get(vs, 1)), "1.1.0");
	cr_assert_str_eq(json_string_value(json_object_get(root, "name")), "twill");
	plugins = json_object_get(root, "plugins");
	cr_assert_eq(json_array_size(plugins), 3);
	tw = json_array_get(plugins, 0);
	cr_assert_str_eq(json_string_value(json_object_get(tw, "type")), "twill");
	cr_assert_str_eq(json_string_value(json_object_get(tw, "podCIDR")), "10.244.1.0/24");
	cr_assert_eq(json_integer_value(json_object_get(tw, "mtu")), 1440);
	cr_assert_str_eq(json_string_value(json_object_get(tw, "stateDir")), "/var/lib/twill");
	cr_assert_str_eq(json_string_value(json_object_get(tw, "bpfPinDir")), "/sys/fs/bpf/twill");
	cr_assert_null(json_object_get(tw, "logFile"));
	cr_assert(json_is_true(json_object_get(json_object_get(tw, "capabilities"), "bandwidth")));
	pm = json_array_get(plugins, 1);
	cr_assert_str_eq(json_string_value(json_object_get(pm, "type")), "portmap");
	cr_assert(json_is_true(json_object_get(json_object_get(pm, "capabilities"), "portMappings")));
	bw = json_array_get(plugins, 2);
	cr_assert_str_eq(json_string_value(json_object_get(bw, "type")), "bandwidth");
	cr_assert(json_is_true(json_object_get(json_object_get(bw, "capabilities"), "bandwidth")));
	json_decref(root);
}

Test(conflist, log_file_and_rewrite_only_on_change, .init = setup, .fini = teardown)
{
	struct conflist_params p = params;
	char *text;
	bool changed;

	p.log_file = "/var/log/twill.log";
	cr_assert_eq(conflist_render(&p, &text), 0);
	cr_assert_not_null(strstr(text, "\"logFile\": \"/var/log/twill.log\""));
	free(text);
	cr_assert_eq(conflist_write(dir, &p, &changed), 0);
	cr_assert(changed);
	cr_assert_eq(conflist_write(dir, &p, &changed), 0);
	cr_assert_not(changed);
	p.mtu = 8940;
	cr_assert_eq(conflist_write(dir, &p, &changed), 0);
	cr_assert(changed);
	cr_assert_eq(conflist_remove(dir), 0);
	cr_assert_eq(conflist_remove(dir), -ENOENT);
}
