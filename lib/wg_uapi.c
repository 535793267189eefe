// SPDX-License-Identifier: Apache-2.0
/*
 * Userspace WireGuard through its UAPI socket, /var/run/wireguard/NAME.sock: "get=1" and
 * "set=1" requests of key=value lines ended by a blank line, replies ended by "errno=N"
 * and a blank line. Building and parsing are pure functions over text so they can be
 * tested and fuzzed without a daemon; the socket code only moves bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "atomicfile.h"
#include "log.h"
#include "netlink.h"
#include "twill-config.h"
#include "wg_uapi.h"

#define UAPI_IO_TIMEOUT_SEC 30
#define UAPI_MAX_REPLY (64u << 20)

int wg_uapi_socket_path(const char *ifname, char *buf, size_t len)
{
	int n;

	if (!nl_ifname_valid(ifname))
		return -EINVAL;
	n = snprintf(buf, len, "%s/%s.sock", TWILL_DEFAULT_WG_RUN_DIR, ifname);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- parsing ---- */

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow past max. */
static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int copy_value(const char *v, size_t vlen, char *buf, size_t buflen)
{
	if (vlen >= buflen || memchr(v, '\0', vlen))
		return -EINVAL;
	memcpy(buf, v, vlen);
	buf[vlen] = '\0';
	return 0;
}

static int parse_key_hex(const char *v, size_t vlen, uint8_t key[WG_KEY_LEN])
{
	char buf[2 * WG_KEY_LEN + 1];
	int ret;

	if (vlen != 2 * WG_KEY_LEN)
		return -EINVAL;
	memcpy(buf, v, vlen);
	buf[vlen] = '\0';
	ret = wgkey_from_hex(buf, key);
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}

static int parse_endpoint(const char *v, size_t vlen, union wg_endpoint *ep)
{
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 16];
	char *host, *port, *scope;
	uint64_t portnum;

	if (copy_value(v, vlen, buf, sizeof(buf)) < 0)
		return -EINVAL;
	memset(ep, 0, sizeof(*ep));
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		*close = '\0';
		host = buf + 1;
		port = close + 2;
		scope = strchr(host, '%');
		if (scope)
			*scope++ = '\0';
		if (inet_pton(AF_INET6, host, &ep->addr6.sin6_addr) != 1)
			return -EINVAL;
		if (scope) {
			uint64_t id;

			if (parse_u64(scope, strlen(scope), UINT32_MAX, &id) == 0)
				ep->addr6.sin6_scope_id = (uint32_t)id;
			else if (!(ep->addr6.sin6_scope_id = if_nametoindex(scope)))
				return -EINVAL;
		}
		ep->addr6.sin6_family = AF_INET6;
	} else {
		port = strrchr(buf, ':');
		if (!port)
			return -EINVAL;
		*port++ = '\0';
		if (inet_pton(AF_INET, buf, &ep->addr4.sin_addr) != 1)
			return -EINVAL;
		ep->addr4.sin_family = AF_INET;
	}
	if (parse_u64(port, strlen(port), 65535, &portnum) < 0) {
		memset(ep, 0, sizeof(*ep));
		return -EINVAL;
	}
	/* sin_port and sin6_port share their offset */
	ep->addr4.sin_port = htons((uint16_t)portnum);
	return 0;
}

static int parse_allowed_ip(const char *v, size_t vlen, struct wg_allowed_ip *aip)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	uint64_t cidr;

	if (copy_value(v, vlen, buf, sizeof(buf)) < 0)
		return -EINVAL;
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash++ = '\0';
	if (strchr(buf, ':')) {
		if (inet_pton(AF_INET6, buf, &aip->ip6) != 1)
			return -EINVAL;
		aip->family = AF_INET6;
	} else {
		if (inet_pton(AF_INET, buf, &aip->ip4) != 1)
			return -EINVAL;
		aip->family = AF_INET;
	}
	if (parse_u64(slash, strlen(slash), aip->family == AF_INET ? 32 : 128, &cidr) < 0)
		return -EINVAL;
	aip->cidr = (uint8_t)cidr;
	return 0;
}

static bool key_is(const char *k, size_t klen, const char *name)
{
	return strlen(name) == klen && memcmp(k, name, klen) == 0;
}

static bool is_peer_key(const char *k, size_t klen)
{
	static const char *const names[] = {
		"preshared_key", "endpoint", "allowed_ip", "rx_bytes", "tx_bytes",
		"persistent_keepalive_interval", "last_handshake_time_sec",
		"last_handshake_time_nsec", "protocol_version",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (key_is(k, klen, names[i]))
			return true;
	return false;
}

int wg_uapi_parse_get(const char *text, size_t len, struct wg_device **out)
{
	struct wg_device *dev;
	struct wg_peer *peer = NULL;
	size_t pos = 0, lineno = 0;
	bool seen_errno = false, ended = false;
	int64_t daemon_errno = 0;
	int ret = -EPROTO;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	while (pos < len) {
		const char *line = text + pos, *nl, *eq, *v;
		size_t linelen, klen, vlen;
		uint64_t num = 0;
		int r = 0;

		nl = memchr(line, '\n', len - pos);
		lineno++;
		if (!nl) {
			log_err("wg uapi: reply truncated in line %zu (no newline)", lineno);
			goto cleanup;
		}
		linelen = (size_t)(nl - line);
		pos += linelen + 1;
		if (linelen == 0) {
			ended = true;
			break;
		}
		if (seen_errno) {
			log_err("wg uapi: line %zu follows errno= in the reply", lineno);
			goto cleanup;
		}
		eq = memchr(line, '=', linelen);
		if (!eq || eq == line) {
			log_err("wg uapi: line %zu of the reply is not key=value", lineno);
			goto cleanup;
		}
		klen = (size_t)(eq - line);
		v = eq + 1;
		vlen = linelen - klen - 1;

		if (key_is(line, klen, "errno")) {
			r = parse_u64(v, vlen, INT32_MAX, &num);
			daemon_errno = (int64_t)num;
			seen_errno = true;
		} else if (key_is(line, klen, "public_key")) {
			peer = wg_device_add_peer(dev);
			if (!peer) {
				ret = -ENOMEM;
				goto cleanup;
			}
			r = parse_key_hex(v, vlen, peer->public_key);
		} else if (!peer && key_is(line, klen, "private_key")) {
			r = parse_key_hex(v, vlen, dev->private_key);
			if (r == 0)
				r = wgkey_public_from_private(dev->private_key, dev->public_key);
		} else if (!peer && key_is(line, klen, "listen_port")) {
			r = parse_u64(v, vlen, UINT16_MAX, &num);
			dev->listen_port = (uint16_t)num;
		} else if (!peer && key_is(line, klen, "fwmark")) {
			r = parse_u64(v, vlen, UINT32_MAX, &num);
			dev->fwmark = (uint32_t)num;
		} else if (!peer && is_peer_key(line, klen)) {
			log_err("wg uapi: line %zu: peer field '%.*s' before any public_key", lineno,
				(int)klen, line);
			goto cleanup;
		} else if (peer && (key_is(line, klen, "private_key") ||
				    key_is(line, klen, "listen_port") ||
				    key_is(line, klen, "fwmark"))) {
			log_err("wg uapi: line %zu: device field '%.*s' inside a peer", lineno,
				(int)klen, line);
			goto cleanup;
		} else if (key_is(line, klen, "preshared_key")) {
			uint8_t psk[WG_KEY_LEN];

			/* Validated, never kept: Twill does not use preshared keys. */
			r = parse_key_hex(v, vlen, psk);
			OPENSSL_cleanse(psk, sizeof(psk));
		} else if (key_is(line, klen, "endpoint")) {
			r = parse_endpoint(v, vlen, &peer->endpoint);
		} else if (key_is(line, klen, "allowed_ip")) {
			struct wg_allowed_ip *aip = wg_peer_add_allowed_ip(peer);

			if (!aip) {
				ret = -ENOMEM;
				goto cleanup;
			}
			r = parse_allowed_ip(v, vlen, aip);
		} else if (key_is(line, klen, "rx_bytes")) {
			r = parse_u64(v, vlen, UINT64_MAX, &peer->rx_bytes);
		} else if (key_is(line, klen, "tx_bytes")) {
			r = parse_u64(v, vlen, UINT64_MAX, &peer->tx_bytes);
		} else if (key_is(line, klen, "persistent_keepalive_interval")) {
			r = parse_u64(v, vlen, UINT16_MAX, &num);
			peer->keepalive_interval = (uint16_t)num;
		} else if (key_is(line, klen, "last_handshake_time_sec")) {
			r = parse_u64(v, vlen, INT64_MAX, &num);
			peer->last_handshake_sec = (int64_t)num;
		} else if (key_is(line, klen, "last_handshake_time_nsec")) {
			r = parse_u64(v, vlen, 999999999, &num);
			peer->last_handshake_nsec = (int64_t)num;
		} else if (key_is(line, klen, "protocol_version")) {
			r = parse_u64(v, vlen, UINT32_MAX, &num);
			peer->protocol_version = (uint32_t)num;
		} else {
			/* Newer daemons may say more; what Twill does not know it does not need. */
			log_debug("wg uapi: ignoring key '%.*s' in line %zu", (int)(klen > 64 ? 64 : klen),
				  line, lineno);
		}
		if (r < 0) {
			/* Values of key lines are secrets or noise: name the field, not the value. */
			log_err("wg uapi: line %zu: bad value for '%.*s' (%zu bytes)", lineno,
				(int)(klen > 64 ? 64 : klen), line, vlen);
			goto cleanup;
		}
	}
	if (!ended || !seen_errno) {
		log_err("wg uapi: reply ended without %s", seen_errno ? "a blank line" : "errno=");
		goto cleanup;
	}
	if (daemon_errno) {
		ret = -(int)daemon_errno;
		log_err("wg uapi: the daemon answered get with errno=%d (%s)", (int)daemon_errno,
			strerror((int)daemon_errno));
		goto cleanup;
	}
	*out = dev;
	dev = NULL;
	ret = 0;
cleanup:
	if (dev)
		OPENSSL_cleanse(dev->private_key, sizeof(dev->private_key));
	wg_device_free(dev);
	return ret;
}

int wg_uapi_parse_set_reply(const char *text, size_t len)
{
	static const char prefix[] = "errno=";
	const char *nl;
	uint64_t num;

	if (len < sizeof(prefix) || memcmp(text, prefix, sizeof(prefix) - 1))
		return -EPROTO;
	nl = memchr(text, '\n', len);
	if (!nl || (size_t)(nl - text) + 2 != len || nl[1] != '\n')
		return -EPROTO;
	if (parse_u64(text + sizeof(prefix) - 1, (size_t)(nl - text) - (sizeof(prefix) - 1),
		      INT32_MAX, &num) < 0)
		return -EPROTO;
	return -(int)num;
}

/* ---- building ---- */

static int format_endpoint(const union wg_endpoint *ep, FILE *f)
{
	char host[INET6_ADDRSTRLEN];

	if (ep->addr.sa_family == AF_INET) {
		inet_ntop(AF_INET, &ep->addr4.sin_addr, host, sizeof(host));
		fprintf(f, "endpoint=%s:%u\n", host, ntohs(ep->addr4.sin_port));
	} else if (ep->addr.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->addr6.sin6_addr, host, sizeof(host));
		if (ep->addr6.sin6_scope_id)
			fprintf(f, "endpoint=[%s%%%u]:%u\n", host, ep->addr6.sin6_scope_id,
				ntohs(ep->addr6.sin6_port));
		else
			fprintf(f, "endpoint=[%s]:%u\n", host, ntohs(ep->addr6.sin6_port));
	} else {
		return -EINVAL;
	}
	return 0;
}

int wg_uapi_build_set(const struct wg_device *dev, char **text, size_t *len)
{
	char hex[2 * WG_KEY_LEN + 1], ip[INET6_ADDRSTRLEN];
	char *buf = NULL;
	size_t size = 0;
	FILE *f;
	int ret = -EINVAL;

	f = open_memstream(&buf, &size);
	if (!f)
		return -ENOMEM;
	fputs("set=1\n", f);
	if (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) {
		wgkey_to_hex(dev->private_key, hex);
		fprintf(f, "private_key=%s\n", hex);
		OPENSSL_cleanse(hex, sizeof(hex));
	}
	if (dev->flags & WG_DEVICE_HAS_LISTEN_PORT)
		fprintf(f, "listen_port=%u\n", dev->listen_port);
	if (dev->flags & WG_DEVICE_REPLACE_PEERS)
		fputs("replace_peers=true\n", f);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];
		char b64[WG_KEY_B64_LEN];

		wgkey_to_hex(p->public_key, hex);
		fprintf(f, "public_key=%s\n", hex);
		if (p->flags & WG_PEER_REMOVE) {
			fputs("remove=true\n", f);
			continue;
		}
		if (p->flags & WG_PEER_UPDATE_ONLY)
			fputs("update_only=true\n", f);
		if ((p->flags & WG_PEER_HAS_ENDPOINT) && format_endpoint(&p->endpoint, f) < 0) {
			wgkey_to_base64(p->public_key, b64);
			log_err("wg uapi: peer '%s' has WG_PEER_HAS_ENDPOINT but address family %d",
				b64, p->endpoint.addr.sa_family);
			goto cleanup;
		}
		if (p->flags & WG_PEER_HAS_KEEPALIVE)
			fprintf(f, "persistent_keepalive_interval=%u\n", p->keepalive_interval);
		if (p->flags & WG_PEER_REPLACE_ALLOWEDIPS)
			fputs("replace_allowed_ips=true\n", f);
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct wg_allowed_ip *a = &p->allowed_ips[j];

			if ((a->family != AF_INET && a->family != AF_INET6) ||
			    a->cidr > (a->family == AF_INET ? 32 : 128)) {
				wgkey_to_base64(p->public_key, b64);
				log_err("wg uapi: peer '%s' allowed IP %zu has family %d, prefix %u",
					b64, j, a->family, a->cidr);
				goto cleanup;
			}
			inet_ntop(a->family, a->family == AF_INET ? (const void *)&a->ip4 :
				  (const void *)&a->ip6, ip, sizeof(ip));
			fprintf(f, "allowed_ip=%s/%u\n", ip, a->cidr);
		}
	}
	fputc('\n', f);
	if (fflush(f) != 0 || ferror(f)) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = 0;
cleanup:
	fclose(f);
	if (ret < 0) {
		if (buf)
			OPENSSL_cleanse(buf, size);
		free(buf);
		return ret;
	}
	*text = buf;
	*len = size;
	return 0;
}

/* ---- the socket ---- */

static int uapi_connect(const char *ifname, int *out)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = UAPI_IO_TIMEOUT_SEC };
	int fd, ret;

	ret = wg_uapi_socket_path(ifname, addr.sun_path, sizeof(addr.sun_path));
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

bool wg_uapi_device_exists(const char *ifname)
{
	int fd;

	if (uapi_connect(ifname, &fd) < 0)
		return false;
	close(fd);
	return true;
}

int wg_uapi_server_pid(const char *ifname, pid_t *out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, ret;

	ret = uapi_connect(ifname, &fd);
	if (ret < 0)
		return ret;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		ret = -errno;
	else if (cred.pid <= 0)
		ret = -ESRCH;
	else
		*out = cred.pid;
	close(fd);
	return ret;
}

/*
 * Sends the request whole, then reads until the reply's closing blank line. A daemon
 * that rejects a set stops reading and answers early: a failed write is therefore not
 * the end, the reply may still be there to say why.
 */
static int uapi_exchange(const char *ifname, const char *req, size_t reqlen, char **reply,
			 size_t *replylen)
{
	char *buf = NULL;
	size_t cap = 0, used = 0;
	int fd = -1, ret, send_err = 0;

	ret = uapi_connect(ifname, &fd);
	if (ret < 0) {
		log_err("wg uapi: cannot connect to '%s/%s.sock' of device '%s': %s",
			TWILL_DEFAULT_WG_RUN_DIR, ifname, ifname, strerror(-ret));
		/* No socket, or nobody behind it: to callers, like the kernel, no device. */
		return ret == -ENOENT || ret == -ECONNREFUSED ? -ENODEV : ret;
	}
	send_err = -write_all(fd, req, reqlen);
	for (;;) {
		ssize_t n;

		if (cap - used < 65536) {
			char *nb;

			if (cap >= UAPI_MAX_REPLY) {
				log_err("wg uapi: reply from '%s' exceeds %u bytes", ifname,
					UAPI_MAX_REPLY);
				ret = -EMSGSIZE;
				goto cleanup;
			}
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				ret = -ENOMEM;
				goto cleanup;
			}
			buf = nb;
		}
		n = recv(fd, buf + used, cap - used, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			log_err("wg uapi: reading the reply of '%s' failed: %s", ifname,
				strerror(-ret));
			goto cleanup;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used >= 2 && buf[used - 1] == '\n' && buf[used - 2] == '\n')
			break;
	}
	if (used == 0 && send_err) {
		ret = -send_err;
		log_err("wg uapi: sending to '%s' failed: %s", ifname, strerror(send_err));
		goto cleanup;
	}
	*reply = buf;
	*replylen = used;
	buf = NULL;
	ret = 0;
cleanup:
	if (buf)
		OPENSSL_cleanse(buf, used);
	free(buf);
	close(fd);
	return ret;
}

int wg_uapi_get(const char *ifname, struct wg_device **out)
{
	static const char req[] = "get=1\n\n";
	struct wg_device *dev = NULL;
	char *reply = NULL;
	size_t len = 0;
	int ret;

	ret = uapi_exchange(ifname, req, sizeof(req) - 1, &reply, &len);
	if (ret < 0)
		return ret;
	ret = wg_uapi_parse_get(reply, len, &dev);
	OPENSSL_cleanse(reply, len);
	free(reply);
	if (ret < 0) {
		log_err("wg uapi: cannot read device '%s': %s", ifname, strerror(-ret));
		return ret;
	}
	snprintf(dev->name, sizeof(dev->name), "%s", ifname);
	dev->ifindex = (int)if_nametoindex(ifname);
	*out = dev;
	return 0;
}

int wg_uapi_set(const char *ifname, const struct wg_device *dev)
{
	char *req = NULL, *reply = NULL;
	size_t reqlen = 0, len = 0;
	int ret;

	ret = wg_uapi_build_set(dev, &req, &reqlen);
	if (ret < 0)
		return ret;
	ret = uapi_exchange(ifname, req, reqlen, &reply, &len);
	OPENSSL_cleanse(req, reqlen);
	free(req);
	if (ret < 0)
		return ret;
	ret = wg_uapi_parse_set_reply(reply, len);
	free(reply);
	if (ret == -EPROTO)
		log_err("wg uapi: malformed reply to set from '%s'", ifname);
	else if (ret < 0)
		log_err("wg uapi: device '%s' refused the configuration: errno=%d (%s)", ifname,
			-ret, strerror(-ret));
	return ret;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Resolved before fork(): the child may only call async-signal-safe functions. */
static int resolve_program(const char *program, char *out, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(program, '/')) {
		if (snprintf(out, len, "%s", program) >= (int)len)
			return -ENAMETOOLONG;
		return access(out, X_OK) == 0 ? 0 : -errno;
	}
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		size_t dlen = strcspn(path, ":");

		if (dlen > 0 && snprintf(out, len, "%.*s/%s", (int)dlen, path, program) < (int)len &&
		    access(out, X_OK) == 0)
			return 0;
		path += dlen;
		if (*path == ':')
			path++;
	}
	return -ENOENT;
}

int wg_uapi_start(const char *program, const char *ifname, int timeout_ms)
{
	char exe[PATH_MAX], sock[PATH_MAX];
	char *argv[3];
	int devnull, status, ret;
	long deadline;
	pid_t pid;

	ret = wg_uapi_socket_path(ifname, sock, sizeof(sock));
	if (ret < 0) {
		log_err("wg uapi: bad device name '%s'", ifname ? ifname : "");
		return ret;
	}
	ret = resolve_program(program, exe, sizeof(exe));
	if (ret < 0) {
		log_err("wg uapi: cannot find userspace WireGuard program '%s': %s", program,
			strerror(-ret));
		return ret;
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return -errno;
	argv[0] = exe;
	argv[1] = (char *)ifname;
	argv[2] = NULL;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(devnull);
		return ret;
	}
	if (pid == 0) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigset_t none;

		/*
		 * The daemon outlives us and must not inherit the agent's signal set-up (a
		 * blocked SIGTERM, an ignored SIGPIPE) nor its session, where a terminal's
		 * Ctrl-C or a SIGHUP to the agent's group would take the dataplane down.
		 */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			sigaction(sig, &dfl, NULL);
		setsid();
		/* stdout may be a CNI result or a pipe someone parses: the daemon talks to stderr. */
		if (dup2(devnull, STDIN_FILENO) < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
			_exit(127);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		execv(exe, argv);
		_exit(127);
	}
	close(devnull);
	/* The foreground process exits as soon as the daemon it forked holds the device. */
	deadline = now_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno == ECHILD) {
			/* SIGCHLD ignored by the caller: the kernel reaped it, the socket will tell. */
			status = 0;
			break;
		}
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			goto cleanup;
		}
		if (now_ms() > deadline) {
			log_err("wg uapi: '%s %s' did not daemonise within %d ms", exe, ifname,
				timeout_ms);
			kill(pid, SIGTERM);
			waitpid(pid, &status, 0);
			ret = -ETIMEDOUT;
			goto cleanup;
		}
		sleep_ms(10);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_err("wg uapi: '%s %s' failed (%s %d)", exe, ifname,
			WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		ret = -EIO;
		goto cleanup;
	}
	while (!wg_uapi_device_exists(ifname)) {
		if (now_ms() > deadline) {
			log_err("wg uapi: socket '%s' did not appear within %d ms", sock, timeout_ms);
			ret = -ETIMEDOUT;
			goto cleanup;
		}
		sleep_ms(10);
	}
	log_info("wg uapi: started '%s %s', socket '%s'", exe, ifname, sock);
	ret = 0;
cleanup:
	return ret;
}

int wg_uapi_wait_gone(const char *ifname, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;

	while (wg_uapi_device_exists(ifname)) {
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
	return 0;
}
