// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the reply of a userspace WireGuard daemon to get=1 and set=1. The
 * daemon runs as root like Twill, but a wedged or foreign process behind the socket must
 * still not crash the agent. Whatever parses is also turned back into a set request.
 */
#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "wg_uapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_device *dev = NULL;
	char *text = NULL;
	size_t len = 0;

	log_set_stderr(0);
	(void)wg_uapi_parse_set_reply((const char *)data, size);
	if (wg_uapi_parse_get((const char *)data, size, &dev) == 0) {
		if (wg_uapi_build_set(dev, &text, &len) == 0)
			free(text);
		wg_device_free(dev);
	}
	return 0;
}
