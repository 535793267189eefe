// SPDX-License-Identifier: Apache-2.0
/*
 * Loads, pins, attaches and reads the BPF dataplane. The only module that includes the
 * generated skeleton: everybody else goes through the pinned objects.
 */
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "log.h"
#include "twill.skel.h"

#define BPFFS_ROOT "/sys/fs/bpf"
#define CT_LOOKUP_KFUNC "bpf_skb_ct_lookup"
#define CT_MODULE_BTF "/sys/kernel/btf/nf_conntrack"
/* Escape hatch and test knob: load without the conntrack lookup (no Services support). */
#define CT_DISABLE_ENV "TWILL_NO_CONNTRACK"

enum { DP_MAP_ROUTES, DP_MAP_ENDPOINTS, DP_MAP_CONFIG, DP_MAP_COUNTERS, DP_MAP_MAX };
enum { DP_PROG_POD, DP_PROG_WG, DP_PROG_GUARD, DP_PROG_MAX };

static const char *const map_names[DP_MAP_MAX] = {
	[DP_MAP_ROUTES] = TWILL_MAP_ROUTES,
	[DP_MAP_ENDPOINTS] = TWILL_MAP_ENDPOINTS,
	[DP_MAP_CONFIG] = TWILL_MAP_CONFIG,
	[DP_MAP_COUNTERS] = TWILL_MAP_COUNTERS,
};

static const char *const prog_names[DP_PROG_MAX] = {
	[DP_PROG_POD] = TWILL_PROG_POD,
	[DP_PROG_WG] = TWILL_PROG_WG,
	[DP_PROG_GUARD] = TWILL_PROG_GUARD,
};

static const char *const reason_names[TWILL_R_MAX] = {
	[TWILL_R_TO_WIREGUARD] = "to_wireguard",
	[TWILL_R_TO_LOCAL_POD] = "to_local_pod",
	[TWILL_R_WG_TO_POD] = "wg_to_pod",
	[TWILL_R_PASS_STACK] = "pass_stack",
	[TWILL_R_DROP_NO_ROUTE] = "drop_no_route",
	[TWILL_R_DROP_ESCAPED] = "drop_escaped",
	[TWILL_R_DROP_MALFORMED] = "drop_malformed",
	[TWILL_R_DROP_REDIRECT] = "drop_redirect",
	[TWILL_R_PASS_NAT] = "pass_nat",
};

struct datapath {
	struct twill *skel; /* NULL when opened from the pins; then the fds are ours */
	int map_fd[DP_MAP_MAX];
	int prog_fd[DP_PROG_MAX];
};

const char *datapath_reason_name(unsigned int reason)
{
	return reason < TWILL_R_MAX ? reason_names[reason] : "unknown";
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	/*
	 * Netlink's extended acks ("Exclusivity flag on" for a clsact that exists) are
	 * expected on the paths we handle by return code: keep them out of warnings.
	 */
	if (level == LIBBPF_WARN && strstr(buf, "Kernel error message"))
		level = LIBBPF_DEBUG;
	switch (level) {
	case LIBBPF_WARN:
		log_warn("%s", buf);
		break;
	case LIBBPF_INFO:
		log_info("%s", buf);
		break;
	default:
		log_debug("%s", buf);
		break;
	}
	return 0;
}

static struct datapath *datapath_alloc(void)
{
	struct datapath *dp = calloc(1, sizeof(*dp));
	int i;

	if (!dp)
		return NULL;
	for (i = 0; i < DP_MAP_MAX; i++)
		dp->map_fd[i] = -1;
	for (i = 0; i < DP_PROG_MAX; i++)
		dp->prog_fd[i] = -1;
	return dp;
}

void datapath_close(struct datapath *dp)
{
	int i;

	if (!dp)
		return;
	if (dp->skel) {
		twill__destroy(dp->skel);
	} else {
		for (i = 0; i < DP_MAP_MAX; i++)
			if (dp->map_fd[i] >= 0)
				close(dp->map_fd[i]);
		for (i = 0; i < DP_PROG_MAX; i++)
			if (dp->prog_fd[i] >= 0)
				close(dp->prog_fd[i]);
	}
	free(dp);
}

static int pin_path(char *buf, size_t len, const char *pin_dir, const char *prefix,
		    const char *name)
{
	int n = snprintf(buf, len, "%s/%s%s", pin_dir, prefix, name);

	if (n < 0 || (size_t)n >= len) {
		log_err("BPF pin folder '%s' is too long", pin_dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int check_pin_dir(const char *pin_dir)
{
	if (!pin_dir || pin_dir[0] != '/' || strlen(pin_dir) > PATH_MAX - 64) {
		log_err("BPF pin folder '%s' is not an absolute path of reasonable length",
			pin_dir ? pin_dir : "(null)");
		return -EINVAL;
	}
	return 0;
}

/* bpffs is not mounted on a fresh machine; pins under /sys/fs/bpf need it. */
static int ensure_bpffs(const char *pin_dir)
{
	size_t root_len = strlen(BPFFS_ROOT);
	struct statfs st;

	if (strncmp(pin_dir, BPFFS_ROOT, root_len) != 0 ||
	    (pin_dir[root_len] != '/' && pin_dir[root_len] != '\0'))
		return 0;
	if (statfs(BPFFS_ROOT, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", BPFFS_ROOT, "bpf", 0, NULL) < 0) {
		int err = -errno;

		log_err("cannot mount bpffs at '%s': %s", BPFFS_ROOT, strerror(errno));
		return err;
	}
	log_info("mounted bpffs at '%s'", BPFFS_ROOT);
	return 0;
}

static int mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t i, len = strlen(dir);

	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			int err = -errno;

			log_err("cannot create BPF pin folder '%s': %s", path, strerror(errno));
			return err;
		}
		path[i] = dir[i];
	}
	return 0;
}

/*
 * libbpf refuses to load when a pinned map's shape differs from the program's (an
 * upgrade that changed a layout): drop such a pin so the load recreates the map. The
 * agent refills routes and endpoints; only the counters start again from zero.
 */
static void drop_incompatible_pin(struct bpf_map *map, const char *path)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	    info.type == bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.max_entries == bpf_map__max_entries(map) &&
	    info.map_flags == bpf_map__map_flags(map)) {
		close(fd);
		return;
	}
	close(fd);
	log_warn("pinned map '%s' does not match this version's layout: recreating it", path);
	unlink(path);
}

/* Pin under a temporary name, then rename over: a CNI ADD never sees a missing pin. */
static int pin_prog_replace(int fd, const char *pin_dir, const char *name)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int err;

	err = pin_path(tmp, sizeof(tmp), pin_dir, "tmp_", name);
	if (err)
		return err;
	err = pin_path(path, sizeof(path), pin_dir, "", name);
	if (err)
		return err;
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp) < 0) {
		err = -errno;
		log_err("cannot pin BPF program '%s' at '%s': %s", name, tmp, strerror(errno));
		return err;
	}
	if (rename(tmp, path) < 0) {
		err = -errno;
		log_err("cannot move pinned BPF program '%s' to '%s': %s", tmp, path,
			strerror(errno));
		unlink(tmp);
		return err;
	}
	return 0;
}

/*
 * Whether the kernel has the conntrack kfuncs (nf_conntrack built in, or its module
 * loaded): without them the programs skip the lookup, and Services between pods break.
 */
static bool conntrack_kfuncs_present(void)
{
	struct btf *vmlinux, *mod = NULL;
	const char *off = getenv(CT_DISABLE_ENV);
	bool found = false;

	if (off && off[0] && strcmp(off, "0") != 0) {
		log_warn("%s='%s': loading the BPF programs without the conntrack lookup",
			 CT_DISABLE_ENV, off);
		return false;
	}
	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux) {
		log_warn("cannot read the kernel's BTF: no conntrack lookup in the dataplane");
		return false;
	}
	found = btf__find_by_name_kind(vmlinux, CT_LOOKUP_KFUNC, BTF_KIND_FUNC) > 0;
	if (!found && access(CT_MODULE_BTF, R_OK) == 0) {
		mod = btf__parse_split(CT_MODULE_BTF, vmlinux);
		found = mod && btf__find_by_name_kind(mod, CT_LOOKUP_KFUNC, BTF_KIND_FUNC) > 0;
	}
	if (!found)
		log_warn("kernel has no '%s' (nf_conntrack not loaded): Kubernetes Services "
			 "between pods will not work", CT_LOOKUP_KFUNC);
	btf__free(mod);
	btf__free(vmlinux);
	return found;
}

static int skel_open_load(struct datapath *dp, const char *pin_dir, bool conntrack)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int err, i;

	dp->skel = twill__open();
	if (!dp->skel) {
		err = errno ? -errno : -ENOMEM;
		log_err("cannot open the BPF object: %s", strerror(-err));
		return err;
	}
	dp->skel->rodata->twill_conntrack = conntrack;
	for (i = 0; i < DP_MAP_MAX; i++) {
		map = bpf_object__find_map_by_name(dp->skel->obj, map_names[i]);
		if (!map) {
			log_err("BPF object has no map '%s'", map_names[i]);
			return -ENOENT;
		}
		err = pin_path(path, sizeof(path), pin_dir, "", map_names[i]);
		if (err)
			return err;
		drop_incompatible_pin(map, path);
		/* libbpf reuses the map pinned there, or creates and pins it at load. */
		err = bpf_map__set_pin_path(map, path);
		if (err) {
			log_err("cannot set pin path '%s' for map '%s': %s", path, map_names[i],
				strerror(-err));
			return err;
		}
	}
	err = twill__load(dp->skel);
	if (err)
		log_err("cannot load the BPF programs (pin folder '%s'%s): %s", pin_dir,
			conntrack ? ", with the conntrack lookup" : "", strerror(-err));
	return err;
}

int datapath_load_and_pin(const char *pin_dir, struct datapath **out)
{
	struct datapath *dp = NULL;
	struct bpf_program *prog;
	bool conntrack;
	int err, i;

	err = check_pin_dir(pin_dir);
	if (err)
		return err;
	libbpf_set_print(libbpf_log);
	err = ensure_bpffs(pin_dir);
	if (err)
		return err;
	err = mkdir_p(pin_dir);
	if (err)
		return err;

	dp = datapath_alloc();
	if (!dp)
		return -ENOMEM;
	conntrack = conntrack_kfuncs_present();
	err = skel_open_load(dp, pin_dir, conntrack);
	if (err && conntrack) {
		/* The kfuncs exist but this kernel refuses them for TC: keep the fast path. */
		log_warn("cannot load the BPF programs with the conntrack lookup: loading them "
			 "without it, Kubernetes Services between pods will not work");
		twill__destroy(dp->skel);
		dp->skel = NULL;
		conntrack = false;
		err = skel_open_load(dp, pin_dir, conntrack);
	}
	if (err)
		goto cleanup;
	for (i = 0; i < DP_MAP_MAX; i++)
		dp->map_fd[i] = bpf_object__find_map_fd_by_name(dp->skel->obj, map_names[i]);
	for (i = 0; i < DP_PROG_MAX; i++) {
		prog = bpf_object__find_program_by_name(dp->skel->obj, prog_names[i]);
		if (!prog) {
			err = -ENOENT;
			log_err("BPF object has no program '%s'", prog_names[i]);
			goto cleanup;
		}
		dp->prog_fd[i] = bpf_program__fd(prog);
		err = pin_prog_replace(dp->prog_fd[i], pin_dir, prog_names[i]);
		if (err)
			goto cleanup;
	}
	log_info("BPF dataplane loaded and pinned in '%s' (Services support %s)", pin_dir,
		 conntrack ? "on: NATed connections take the stack" : "off: no conntrack kfuncs");
	*out = dp;
	dp = NULL;
	err = 0;
cleanup:
	datapath_close(dp);
	return err;
}

int datapath_open_pinned(const char *pin_dir, struct datapath **out)
{
	struct datapath *dp = NULL;
	char path[PATH_MAX];
	int err, i;

	err = check_pin_dir(pin_dir);
	if (err)
		return err;
	libbpf_set_print(libbpf_log);
	dp = datapath_alloc();
	if (!dp)
		return -ENOMEM;
	for (i = 0; i < DP_MAP_MAX + DP_PROG_MAX; i++) {
		bool is_map = i < DP_MAP_MAX;
		const char *name = is_map ? map_names[i] : prog_names[i - DP_MAP_MAX];
		int fd;

		err = pin_path(path, sizeof(path), pin_dir, "", name);
		if (err)
			goto cleanup;
		fd = bpf_obj_get(path);
		if (fd < 0) {
			err = -errno;
			if (err == -ENOENT)
				log_debug("no pinned BPF object at '%s'", path);
			else
				log_err("cannot open pinned BPF object '%s': %s", path,
					strerror(errno));
			goto cleanup;
		}
		if (is_map)
			dp->map_fd[i] = fd;
		else
			dp->prog_fd[i - DP_MAP_MAX] = fd;
	}
	*out = dp;
	dp = NULL;
	err = 0;
cleanup:
	datapath_close(dp);
	return err;
}

int datapath_unpin(const char *pin_dir)
{
	char path[PATH_MAX];
	int err, i;

	err = check_pin_dir(pin_dir);
	if (err)
		return err;
	for (i = 0; i < DP_MAP_MAX + DP_PROG_MAX; i++) {
		const char *name = i < DP_MAP_MAX ? map_names[i] : prog_names[i - DP_MAP_MAX];
		int j;

		for (j = 0; j < 2; j++) {
			err = pin_path(path, sizeof(path), pin_dir, j ? "tmp_" : "", name);
			if (err)
				return err;
			if (unlink(path) < 0 && errno != ENOENT) {
				err = -errno;
				log_err("cannot remove pin '%s': %s", path, strerror(errno));
				return err;
			}
		}
	}
	if (rmdir(pin_dir) < 0 && errno != ENOENT) {
		err = -errno;
		log_err("cannot remove BPF pin folder '%s': %s", pin_dir, strerror(errno));
		return err;
	}
	return 0;
}

/*
 * Read back from the loaded program itself (its .rodata), so the answer is what the
 * kernel runs, whoever loaded it and whatever the environment says now.
 */
int datapath_services_active(struct datapath *dp, bool *active)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info), ids[16], i;
	int err = -ENOENT;

	if (!dp || !active)
		return -EINVAL;
	if (dp->skel) {
		*active = dp->skel->rodata->twill_conntrack != 0;
		return 0;
	}
	info.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
	info.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(dp->prog_fd[DP_PROG_POD], &info, &len) < 0)
		return -errno;
	for (i = 0; i < info.nr_map_ids && i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct twill__rodata rodata;
		struct bpf_map_info minfo = { 0 };
		__u32 mlen = sizeof(minfo), zero = 0;
		int fd = bpf_map_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		/* The kernel keeps 15 characters of "twill.rodata". */
		if (bpf_obj_get_info_by_fd(fd, &minfo, &mlen) == 0 &&
		    strstr(minfo.name, ".rodata") && minfo.value_size >= sizeof(rodata) &&
		    minfo.value_size <= 4096) {
			char value[4096];

			if (bpf_map_lookup_elem(fd, &zero, value) == 0) {
				memcpy(&rodata, value, sizeof(rodata));
				*active = rodata.twill_conntrack != 0;
				err = 0;
			}
		}
		close(fd);
		if (err == 0)
			break;
	}
	return err;
}

int datapath_prog_fd(const struct datapath *dp, const char *prog_name)
{
	int i;

	for (i = 0; dp && prog_name && i < DP_PROG_MAX; i++)
		if (strcmp(prog_names[i], prog_name) == 0)
			return dp->prog_fd[i];
	return -ENOENT;
}

static int tc_attach(struct datapath *dp, int prog, int ifindex, enum bpf_tc_attach_point point)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TWILL_TC_HANDLE,
			    .priority = TWILL_TC_PRIORITY, .flags = BPF_TC_F_REPLACE);
	const char *dir = point == BPF_TC_EGRESS ? "egress" : "ingress";
	bool created = false;
	int err;

	if (!dp || ifindex <= 0)
		return -EINVAL;
	opts.prog_fd = dp->prog_fd[prog];
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		log_err("cannot create the clsact hook on ifindex %d: %s", ifindex,
			strerror(-err));
		return err;
	}
	created = err == 0;
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		log_err("cannot attach '%s' to TC %s of ifindex %d: %s", prog_names[prog], dir,
			ifindex, strerror(-err));
		if (created) {
			/* The qdisc is ours and empty: leave the link as we found it. */
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&hook);
		}
		return err;
	}
	log_debug("attached '%s' to TC %s of ifindex %d", prog_names[prog], dir, ifindex);
	return 0;
}

int datapath_attach_pod(struct datapath *dp, int host_ifindex)
{
	return tc_attach(dp, DP_PROG_POD, host_ifindex, BPF_TC_INGRESS);
}

int datapath_attach_wg(struct datapath *dp, int wg_ifindex)
{
	return tc_attach(dp, DP_PROG_WG, wg_ifindex, BPF_TC_INGRESS);
}

int datapath_attach_guard(struct datapath *dp, int underlay_ifindex)
{
	return tc_attach(dp, DP_PROG_GUARD, underlay_ifindex, BPF_TC_EGRESS);
}

/*
 * Removes only Twill's filter; the clsact qdisc stays, since other tools' filters may
 * hang on it and after a restart we cannot know who created it.
 */
int datapath_detach(int ifindex, bool egress)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TWILL_TC_HANDLE,
			    .priority = TWILL_TC_PRIORITY);
	int err;

	if (ifindex <= 0)
		return -EINVAL;
	err = bpf_tc_detach(&hook, &opts);
	if (err == -EINVAL)
		err = -ENOENT; /* no clsact qdisc at all */
	if (err && err != -ENOENT && err != -ENODEV)
		log_err("cannot detach the twill filter from TC %s of ifindex %d: %s",
			egress ? "egress" : "ingress", ifindex, strerror(-err));
	return err;
}

int datapath_query_attached(int ifindex, bool egress, char *prog_name, size_t len)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TWILL_TC_HANDLE,
			    .priority = TWILL_TC_PRIORITY);
	struct bpf_prog_info info = { 0 };
	__u32 info_len = sizeof(info);
	const char *name;
	int err, fd, i;

	if (ifindex <= 0 || !prog_name || len == 0)
		return -EINVAL;
	err = bpf_tc_query(&hook, &opts);
	if (err == -EINVAL)
		err = -ENOENT;
	if (err)
		return err;
	fd = bpf_prog_get_fd_by_id(opts.prog_id);
	if (fd < 0)
		return -errno;
	err = bpf_obj_get_info_by_fd(fd, &info, &info_len);
	close(fd);
	if (err)
		return err;
	/* The kernel keeps 15 characters of a program name: give back the full one. */
	name = info.name;
	for (i = 0; i < DP_PROG_MAX; i++)
		if (info.name[0] && strncmp(prog_names[i], info.name, strlen(info.name)) == 0)
			name = prog_names[i];
	if ((size_t)snprintf(prog_name, len, "%s", name) >= len)
		return -ENOSPC;
	return 0;
}

/* With BPF_NOEXIST, -EEXIST answers the caller's question and is not logged. */
static int map_update_flags(struct datapath *dp, int map, const void *key, const void *value,
			    __u64 flags)
{
	if (!dp || !key || !value)
		return -EINVAL;
	if (bpf_map_update_elem(dp->map_fd[map], key, value, flags) < 0) {
		int err = -errno;

		if (err != -EEXIST || flags != BPF_NOEXIST)
			log_err("cannot update BPF map '%s': %s", map_names[map], strerror(-err));
		return err;
	}
	return 0;
}

static int map_update(struct datapath *dp, int map, const void *key, const void *value)
{
	return map_update_flags(dp, map, key, value, BPF_ANY);
}

static int map_delete(struct datapath *dp, int map, const void *key)
{
	if (!dp || !key)
		return -EINVAL;
	if (bpf_map_delete_elem(dp->map_fd[map], key) < 0) {
		int err = -errno;

		if (err != -ENOENT)
			log_err("cannot delete from BPF map '%s': %s", map_names[map],
				strerror(errno));
		return err;
	}
	return 0;
}

static int map_lookup(struct datapath *dp, int map, const void *key, void *value)
{
	if (!dp || !key || !value)
		return -EINVAL;
	if (bpf_map_lookup_elem(dp->map_fd[map], key, value) < 0)
		return -errno;
	return 0;
}

/* Collects every entry; entries deleted while we walk are skipped. */
static int map_list(struct datapath *dp, int map, size_t key_size, size_t value_size,
		    void **keys_out, void **values_out, size_t *count_out)
{
	char key[64], next[64], value[64];
	char *keys = NULL, *values = NULL, *tmp;
	size_t count = 0, cap = 0;
	void *prev = NULL;
	int err;

	if (!dp || !keys_out || !values_out || !count_out)
		return -EINVAL;
	if (key_size > sizeof(key) || value_size > sizeof(value))
		return -EOVERFLOW;
	for (;;) {
		if (bpf_map_get_next_key(dp->map_fd[map], prev, next) < 0) {
			err = -errno;
			if (err == -ENOENT)
				break;
			log_err("cannot walk BPF map '%s': %s", map_names[map], strerror(errno));
			goto cleanup;
		}
		memcpy(key, next, key_size);
		prev = key;
		if (bpf_map_lookup_elem(dp->map_fd[map], key, value) < 0)
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			tmp = realloc(keys, cap * key_size);
			if (!tmp) {
				err = -ENOMEM;
				goto cleanup;
			}
			keys = tmp;
			tmp = realloc(values, cap * value_size);
			if (!tmp) {
				err = -ENOMEM;
				goto cleanup;
			}
			values = tmp;
		}
		memcpy(keys + count * key_size, key, key_size);
		memcpy(values + count * value_size, value, value_size);
		count++;
	}
	*keys_out = keys;
	*values_out = values;
	*count_out = count;
	keys = values = NULL;
	err = 0;
cleanup:
	free(keys);
	free(values);
	return err;
}

int datapath_config_set(struct datapath *dp, const struct twill_config *cfg)
{
	__u32 zero = 0;

	if (cfg && cfg->cluster_prefixlen > 32) {
		log_err("cluster prefix length %u is not 0..32", cfg->cluster_prefixlen);
		return -EINVAL;
	}
	return map_update(dp, DP_MAP_CONFIG, &zero, cfg);
}

int datapath_config_get(struct datapath *dp, struct twill_config *cfg)
{
	__u32 zero = 0;

	return map_lookup(dp, DP_MAP_CONFIG, &zero, cfg);
}

static __u32 prefix_mask(__u32 prefixlen)
{
	return prefixlen == 0 ? 0 : htonl(0xffffffffu << (32 - prefixlen));
}

int datapath_route_set(struct datapath *dp, const struct twill_route_key *key,
		       const struct twill_route_value *value)
{
	struct twill_route_value v, old;
	struct twill_route_key k;
	int ret;

	if (!key || key->prefixlen > 32) {
		log_err("route prefix length %u is not 0..32", key ? key->prefixlen : 0);
		return -EINVAL;
	}
	if (value && value->ifindex == 0) {
		log_err("route has no device (ifindex 0)");
		return -EINVAL;
	}
	if (!dp || !value)
		return -EINVAL;
	k.prefixlen = key->prefixlen;
	k.addr = key->addr & prefix_mask(key->prefixlen);
	/*
	 * since says how long this CIDR's peer has been configured (twillctl waits that
	 * long before calling a peer that never shook hands stale). A new key gets now; an
	 * update of an existing one (a new endpoint) keeps its time.
	 */
	v = *value;
	v.since = (__u32)time(NULL);
	ret = map_update_flags(dp, DP_MAP_ROUTES, &k, &v, BPF_NOEXIST);
	if (ret != -EEXIST)
		return ret;
	/* the exact key exists, so the longest prefix match for it is that entry */
	if (map_lookup(dp, DP_MAP_ROUTES, &k, &old) == 0 && old.since)
		v.since = old.since;
	return map_update(dp, DP_MAP_ROUTES, &k, &v);
}

int datapath_route_delete(struct datapath *dp, const struct twill_route_key *key)
{
	struct twill_route_key k;

	if (!key || key->prefixlen > 32)
		return -EINVAL;
	k.prefixlen = key->prefixlen;
	k.addr = key->addr & prefix_mask(key->prefixlen);
	return map_delete(dp, DP_MAP_ROUTES, &k);
}

int datapath_route_list(struct datapath *dp, struct twill_route_key **keys,
			struct twill_route_value **values, size_t *count)
{
	return map_list(dp, DP_MAP_ROUTES, sizeof(**keys), sizeof(**values), (void **)keys,
			(void **)values, count);
}

int datapath_route_lookup(struct datapath *dp, __u32 addr_be, struct twill_route_key *matched,
			  struct twill_route_value *value)
{
	struct twill_route_key key = { .prefixlen = 32, .addr = addr_be };
	struct twill_route_value *values = NULL;
	struct twill_route_key *keys = NULL;
	struct twill_route_value v;
	size_t count = 0, i;
	int err;

	err = map_lookup(dp, DP_MAP_ROUTES, &key, &v);
	if (err)
		goto cleanup;
	if (matched) {
		/* The trie does not say which prefix matched: find it (twillctl only). */
		err = datapath_route_list(dp, &keys, &values, &count);
		if (err)
			goto cleanup;
		matched->prefixlen = 0;
		matched->addr = 0;
		for (i = 0; i < count; i++)
			if ((addr_be & prefix_mask(keys[i].prefixlen)) == keys[i].addr &&
			    keys[i].prefixlen >= matched->prefixlen)
				*matched = keys[i];
	}
	if (value)
		*value = v;
cleanup:
	free(keys);
	free(values);
	return err;
}

int datapath_endpoint_set(struct datapath *dp, const struct twill_endpoint_key *key,
			  const struct twill_endpoint_value *value)
{
	if (value && value->host_ifindex == 0) {
		log_err("endpoint has no host interface index");
		return -EINVAL;
	}
	return map_update(dp, DP_MAP_ENDPOINTS, key, value);
}

int datapath_endpoint_delete(struct datapath *dp, const struct twill_endpoint_key *key)
{
	return map_delete(dp, DP_MAP_ENDPOINTS, key);
}

int datapath_endpoint_list(struct datapath *dp, struct twill_endpoint_key **keys,
			   struct twill_endpoint_value **values, size_t *count)
{
	return map_list(dp, DP_MAP_ENDPOINTS, sizeof(**keys), sizeof(**values), (void **)keys,
			(void **)values, count);
}

int datapath_endpoint_lookup(struct datapath *dp, __u32 addr_be, struct twill_endpoint_value *value)
{
	struct twill_endpoint_key key = { .addr = addr_be };

	return map_lookup(dp, DP_MAP_ENDPOINTS, &key, value);
}

int datapath_pod_add(struct datapath *dp, __u32 pod_addr_be, int host_ifindex,
		     const __u8 pod_mac[6], const __u8 host_mac[6])
{
	struct twill_endpoint_key key = { .addr = pod_addr_be };
	struct twill_endpoint_value value = { 0 };
	int err;

	if (!dp || host_ifindex <= 0 || !pod_mac || !host_mac)
		return -EINVAL;
	value.host_ifindex = (__u32)host_ifindex;
	memcpy(value.pod_mac, pod_mac, sizeof(value.pod_mac));
	memcpy(value.host_mac, host_mac, sizeof(value.host_mac));
	err = datapath_endpoint_set(dp, &key, &value);
	if (err)
		return err;
	err = datapath_attach_pod(dp, host_ifindex);
	if (err)
		map_delete(dp, DP_MAP_ENDPOINTS, &key);
	return err;
}

int datapath_pod_del(struct datapath *dp, __u32 pod_addr_be, int host_ifindex)
{
	struct twill_endpoint_key key = { .addr = pod_addr_be };
	struct twill_endpoint_value value;
	int err;

	if (!dp || host_ifindex < 0)
		return -EINVAL;
	err = map_lookup(dp, DP_MAP_ENDPOINTS, &key, &value);
	if (err == 0 && (host_ifindex == 0 || value.host_ifindex == (__u32)host_ifindex)) {
		err = map_delete(dp, DP_MAP_ENDPOINTS, &key);
		if (err && err != -ENOENT)
			return err;
	} else if (err && err != -ENOENT) {
		return err;
	}
	if (host_ifindex > 0) {
		err = datapath_detach(host_ifindex, false);
		/* The veth usually went with the pod's namespace already. */
		if (err && err != -ENOENT && err != -ENODEV)
			return err;
	}
	return 0;
}

int datapath_attach_endpoints(struct datapath *dp)
{
	struct twill_endpoint_value *values = NULL;
	struct twill_endpoint_key *keys = NULL;
	size_t count = 0, i;
	int err, ret = 0;

	err = datapath_endpoint_list(dp, &keys, &values, &count);
	if (err)
		return err;
	for (i = 0; i < count; i++) {
		err = datapath_attach_pod(dp, (int)values[i].host_ifindex);
		if (err == -ENODEV) {
			log_warn("endpoint's host interface %u is gone: skipped",
				 values[i].host_ifindex);
			continue;
		}
		if (err)
			ret = err;
	}
	free(keys);
	free(values);
	return ret;
}

int datapath_counters_read(struct datapath *dp, struct twill_counter *out)
{
	struct twill_counter *percpu = NULL;
	int ncpus, err = 0, cpu;
	__u32 reason;

	if (!dp || !out)
		return -EINVAL;
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		return ncpus < 0 ? ncpus : -EINVAL;
	percpu = calloc((size_t)ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	for (reason = 0; reason < TWILL_R_MAX; reason++) {
		out[reason].packets = 0;
		out[reason].bytes = 0;
		if (bpf_map_lookup_elem(dp->map_fd[DP_MAP_COUNTERS], &reason, percpu) < 0) {
			/* A map pinned by an older version has no slot for newer reasons. */
			if (errno == ENOENT && reason > 0)
				continue;
			err = -errno;
			log_err("cannot read BPF counter '%s': %s", reason_names[reason],
				strerror(errno));
			goto cleanup;
		}
		for (cpu = 0; cpu < ncpus; cpu++) {
			out[reason].packets += percpu[cpu].packets;
			out[reason].bytes += percpu[cpu].bytes;
		}
	}
cleanup:
	free(percpu);
	return err;
}
