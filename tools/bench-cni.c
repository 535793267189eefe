// SPDX-License-Identifier: Apache-2.0
/*
 * twill-bench cni: exec twill and the reference ptp + host-local the same way (same
 * environment, a fresh pair of namespaces per run, interleaved so machine noise hits
 * both alike), time ADD and DEL from fork to reap, and read the plugin's peak RSS from
 * wait4 (for ptp, RUSAGE_BOTH also covers the host-local it executes).
 * Runs in a private network namespace: the "host" side of every veth is thrown away
 * with it, the machine's own network is never touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "twill-config.h"

#define RUNS_MAX 250   /* one /24 each */

struct contender {
	const char *label;
	const char *netname;
	char path[PATH_MAX];
	char conf[2048];
	double *add_ms;
	double *del_ms;
	double *add_cpu_ms;   /* user + system: what the plugin itself costs, less load-bound */
	double *del_cpu_ms;
	long maxrss_kb;
};

struct podns {
	pid_t pid;
	int hold_fd;
	char path[64];
};

static int podns_new(struct podns *ns)
{
	int ready[2], hold[2];
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(hold, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		return -errno;
	}
	ns->pid = fork();
	if (ns->pid < 0)
		return -errno;
	if (ns->pid == 0) {
		/* holds the namespace open until the bench closes the pipe; another holder's
		 * pipe end inherited here would keep that one alive forever */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != ready[1] && fd != hold[0])
				close(fd);
		c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		while (read(hold[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	ns->hold_fd = hold[1];
	if (read(ready[0], &c, 1) != 1 || c != 'y') {
		close(ready[0]);
		close(ns->hold_fd);
		waitpid(ns->pid, NULL, 0);
		return -EPERM;
	}
	close(ready[0]);
	snprintf(ns->path, sizeof(ns->path), "/proc/%d/ns/net", (int)ns->pid);
	return 0;
}

static void podns_free(struct podns *ns)
{
	if (ns->pid <= 0)
		return;
	close(ns->hold_fd);
	waitpid(ns->pid, NULL, 0);
	ns->pid = 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One plugin execution; *ms is fork-to-reap wall time. */
static int exec_plugin(const struct contender *c, const char *cmd, const char *id,
		       const char *netns, const char *cni_path, bool verbose, double *ms,
		       double *cpu_ms, long *maxrss_kb)
{
	char e_cmd[64], e_id[128], e_ns[128], e_path[PATH_MAX + 16];
	char *envp[] = { e_cmd, e_id, e_ns, "CNI_IFNAME=eth0", e_path,
			 "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	char *argv[] = { (char *)c->path, NULL };
	char out[8192];
	size_t outn = 0;
	int in[2], outp[2], status;
	struct rusage ru;
	double t0;
	ssize_t n;
	pid_t pid;

	snprintf(e_cmd, sizeof(e_cmd), "CNI_COMMAND=%s", cmd);
	snprintf(e_id, sizeof(e_id), "CNI_CONTAINERID=%s", id);
	snprintf(e_ns, sizeof(e_ns), "CNI_NETNS=%s", netns);
	snprintf(e_path, sizeof(e_path), "CNI_PATH=%s", cni_path);
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(outp, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	t0 = now_ms();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(in[0], STDIN_FILENO);
		dup2(outp[1], STDOUT_FILENO);
		if (!verbose && devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		execve(c->path, argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	/* the config is far below the pipe buffer: this write never blocks */
	if (write(in[1], c->conf, strlen(c->conf)) < 0) {
		/* the plugin died early: its exit status tells */
	}
	close(in[1]);
	while ((n = read(outp[0], out + outn, sizeof(out) - 1 - outn)) > 0)
		outn += (size_t)n;
	close(outp[0]);
	out[outn] = '\0';
	if (wait4(pid, &status, 0, &ru) < 0)
		return -errno;
	*ms = now_ms() - t0;
	*cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	*maxrss_kb = ru.ru_maxrss;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "twill-bench: %s %s %s failed (status %d): %s\n", c->label, cmd, id,
			status, out);
		return -EIO;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank, on a sorted copy. */
static double percentile(const double *v, size_t n, double p)
{
	double *s = malloc(n * sizeof(*s)), r;
	size_t rank;

	if (!s || n == 0) {
		free(s);
		return 0;
	}
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	r = s[rank - 1];
	free(s);
	return r;
}

static int find_twill(char *out, size_t len)
{
	char self[PATH_MAX], *slash;
	ssize_t n;
	const char *env = getenv("TWILL_CNI_PLUGIN");

	if (env) {
		snprintf(out, len, "%s", env);
		return access(out, X_OK) == 0 ? 0 : -ENOENT;
	}
	/* from the build tree: build/tools/twill-bench -> build/cni/twill */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%.*s/../cni/twill", PATH_MAX - 32, self) < len &&
			    access(out, X_OK) == 0)
				return 0;
		}
	}
	snprintf(out, len, "%s/twill", TWILL_DEFAULT_CNI_BIN_DIR);
	return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: twill-bench cni [--runs N] [--json] [--twill PATH] [--cni-dir DIR]\n"
		   "                       [--tmpdir DIR] [--verbose]\n"
		   "  Times CNI ADD and DEL of twill and of ptp + host-local (from --cni-dir,\n"
		   "  default /usr/lib/cni), N runs each (default 20, at most %d), in fresh\n"
		   "  network namespaces inside a private one. Both plugins keep their address\n"
		   "  store under --tmpdir (default /tmp; a tmpfs there leaves out disk flushes).\n"
		   "  Needs root.\n", RUNS_MAX);
}

static void rm_tree(const char *dir)
{
	pid_t pid = fork();

	/* a few files of our own temp folder: rm is simpler than nftw here */
	if (pid == 0) {
		execl("/bin/rm", "rm", "-rf", "--", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

int bench_cni_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "twill", required_argument, NULL, 't' },
		{ "cni-dir", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "tmpdir", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct contender c[2] = {
		{ .label = "twill", .netname = "bench-twill" },
		{ .label = "ptp+host-local", .netname = "bench-ptp" },
	};
	char tmp[PATH_MAX], cni_path[2 * PATH_MAX + 2], twill_dir[PATH_MAX];
	const char *tmpdir = "/tmp";
	const char *cni_dir = "/usr/lib/cni";
	struct contender floor = { .label = "twill VERSION", .netname = "bench-floor" };
	double *floor_ms = NULL, *floor_cpu_ms = NULL;
	bool json = false, verbose = false;
	long runs = 20;
	int opt, rc = 1;
	size_t done = 0;

	optind = 1;
	c[0].path[0] = '\0';
	while ((opt = getopt_long(argc, argv, "n:jt:d:vT:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': {
			char *end;

			runs = strtol(optarg, &end, 10);
			if (*end || runs < 1 || runs > RUNS_MAX) {
				fprintf(stderr, "twill-bench cni: --runs '%s' is not 1..%d\n", optarg,
					RUNS_MAX);
				return 2;
			}
			break;
		}
		case 'j': json = true; break;
		case 't': snprintf(c[0].path, sizeof(c[0].path), "%s", optarg); break;
		case 'd': cni_dir = optarg; break;
		case 'v': verbose = true; break;
		case 'T': tmpdir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "twill-bench cni: needs root (network namespaces)\n");
		return 1;
	}
	if (!c[0].path[0] && find_twill(c[0].path, sizeof(c[0].path)) < 0) {
		fprintf(stderr, "twill-bench cni: cannot find the twill plugin (--twill PATH)\n");
		return 1;
	}
	snprintf(c[1].path, sizeof(c[1].path), "%s/ptp", cni_dir);
	if (access(c[1].path, X_OK) < 0) {
		fprintf(stderr, "twill-bench cni: '%s' missing (Debian containernetworking-plugins)\n",
			c[1].path);
		return 1;
	}
	snprintf(twill_dir, sizeof(twill_dir), "%s", c[0].path);
	if (strrchr(twill_dir, '/'))
		*strrchr(twill_dir, '/') = '\0';
	snprintf(cni_path, sizeof(cni_path), "%s:%s", twill_dir, cni_dir);

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "twill-bench cni: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/twill-bench-cni.XXXXXX", tmpdir) >= 512) {
		fprintf(stderr, "twill-bench cni: --tmpdir '%s' is too long\n", tmpdir);
		return 2;
	}
	if (!mkdtemp(tmp)) {
		fprintf(stderr, "twill-bench cni: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(c[0].conf, sizeof(c[0].conf),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"bench-twill\",\"type\":\"twill\","
		 "\"podCIDR\":\"10.201.0.0/24\",\"mtu\":1440,\"stateDir\":\"%.512s/twill\","
		 "\"bpfPinDir\":\"%.512s/no-bpf\"}", tmp, tmp);
	snprintf(c[1].conf, sizeof(c[1].conf),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"bench-ptp\",\"type\":\"ptp\",\"ipMasq\":false,"
		 "\"mtu\":1440,\"ipam\":{\"type\":\"host-local\",\"subnet\":\"10.202.0.0/24\","
		 "\"dataDir\":\"%.512s/host-local\",\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}}", tmp);
	/* what exec alone costs here: the same binary answering VERSION */
	memcpy(floor.path, c[0].path, sizeof(floor.path));
	snprintf(floor.conf, sizeof(floor.conf), "{\"cniVersion\":\"1.0.0\"}");
	floor_ms = calloc((size_t)runs, sizeof(double));
	floor_cpu_ms = calloc((size_t)runs, sizeof(double));
	if (!floor_ms || !floor_cpu_ms)
		goto cleanup;
	for (int k = 0; k < 2; k++) {
		c[k].add_ms = calloc((size_t)runs, sizeof(double));
		c[k].del_ms = calloc((size_t)runs, sizeof(double));
		c[k].add_cpu_ms = calloc((size_t)runs, sizeof(double));
		c[k].del_cpu_ms = calloc((size_t)runs, sizeof(double));
		if (!c[k].add_ms || !c[k].del_ms || !c[k].add_cpu_ms || !c[k].del_cpu_ms)
			goto cleanup;
	}

	/* run -1 warms the page cache for both binaries and is not counted */
	for (long i = -1; i < runs; i++) {
		struct podns ns[2] = { 0 };
		char id[64];
		double ms, cpu;
		long rss;

		for (int k = 0; k < 2; k++)
			if (podns_new(&ns[k]) < 0) {
				fprintf(stderr, "twill-bench cni: cannot create a network namespace\n");
				podns_free(&ns[0]);
				goto cleanup;
			}
		for (int j = 0; j < 2; j++) {
			int k = (int)((i + j) & 1);   /* alternate who goes first */

			snprintf(id, sizeof(id), "bench-%s-%ld", c[k].netname, i + 1);
			if (exec_plugin(&c[k], "ADD", id, ns[k].path, cni_path, verbose, &ms, &cpu,
					&rss) < 0)
				goto run_failed;
			if (i >= 0) {
				c[k].add_ms[i] = ms;
				c[k].add_cpu_ms[i] = cpu;
				if (rss > c[k].maxrss_kb)
					c[k].maxrss_kb = rss;
			}
		}
		if (exec_plugin(&floor, "VERSION", "floor", ns[0].path, cni_path, verbose, &ms, &cpu,
				&rss) < 0)
			goto run_failed;
		if (i >= 0) {
			floor_ms[i] = ms;
			floor_cpu_ms[i] = cpu;
		}
		for (int j = 0; j < 2; j++) {
			int k = (int)((i + j) & 1);

			snprintf(id, sizeof(id), "bench-%s-%ld", c[k].netname, i + 1);
			if (exec_plugin(&c[k], "DEL", id, ns[k].path, cni_path, verbose, &ms, &cpu,
					&rss) < 0)
				goto run_failed;
			if (i >= 0) {
				c[k].del_ms[i] = ms;
				c[k].del_cpu_ms[i] = cpu;
				if (rss > c[k].maxrss_kb)
					c[k].maxrss_kb = rss;
			}
		}
		podns_free(&ns[0]);
		podns_free(&ns[1]);
		if (i >= 0)
			done++;
		continue;
run_failed:
		podns_free(&ns[0]);
		podns_free(&ns[1]);
		goto cleanup;
	}

	{
		double am[2], ap[2], dm[2], dp[2], ac[2], dc[2];
		double fm = percentile(floor_ms, done, 50), fc = percentile(floor_cpu_ms, done, 50);

		for (int k = 0; k < 2; k++) {
			am[k] = percentile(c[k].add_ms, done, 50);
			ap[k] = percentile(c[k].add_ms, done, 99);
			dm[k] = percentile(c[k].del_ms, done, 50);
			dp[k] = percentile(c[k].del_ms, done, 99);
			ac[k] = percentile(c[k].add_cpu_ms, done, 50);
			dc[k] = percentile(c[k].del_cpu_ms, done, 50);
		}
		if (json) {
			printf("{\"runs\":%zu,\"cniVersion\":\"1.0.0\",\"plugins\":{", done);
			for (int k = 0; k < 2; k++)
				printf("%s\"%s\":{\"add_ms\":{\"median\":%.3f,\"p99\":%.3f,"
				       "\"cpu_median\":%.3f},\"del_ms\":{\"median\":%.3f,\"p99\":%.3f,"
				       "\"cpu_median\":%.3f},\"peak_rss_kb\":%ld}",
				       k ? "," : "", c[k].label, am[k], ap[k], ac[k], dm[k], dp[k], dc[k],
				       c[k].maxrss_kb);
			printf("},\"exec_floor_ms\":{\"median\":%.3f,\"cpu_median\":%.3f}", fm, fc);
			printf(",\"ratio\":{\"add_median\":%.2f,\"add_p99\":%.2f,\"del_median\":%.2f,"
			       "\"del_p99\":%.2f,\"add_cpu\":%.2f,\"peak_rss\":%.2f}}\n", am[1] / am[0],
			       ap[1] / ap[0], dm[1] / dm[0], dp[1] / dp[0], ac[1] / ac[0],
			       (double)c[1].maxrss_kb / (double)(c[0].maxrss_kb ? c[0].maxrss_kb : 1));
		} else {
			printf("CNI latency, %zu runs each, fresh namespaces, fork to reap "
			       "(spec 1.0.0); cpu = user + system of the plugin\n\n", done);
			printf("%-15s %10s %9s %8s %10s %9s %8s %9s\n", "plugin", "ADD median",
			       "ADD p99", "ADD cpu", "DEL median", "DEL p99", "DEL cpu", "peak RSS");
			for (int k = 0; k < 2; k++)
				printf("%-15s %7.2f ms %6.2f ms %5.2f ms %7.2f ms %6.2f ms %5.2f ms %6.1f MB\n",
				       c[k].label, am[k], ap[k], ac[k], dm[k], dp[k], dc[k],
				       (double)c[k].maxrss_kb / 1024.0);
			printf("%-15s %9.1fx %8.1fx %7.1fx %9.1fx %8.1fx %7.1fx %8.1fx\n", "ptp / twill",
			       am[1] / am[0], ap[1] / ap[0], ac[1] / ac[0], dm[1] / dm[0], dp[1] / dp[0],
			       dc[1] / dc[0],
			       (double)c[1].maxrss_kb / (double)(c[0].maxrss_kb ? c[0].maxrss_kb : 1));
			printf("\nexec floor here (twill VERSION, same way): %.2f ms median, %.2f ms cpu\n",
			       fm, fc);
		}
	}
	rc = 0;
cleanup:
	free(floor_ms);
	free(floor_cpu_ms);
	for (int k = 0; k < 2; k++) {
		free(c[k].add_ms);
		free(c[k].del_ms);
		free(c[k].add_cpu_ms);
		free(c[k].del_cpu_ms);
	}
	rm_tree(tmp);
	return rc;
}
