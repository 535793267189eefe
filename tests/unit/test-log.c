// SPDX-License-Identifier: Apache-2.0
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

Test(log, parses_level_names)
{
	enum log_level level;

	cr_assert_eq(log_level_parse("debug", &level), 0);
	cr_assert_eq(level, TWILL_LOG_DEBUG);
	cr_assert_eq(log_level_parse("WARNING", &level), 0);
	cr_assert_eq(level, TWILL_LOG_WARN);
	cr_assert_eq(log_level_parse("loud", &level), -EINVAL);
}

Test(log, writes_whole_lines_to_file_below_threshold_only)
{
	char path[] = "/tmp/twill-test-log-XXXXXX";
	char buf[4096] = { 0 };
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	log_set_stderr(0);
	cr_assert_eq(log_open_file(path), 0);
	log_set_level(TWILL_LOG_INFO);
	log_info("pod CIDR '%s' is not a /24", "10.0.0.0/16");
	log_debug("hidden");
	log_close_file();
	cr_assert_gt(read(fd, buf, sizeof(buf) - 1), 0);
	cr_assert_not_null(strstr(buf, "info: pod CIDR '10.0.0.0/16' is not a /24\n"));
	cr_assert_null(strstr(buf, "hidden"));
	close(fd);
	unlink(path);
}
