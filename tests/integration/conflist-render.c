// SPDX-License-Identifier: Apache-2.0
/*
 * Test-only front end over lib/conflist: prints the conflist the agent writes, so the
 * cnitool tests run the real one.
 *   conflist-render POD_CIDR MTU STATE_DIR BPF_PIN_DIR [LOG_FILE]
 */
#include <stdio.h>
#include <stdlib.h>

#include "conflist.h"
#include "strutil.h"

int main(int argc, char **argv)
{
	struct conflist_params p = { 0 };
	unsigned long mtu;
	char *text = NULL;

	if (argc < 5 || argc > 6 || parse_uint(argv[2], 65535, &mtu) < 0) {
		fprintf(stderr, "usage: conflist-render POD_CIDR MTU STATE_DIR BPF_PIN_DIR [LOG_FILE]\n");
		return 2;
	}
	p.pod_cidr = argv[1];
	p.mtu = (unsigned int)mtu;
	p.state_dir = argv[3];
	p.bpf_pin_dir = argv[4];
	p.log_file = argc == 6 ? argv[5] : NULL;
	if (conflist_render(&p, &text) < 0) {
		fprintf(stderr, "conflist-render: cannot render\n");
		return 1;
	}
	fputs(text, stdout);
	free(text);
	return 0;
}
