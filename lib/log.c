// SPDX-License-Identifier: Apache-2.0
/*
 * The one logger of lib/. Messages go to stderr (the CNI spec reserves stdout for
 * results) and, optionally, to an append-only file that several plugin processes
 * may share: each message is formatted first and written with a single write(2)
 * so concurrent writers never interleave inside a line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "twill";
static enum log_level log_threshold = TWILL_LOG_INFO;
static int log_file_fd = -1;
static int log_to_stderr = 1;

static const char *const level_names[] = {
	[TWILL_LOG_ERROR] = "error",
	[TWILL_LOG_WARN] = "warn",
	[TWILL_LOG_INFO] = "info",
	[TWILL_LOG_DEBUG] = "debug",
};

void log_set_ident(const char *ident)
{
	log_ident = ident;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

void log_set_stderr(int enabled)
{
	log_to_stderr = enabled;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*out = TWILL_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -errno;
	log_close_file();
	log_file_fd = fd;
	return 0;
}

void log_close_file(void)
{
	if (log_file_fd >= 0)
		close(log_file_fd);
	log_file_fd = -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec now;
	struct tm tm;
	int saved_errno = errno;
	int n, m;
	va_list ap;

	if (level > log_threshold)
		return;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, now.tv_nsec / 1000000, log_ident, (int)getpid(),
		     level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;

	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';

	if (log_to_stderr && write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report a failing stderr */
	}
	if (log_file_fd >= 0 && write(log_file_fd, line, (size_t)n) < 0) {
		/* same: a full log disk must not fail the operation */
	}
	errno = saved_errno;
}
