// SPDX-License-Identifier: Apache-2.0
/*
 * twill-bench rr: TCP request/response latency, the round trip an RPC sees. The server
 * echoes; the client sends a small request, waits for the whole answer, and times each
 * exchange. One connection (set up before timing), TCP_NODELAY on both ends.
 * The bench runs both ends inside pod namespaces (nsenter), never on the host network.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define RR_COUNT_MAX 1000000
#define RR_SIZE_MAX 65536
#define RR_IO_TIMEOUT_MS 5000

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Moves exactly len bytes, each wait bounded so a dead peer never hangs the bench. */
static int io_full(int fd, char *buf, size_t len, bool writing)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd p = { .fd = fd, .events = writing ? POLLOUT : POLLIN };
		ssize_t n;
		int r = poll(&p, 1, RR_IO_TIMEOUT_MS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ETIMEDOUT;
		n = writing ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		done += (size_t)n;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One client, echoed until it closes; gives up after timeout_s without one. */
static int rr_serve(int port, int timeout_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char buf[RR_SIZE_MAX];
	int ls, fd = -1, one = 1, rc = 1;
	struct pollfd p;
	ssize_t n;

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0) {
		fprintf(stderr, "twill-bench rr: listen on port %d: %s\n", port, strerror(errno));
		goto cleanup;
	}
	p = (struct pollfd){ .fd = ls, .events = POLLIN };
	if (poll(&p, 1, timeout_s * 1000) != 1) {
		fprintf(stderr, "twill-bench rr: no client within %d s\n", timeout_s);
		goto cleanup;
	}
	fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		fprintf(stderr, "twill-bench rr: accept: %s\n", strerror(errno));
		goto cleanup;
	}
	for (;;) {
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(&p, 1, timeout_s * 1000) != 1)
			break;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0 || io_full(fd, buf, (size_t)n, true) < 0)
			break;
	}
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (ls >= 0)
		close(ls);
	return rc;
}

static int rr_client(const char *host, int port, long count, long size, bool json)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	double *us = calloc((size_t)count, sizeof(*us)), t0;
	char *buf = calloc(1, (size_t)size);
	int fd = -1, one = 1, rc = 1, err;
	long i, warm = count / 10 + 1;

	if (!us || !buf) {
		fprintf(stderr, "twill-bench rr: out of memory\n");
		goto cleanup;
	}
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "twill-bench rr: '%s' is not an IPv4 address\n", host);
		goto cleanup;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "twill-bench rr: connect to %s:%d: %s\n", host, port, strerror(errno));
		goto cleanup;
	}
	/* the first exchanges warm caches and the congestion window: not counted */
	for (i = -warm; i < count; i++) {
		t0 = now_us();
		err = io_full(fd, buf, (size_t)size, true);
		if (!err)
			err = io_full(fd, buf, (size_t)size, false);
		if (err) {
			fprintf(stderr, "twill-bench rr: exchange %ld with %s:%d: %s\n", i, host, port,
				strerror(-err));
			goto cleanup;
		}
		if (i >= 0)
			us[i] = now_us() - t0;
	}
	qsort(us, (size_t)count, sizeof(*us), cmp_double);
	{
		double med = us[count / 2], p99 = us[(count * 99 + 99) / 100 - 1];

		if (json)
			printf("{\"count\":%ld,\"size\":%ld,\"median_us\":%.1f,\"p99_us\":%.1f}\n", count,
			       size, med, p99);
		else
			printf("%ld exchanges of %ld bytes: median %.1f us, p99 %.1f us\n", count, size,
			       med, p99);
	}
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	free(us);
	free(buf);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: twill-bench rr --listen PORT [--timeout SECONDS]\n"
		   "       twill-bench rr --connect IPV4 [--port PORT] [--count N] [--size BYTES] [--json]\n"
		   "  TCP request/response latency: the server echoes one client; the client\n"
		   "  times N exchanges (default 1000) of BYTES (default 64) and prints the median\n"
		   "  and p99 round trip.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

int bench_rr_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long port = 5202, count = 1000, size = 64, timeout = 60;
	const char *host = NULL;
	bool listen_mode = false, json = false;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:c:p:n:s:t:jh", opts, NULL)) != -1) {
		long *dst = NULL, lo = 1, hi = 65535;

		switch (opt) {
		case 'l': listen_mode = true; dst = &port; break;
		case 'c': host = optarg; break;
		case 'p': dst = &port; break;
		case 'n': dst = &count; hi = RR_COUNT_MAX; break;
		case 's': dst = &size; hi = RR_SIZE_MAX; break;
		case 't': dst = &timeout; hi = 3600; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (dst && parse_long(optarg, lo, hi, dst) < 0) {
			fprintf(stderr, "twill-bench rr: '%s' is not %ld..%ld\n", optarg, lo, hi);
			return 2;
		}
	}
	if (listen_mode == !!host) {
		usage(stderr);
		return 2;
	}
	if (listen_mode)
		return rr_serve((int)port, (int)timeout);
	return rr_client(host, (int)port, count, size, json);
}
