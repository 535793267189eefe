// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

static int render(void *arg, char **text, size_t *len)
{
	*text = strdup((const char *)arg);
	*len = strlen(*text);
	return 0;
}

static int client(const struct metrics *m, const char *request)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_eq(getsockname(metrics_fd(m), (struct sockaddr *)&sa, &sl), 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sl), 0);
	cr_assert_eq(send(fd, request, strlen(request), 0), (ssize_t)strlen(request));
	return fd;
}

static void read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len - 1 && (n = recv(fd, buf + got, len - 1 - got, 0)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
}

Test(metrics, answers_a_scrape_with_prometheus_text)
{
	struct metrics *m = NULL;
	const char *body = "twill_reconciles_total 3\n";
	char buf[1024];
	int fd;

	log_set_stderr(0);
	cr_assert_eq(metrics_open("127.0.0.1:0", &m), 0);
	fd = client(m, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(metrics_serve(m, render, (void *)body), 0);
	read_all(fd, buf, sizeof(buf));
	cr_assert(strncmp(buf, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", buf);
	cr_assert_not_null(strstr(buf, "Content-Type: text/plain; version=0.0.4"));
	cr_assert_not_null(strstr(buf, "Content-Length: 25\r\n"));
	cr_assert_not_null(strstr(buf, "\r\n\r\ntwill_reconciles_total 3\n"));

	fd = client(m, "POST /metrics HTTP/1.1\r\n\r\n");
	cr_assert_eq(metrics_serve(m, render, (void *)body), 0);
	read_all(fd, buf, sizeof(buf));
	cr_assert(strncmp(buf, "HTTP/1.0 405", 12) == 0, "%s", buf);
	/* nothing pending: no block, no error */
	cr_assert_eq(metrics_serve(m, render, (void *)body), 0);
	metrics_close(m);
}

Test(metrics, rejects_bad_addresses)
{
	struct metrics *m = NULL;

	log_set_stderr(0);
	cr_assert_eq(metrics_open("9101", &m), -EINVAL);
	cr_assert_eq(metrics_open("localhost:9101", &m), -EINVAL);
	cr_assert_eq(metrics_open("127.0.0.1:", &m), -EINVAL);
	cr_assert_null(m);
	/* bracketed IPv6 parses; the bind may fail where IPv6 is off */
	int r = metrics_open("[::1]:0", &m);

	cr_assert(r == 0 || r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT, "r = %d", r);
	metrics_close(m);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile int dribble_stop;

/* One byte of a request head that never ends, every 100 ms: each recv() finds data. */
static void *dribble(void *arg)
{
	int fd = *(int *)arg;

	while (!dribble_stop && send(fd, "X", 1, MSG_NOSIGNAL) == 1)
		usleep(100 * 1000);
	return NULL;
}

Test(metrics, a_dribbling_client_gets_one_deadline_not_one_per_read)
{
	struct metrics *m = NULL;
	pthread_t t;
	double t0, took;
	int fd;

	log_set_stderr(0);
	cr_assert_eq(metrics_open("127.0.0.1:0", &m), 0);
	fd = client(m, "GET /metrics HTTP/1.1\r\n");
	dribble_stop = 0;
	cr_assert_eq(pthread_create(&t, NULL, dribble, &fd), 0);
	t0 = now_s();
	metrics_serve(m, render, (void *)"x 1\n");
	took = now_s() - t0;
	dribble_stop = 1;
	pthread_join(t, NULL);
	close(fd);
	/* a timeout per read would let these bytes hold the agent for 400 s */
	cr_assert_lt(took, 3.0, "metrics_serve held by a dribbling client for %.1f s", took);
	metrics_close(m);
}

Test(metrics, a_client_that_never_reads_is_dropped_at_the_deadline)
{
	struct metrics *m = NULL;
	size_t big = 64u << 20;
	char *body = malloc(big + 1);
	int fd, small = 4096;
	double t0, took;

	log_set_stderr(0);
	memset(body, 'x', big);
	body[big] = '\0';
	cr_assert_eq(metrics_open("127.0.0.1:0", &m), 0);
	fd = client(m, "GET /metrics HTTP/1.1\r\n\r\n");
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	t0 = now_s();
	cr_assert_eq(metrics_serve(m, render, body), -ETIMEDOUT);
	took = now_s() - t0;
	cr_assert_lt(took, 3.0, "metrics_serve held by a client that does not read for %.1f s", took);
	close(fd);
	free(body);
	metrics_close(m);
}
