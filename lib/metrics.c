// SPDX-License-Identifier: Apache-2.0
/*
 * Prometheus text over HTTP/1.0, one connection at a time. The agent is single
 * threaded: a whole exchange (request head in, answer out) gets one deadline, so a
 * scraper that dribbles its request or reads slowly delays a reconcile by at most that,
 * however it spreads its bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define CLIENT_DEADLINE_MS 2000

struct metrics {
	int fd;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on the client until the deadline: 0 when ready, -ETIMEDOUT after. */
static int wait_client(int c, short events, long long deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = c, .events = events };
		long long left = deadline - now_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int send_all(int c, const char *buf, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = send(c, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int ret;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		ret = wait_client(c, POLLOUT, deadline);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int metrics_open(const char *addr, struct metrics **out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct metrics *m = NULL;
	char host[256];
	const char *colon = strrchr(addr, ':'), *h = host;
	int one = 1, fd = -1, ret, r;

	if (!colon || !colon[1] || (size_t)(colon - addr) >= sizeof(host)) {
		log_err("metrics: address '%s' is not ADDR:PORT", addr);
		return -EINVAL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		h = host + 1;
	}
	r = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &res);
	if (r != 0) {
		log_err("metrics: address '%s': %s", addr, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		goto cleanup;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		ret = -errno;
		log_err("metrics: cannot listen on '%s': %s", addr, strerror(errno));
		goto cleanup;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		ret = -ENOMEM;
		goto cleanup;
	}
	m->fd = fd;
	fd = -1;
	*out = m;
	ret = 0;
	log_info("metrics: serving Prometheus text on '%s'", addr);
cleanup:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return ret;
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	close(m->fd);
	free(m);
}

int metrics_fd(const struct metrics *m)
{
	return m->fd;
}

int metrics_serve(struct metrics *m, int (*render)(void *arg, char **text, size_t *len), void *arg)
{
	long long deadline;
	char req[4096], head[256];
	size_t got = 0, len = 0;
	char *text = NULL;
	int c, ret = 0;

	c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	deadline = now_ms() + CLIENT_DEADLINE_MS;
	/* Read the request head (to its blank line) so the client sees a clean close. */
	while (got < sizeof(req) - 1) {
		ssize_t n = recv(c, req + got, sizeof(req) - 1 - got, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (wait_client(c, POLLIN, deadline) < 0)
				break;
			continue;
		}
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[got] = '\0';
	if (strncmp(req, "GET ", 4) != 0) {
		static const char bad[] = "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n";

		ret = send_all(c, bad, sizeof(bad) - 1, deadline);
		goto cleanup;
	}
	ret = render(arg, &text, &len);
	if (ret < 0) {
		static const char err[] = "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";

		send_all(c, err, sizeof(err) - 1, deadline);
		goto cleanup;
	}
	snprintf(head, sizeof(head),
		 "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n", len);
	ret = send_all(c, head, strlen(head), deadline);
	if (ret == 0)
		ret = send_all(c, text, len, deadline);
	if (ret == -ETIMEDOUT)
		log_warn("metrics: a scraper took more than %d ms: connection closed",
			 CLIENT_DEADLINE_MS);
cleanup:
	free(text);
	close(c);
	return ret;
}
